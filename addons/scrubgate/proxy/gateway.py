"""The Gateway addon: route, decide, clean or block each upload to a messenger.

Hooks only. The policy in force comes from `policy_store.PolicyStore`; the
cleaning happens in `scrubgate.job`, inside the worker processes that
`sanitisers.Sanitisers` runs.
"""

from __future__ import annotations

import logging
import re
import time

from mitmproxy import ctx, exceptions, http

from ..carriers.extract import extract
from ..engine.verdict import Refused
from ..job import BodyJob, BodyOutcome, on_failure
from ..policy import Policy
from ..workers import PoolError
from . import blockpage, metrics, refused_bodies
from .decision import Decision, publish, state_of
from .policy_store import PolicyStore
from .sanitisers import Sanitisers

log = logging.getLogger("scrubgate")

# Bodies this small, with no Content-Encoding, are checked for files on the
# event loop (a cheap parse) so that chat messages never queue behind OCR.
INLINE_LIMIT = 256 * 1024
# Methods whose requests carry a body even when no length is declared (HTTP/2).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# A range header on an upload means "this is one piece of a bigger file".
_PARTIAL_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.I)

_ERROR_STAGE = {"undecodable": "decode", "engine_error": "engine", "ocr_unavailable": "engine", "timeout": "timeout",
                "worker_crash": "worker", "overloaded": "overload"}


def request_host(flow: http.HTTPFlow) -> str:
    """The request's host (Host header first), worked out once per flow: mitmproxy's
    pretty_host parses the authority each time, and three hooks ask for it."""
    state = state_of(flow)
    if state.host is None:
        authority = flow.request.host_header or ""
        if authority.isascii() and "[" not in authority and "%" not in authority:
            # the common case, without mitmproxy's general authority parser
            state.host = authority.partition(":")[0] or flow.request.host
        else:
            state.host = flow.request.pretty_host
    return state.host


def _is_partial(headers) -> bool:
    rng = headers.get("content-range")
    if rng:
        m = _PARTIAL_RANGE.match(rng.strip())
        return not (m and m.group(1) == "0" and m.group(3) != "*" and int(m.group(2)) + 1 == int(m.group(3)))
    return False


class Gateway:
    """Hooks only: route each request, decide, and apply the outcome. The policy comes
    from the PolicyStore addon, the cleaning from the Sanitisers addon."""

    def __init__(self, store: PolicyStore, sanitisers: Sanitisers) -> None:
        self.store = store
        self.sanitisers = sanitisers
        self.inflight_bytes = 0  # body bytes held for inspection: limits.max_inflight_bytes

    @property
    def policy(self) -> Policy | None:
        return self.store.policy

    def configure(self, updated) -> None:
        if "stream_large_bodies" in updated and ctx.options.stream_large_bodies:
            # mitmproxy would stream large uploads straight to the upstream, past every addon.
            raise exceptions.OptionsError(
                "stream_large_bodies cannot be used with scrubgate: streamed uploads would leave "
                "uninspected. Use the policy's limits.max_body_bytes instead.")

    def running(self) -> None:
        if ctx.options.connection_strategy != "lazy":
            # Eager connects upstream on CONNECT, before any request is seen: a blocked
            # service that DNS or the firewall already stops would get a 502, not our page.
            ctx.options.update(connection_strategy="lazy")
            log.info("connection_strategy set to lazy: blocked uploads are answered without "
                     "contacting the service")
        metrics.INFLIGHT_BYTES.set_function(lambda: self.inflight_bytes)

    # -- the in-flight budget ------------------------------------------------------------------
    # Memory is bounded by design: every catalogue request holds its body's size of the
    # budget from the moment its length is known (declared: before the body is read) until
    # its inspection ends. An upload that would overrun it is refused as `overloaded`.
    def _reserve(self, flow: http.HTTPFlow, size: int, budget: int) -> bool:
        state = state_of(flow)
        grow = size - state.reserved
        if grow > 0 and self.inflight_bytes + grow > budget:
            return False
        self.inflight_bytes += grow
        state.reserved = size
        return True

    def release(self, flow: http.HTTPFlow) -> None:
        state = state_of(flow)
        self.inflight_bytes -= state.reserved
        state.reserved = 0

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        # Nothing inspects answers: stream them, so a large download from a catalogue
        # host (a video from a messenger's media host) is never held in memory whole.
        if flow.response is not None and not flow.response.stream:
            flow.response.stream = True

    def error(self, flow: http.HTTPFlow) -> None:
        self.release(flow)  # a client gone mid-body gives its reservation back

    # -- flows -----------------------------------------------------------------------------
    @staticmethod
    def route(flow: http.HTTPFlow, policy: Policy):
        """The flow's service, looked up once per flow and policy (both hooks ask; a
        reload between them gets a fresh lookup)."""
        state = state_of(flow)
        if state.route is not None and state.route[0] is policy:
            return state.route[1]
        host = request_host(flow)
        service = policy.catalogue.route(host, flow.request.path)
        if service is None and flow.request.host != host:
            # A Host header that names another site must not carry an upload past us to the
            # catalogue host the connection really goes to (the CONNECT target, the URL).
            service = policy.catalogue.route(flow.request.host, flow.request.path)
        state.route = (policy, service)
        return service

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """Refuse oversize uploads by their declared length, before reading the body."""
        if flow.response or flow.error or not flow.live or self.policy is None:
            return
        length = flow.request.headers.get("content-length", "")
        undeclared = False
        if length.isascii() and length.isdigit():  # not "²": isdigit() takes it, int() does not
            declared = int(length)
        elif "transfer-encoding" in flow.request.headers or (
                flow.request.method in _BODY_METHODS and (flow.request.is_http2 or flow.request.is_http3)):
            # A body of unknown length (chunked, or HTTP/2 without content-length) holds a
            # whole upload's worth of the budget while mitmproxy reads it. mitmproxy cannot
            # cap one request body without also capping every download (body_size_limit is
            # one option for both directions), so this reservation is what bounds them.
            declared, undeclared = self.policy.limits.max_body_bytes, True
        else:
            return  # HTTP/1 without either header: no body
        self.admit(flow, declared)
        if flow.response is None and undeclared and state_of(flow).reserved:
            # No usable declared length (none, or one that is no number): stop holding the
            # body once it passes the limit.
            refused_bodies.limit_body(flow, self.policy.limits.max_body_bytes)

    def body_over_limit(self, flow: http.HTTPFlow) -> bool:
        """A catalogue body of undeclared length grew past the limit while mitmproxy read
        it: refuse it now (True; the rest is dropped as it comes), or under `fail: open`
        let it be read on (False)."""
        policy = self.policy
        service = self.route(flow, policy) if policy else None
        if service is None or flow.response is not None:
            return False
        outcome = on_failure(policy.fail_open, "too_large", "body size is over the limit")
        if outcome.action != "block":
            return False
        decision = Decision(service.id, service.media, service.is_upload(flow.request.path))
        self._block(flow, decision, outcome.reason, outcome.detail)
        self.release(flow)  # nothing of it is held any more
        return True

    def admit(self, flow: http.HTTPFlow, declared: int) -> None:
        """Before a catalogue request's body is read: refuse it (flow.response set) if its
        length is over the limit or would overrun the in-flight budget; else hold its
        share of the budget. The proxy's requestheaders and the ICAP server both ask."""
        if self.policy is None:
            return
        service = self.route(flow, self.policy)
        if not service:
            return
        limits = self.policy.limits
        if declared > limits.max_body_bytes:
            outcome = on_failure(self.policy.fail_open, "too_large", "declared body size is over the limit")
        elif not self._reserve(flow, declared, limits.max_inflight_bytes):
            outcome = on_failure(self.policy.fail_open, "overloaded", "too many upload bytes in flight")
        else:
            return
        if outcome.action == "block":  # failing open, the body is still read and checked
            decision = Decision(service.id, service.media, service.is_upload(flow.request.path))
            self._block(flow, decision, outcome.reason, outcome.detail)
            refused_bodies.mark_refused(flow)  # answered: its body is read and dropped, not held

    async def request(self, flow: http.HTTPFlow) -> None:
        try:
            await self._request(flow)
        finally:
            self.release(flow)  # whatever happened, the body's share of the budget is free

    async def _request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live or self.policy is None:
            return
        started = time.perf_counter()
        policy = self.policy
        req = flow.request
        service = self.route(flow, policy)
        if service is None:
            return  # decrypted but not ours (e.g. allow_hosts overridden): pass untouched
        path = req.path.split("?", 1)[0]
        decision = Decision(service.id, service.media, service.is_upload(path))
        publish(flow, decision)
        try:
            if self._reserve(flow, len(req.raw_content or b""), policy.limits.max_inflight_bytes):
                await self._decide(flow, decision, policy, service, path)
            else:
                decision.error_stage = "overload"
                self._fail(flow, decision, policy, "overloaded", "too many upload bytes in flight")
        except Exception as e:  # a bug here must not forward an unchecked upload
            log.exception("scrubgate internal error")
            decision.error_stage = "internal"
            self._fail(flow, decision, policy, "engine_error", f"internal error ({type(e).__name__})")
        decision.added_seconds = time.perf_counter() - started
        publish(flow, decision)  # again: the summary now holds the final action

    def _fail(self, flow: http.HTTPFlow, decision: Decision, policy: Policy, reason: str, detail: str) -> None:
        """A failure on the gateway's side of the job: blocked, or let through and marked,
        as job.on_failure says for this policy."""
        outcome = on_failure(policy.fail_open, reason, detail)
        if outcome.action == "block":
            self._block(flow, decision, outcome.reason, outcome.detail)
        else:
            decision.failed_open, decision.reason = True, outcome.reason

    async def _decide(self, flow, decision: Decision, policy: Policy, service, path: str) -> None:
        req = flow.request
        if service.is_chunked(path, req.query, req.headers) or (decision.upload and _is_partial(req.headers)):
            if policy.chunked_uploads == "block":
                self._block(flow, decision, "chunked_upload", "part of a multi-request upload")
            return
        body = req.raw_content or b""
        if not body:
            return
        content_type = req.headers.get("content-type", "")
        content_encoding = req.headers.get("content-encoding", "")
        if not content_encoding and len(body) <= INLINE_LIMIT and not decision.upload:
            try:
                if not extract(body, content_type).payloads():
                    return  # a chat message or API call: no file, no worker
            except Refused:
                pass  # let the worker produce the proper refusal
        plan = policy.plan_for(service, self.sanitisers.secret)
        if decision.upload and service.media == "opaque" and set(plan.actions.values()) == {"block"}:
            # Media to an end-to-end-encrypted service is ciphertext: nothing to look at.
            self._block(flow, decision, "opaque_service", "media is encrypted on the device")
            return
        job = BodyJob(body, content_type, content_encoding, decision.upload, service.media == "opaque", plan)
        outcome = await self._run(job, decision, policy)
        decision.payloads = outcome.payloads
        decision.failed_open = outcome.failed_open
        if outcome.reason in _ERROR_STAGE:
            decision.error_stage = _ERROR_STAGE[outcome.reason]
        if outcome.action == "block":
            self._block(flow, decision, outcome.reason or "policy", outcome.detail)
            return
        decision.action, decision.reason = outcome.action, outcome.reason
        if outcome.new_body is not None:
            req.raw_content = outcome.new_body
            if "transfer-encoding" not in req.headers:
                req.headers["content-length"] = str(len(outcome.new_body))

    async def _run(self, job: BodyJob, decision: Decision, policy: Policy) -> BodyOutcome:
        t0 = time.perf_counter()
        try:
            return await self.sanitisers.inspect(job, policy.limits.job_timeout_seconds)
        except PoolError as e:
            log.warning(f"upload to {decision.service} not inspected: {e.reason}")
            return on_failure(policy.fail_open, e.reason, str(e))
        finally:
            decision.job_seconds = time.perf_counter() - t0

    def _block(self, flow: http.HTTPFlow, decision: Decision, reason: str, detail: str) -> None:
        block(flow, decision, self.policy, reason, detail)


def block(flow: http.HTTPFlow, decision: Decision, policy: Policy | None, reason: str, detail: str) -> None:
    """Answer the flow with the block page (403) instead of forwarding it."""
    decision.action, decision.reason, decision.detail = "block", reason, detail
    publish(flow, decision)
    service = policy.catalogue.by_id.get(decision.service) if policy else None
    body, ctype = blockpage.render(reason, service.name if service else decision.service,
                                   policy.approved_channel, flow.request.headers.get("accept", ""),
                                   decision.incident)
    headers = {"Content-Type": ctype, "Cache-Control": "no-store", "X-Scrubgate-Reason": reason,
               "X-Scrubgate-Incident": decision.incident}
    origin = flow.request.headers.get("origin")
    if origin:
        # A web app uploads with fetch/XHR from another origin (web.whatsapp.com to
        # mmg.whatsapp.net). Without these its script sees only "network error"; with
        # them it can read the 403 and our reason. The body holds no patient data.
        headers.update({"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
                        "Access-Control-Expose-Headers": "X-Scrubgate-Reason, X-Scrubgate-Incident",
                        "Vary": "Origin"})
    flow.response = http.Response.make(403, body, headers)
    log.info(f"blocked upload to {decision.service}: {reason} (incident {decision.incident})")
