"""The sanitisers addon: the worker processes that clean uploads, and their key.

Owns the `scrubgate_workers` and `scrubgate_secret_file` options, the
`WorkerPool` (started in `running()`, closed in `done()`), its gauges, and the
deployment secret that keys DICOM UID remapping and date shifting. The pool's
queue bound follows the policy in force.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import replace

from mitmproxy import ctx, exceptions

from .. import keys
from ..job import BodyJob, BodyOutcome
from ..policy import Policy
from ..workers import WorkerPool
from . import metrics
from .policy_store import PolicyStore

log = logging.getLogger("scrubgate")

INSPECT_JOB = "scrubgate.job:inspect_payload"


class Sanitisers:
    def __init__(self, store: PolicyStore) -> None:
        self.store = store
        self.secret = b""  # the DICOM UID/date key, from scrubgate_secret_file
        self.pool: WorkerPool | None = None
        store.on_policy(self._policy_changed)

    @property
    def ready(self) -> bool:
        return self.pool is not None and self.pool.ready

    # -- options ---------------------------------------------------------------------------
    def load(self, loader) -> None:
        loader.add_option("scrubgate_workers", int, 0,
                          "Sanitiser worker processes (0: one per CPU). Read at start: a change "
                          "needs a restart.")
        loader.add_option("scrubgate_secret_file", str, "",
                          "File holding the deployment secret that keys DICOM UID remapping and date "
                          "shifting (hex, at least 16 bytes). Replicas must share it so a study's "
                          "files keep matching UIDs. Default: scrubgate-secret in confdir, created "
                          "(mode 0600) on first start.")

    def configure(self, updated) -> None:
        if "scrubgate_workers" in updated:
            if ctx.options.scrubgate_workers < 0:
                raise exceptions.OptionsError("scrubgate_workers: must be 0 (one per CPU) or more")
            if self.pool is not None:
                log.warning("scrubgate_workers changed: the pool keeps its "
                            f"{self.pool.size} workers until the gateway restarts")
        if "scrubgate_secret_file" in updated and ctx.options.scrubgate_secret_file:
            # A named key file must exist and be good now, or the start fails.
            try:
                self.secret = keys.load_secret(ctx.options.scrubgate_secret_file)
            except keys.SecretError as e:
                raise exceptions.OptionsError(f"scrubgate_secret_file: {e}")

    def _policy_changed(self, policy: Policy) -> None:
        if self.pool:
            self.pool.max_queue = policy.limits.max_queue

    # -- lifecycle ---------------------------------------------------------------------------
    async def running(self) -> None:
        if not self.secret:
            self.secret = _confdir_secret(os.path.join(os.path.expanduser(ctx.options.confdir),
                                                       "scrubgate-secret"))
        policy = self.store.policy
        self.pool = WorkerPool(ctx.options.scrubgate_workers, policy.limits.max_queue if policy else 64,
                               on_restart=lambda reason: metrics.WORKER_RESTARTS.labels(reason).inc(),
                               warm_up="scrubgate.engine:warm_up")
        await self.pool.start()
        pool = self.pool  # gauges read the pool at scrape time, so they are never stale
        metrics.WORKERS.set_function(lambda: pool.size)
        metrics.WORKERS_BUSY.set_function(lambda: pool.busy)
        metrics.QUEUE_DEPTH.set_function(lambda: pool.waiting)
        log.info(f"{self.pool.size} sanitiser workers ready")

    async def done(self) -> None:
        if self.pool:
            await self.pool.close()

    async def inspect(self, job: BodyJob, timeout: float) -> BodyOutcome:
        """Run one body through a worker. Raises workers.PoolError when it could not."""
        assert self.pool is not None, "sanitisers not running"
        # The body crosses to the worker as raw bytes, not inside the pickled job.
        outcome, new_body = await self.pool.run_with_payload(INSPECT_JOB, replace(job, body=b""), job.body,
                                                             timeout)
        outcome.new_body = new_body
        return outcome


def _confdir_secret(path: str) -> bytes:
    """No key file named: use (or create) the one in confdir. Only at start, when every
    option is final, so that no stray key lands in a default confdir."""
    try:
        secret, created = keys.ensure_secret(path)
    except (keys.SecretError, OSError) as e:
        # Still remap every UID (fail closed), with a key this process alone holds.
        log.error(f"cannot use the DICOM secret in {path} ({e}); UIDs are remapped with a key "
                  "that dies with this process: set --secret-file")
        return secrets.token_bytes(keys.SECRET_BYTES)
    if created:
        log.warning(f"created a new DICOM de-identification secret in {path}; copy it to every "
                    "replica (--secret-file) so their UIDs agree")
    return secret
