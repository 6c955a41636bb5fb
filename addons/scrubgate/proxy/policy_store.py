"""The policy-store addon: the policy in force, and every way it changes.

Owns the `scrubgate_policy` option, loading and validating the file, watching
it (and its catalogue) for changes, SIGHUP, and mitmproxy's `allow_hosts`
(only catalogue hosts are decrypted). Other addons read `store.policy` at the
moment they need it and subscribe to what they must redo:

- `on_policy(callback)`: called with each newly installed policy;
- `on_sighup(callback)`: called on SIGHUP, after the policy is re-read
  (the audit log reopens its file there, for logrotate).

An invalid new version is reported, counted, and the running policy stays.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Callable

from mitmproxy import ctx, exceptions

from .. import paths
from ..policy import Policy, PolicyError
from . import metrics

log = logging.getLogger("scrubgate")

RELOAD_POLL_SECONDS = 2.0


class PolicyStore:
    def __init__(self) -> None:
        self.policy: Policy | None = None
        self._mtimes: tuple = ()
        self._watch: asyncio.Task | None = None
        self._policy_listeners: list[Callable[[Policy], None]] = []
        self._sighup_listeners: list[Callable[[], None]] = []

    def on_policy(self, callback: Callable[[Policy], None]) -> None:
        self._policy_listeners.append(callback)

    def on_sighup(self, callback: Callable[[], None]) -> None:
        self._sighup_listeners.append(callback)

    # -- options ---------------------------------------------------------------------------
    def load(self, loader) -> None:
        loader.add_option("scrubgate_policy", str, str(paths.default_policy()),
                          "Policy file (YAML). Reloaded when it or its catalogue changes, or on SIGHUP; "
                          "an invalid new version is reported and the running policy stays in force.")
        loader.add_option("scrubgate_decrypt_catalogue_only", bool, True,
                          "Set mitmproxy's allow_hosts from the service catalogue so that every "
                          "other host is tunnelled without decryption.")

    def configure(self, updated) -> None:
        if "scrubgate_policy" in updated:
            try:
                policy = Policy.load(ctx.options.scrubgate_policy)
            except PolicyError as e:
                metrics.POLICY_RELOADS.labels("failure").inc()
                raise exceptions.OptionsError("invalid policy " + "\n  ".join([e.source, *e.errors]))
            self.install(policy)
        if "scrubgate_decrypt_catalogue_only" in updated and self.policy:
            self._apply_allow_hosts()

    def install(self, policy: Policy) -> None:
        """Put `policy` in force and tell the subscribers."""
        self.policy = policy
        self._mtimes = _stat(policy)
        metrics.POLICY_RELOADS.labels("success").inc()
        metrics.set_policy_info(policy.name, policy.version, policy.sha256)
        log.info(f"policy '{policy.name}' version {policy.version} in force "
                 f"({len(policy.catalogue.services)} services, fail {policy.fail})")
        self._apply_allow_hosts()
        for callback in self._policy_listeners:
            callback(policy)

    def _apply_allow_hosts(self) -> None:
        if ctx.options.scrubgate_decrypt_catalogue_only and self.policy:
            patterns = self.policy.catalogue.allow_hosts_patterns()
            if list(ctx.options.allow_hosts) != patterns:
                ctx.options.update(allow_hosts=patterns)

    # -- lifecycle ---------------------------------------------------------------------------
    def running(self) -> None:
        self._watch = asyncio.create_task(self._watch_policy())
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._sighup)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (e.g. embedded in a test harness)

    def done(self) -> None:
        if self._watch:
            self._watch.cancel()

    def _sighup(self) -> None:
        self.reload()
        for callback in self._sighup_listeners:
            callback()

    async def _watch_policy(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_POLL_SECONDS)
            if self.policy and _stat(self.policy) != self._mtimes:
                self.reload()

    def reload(self) -> None:
        try:
            policy = Policy.load(ctx.options.scrubgate_policy)
        except PolicyError as e:
            if self.policy:
                self._mtimes = _stat(self.policy)  # report a bad file once, not every poll
            metrics.POLICY_RELOADS.labels("failure").inc()
            metrics.ERRORS.labels("policy_reload").inc()
            log.error("policy reload failed; keeping the running policy:\n  "
                      + "\n  ".join([e.source, *e.errors]))
            return
        self.install(policy)


def _stat(policy: Policy) -> tuple:
    """What a change to the policy or its catalogue file would alter."""
    out = []
    for p in (policy.source, policy.catalogue.source):
        try:
            st = os.stat(p)
            out.append((p, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((p, None, None))
    return tuple(out)
