"""One request body in, one decision out: the job a worker process runs.

Undo Content-Encoding, find the files (carriers), apply the policy's plan to
each, clean the ones to sanitise (engine), and rebuild the body. Pure: no
mitmproxy, no I/O, so it can run in a worker, a test or a benchmark alike.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from .carriers import encoding
from .carriers.extract import extract
from .engine import EngineOptions, Finding, sanitize
from .engine.verdict import Refused, Verdict, group_findings
from .policy.model import SEVERITY, Plan

# Why a request was blocked: a closed set (metric label values).
BLOCK_REASONS = (
    "policy",  # a rule says block for this content kind
    "opaque_service",  # media to an end-to-end-encrypted messenger
    "chunked_upload",  # one part of a multi-request upload
    "corrupt", "unsupported_format", "too_large", "undecodable", "engine_error",  # engine refusals
    "identifiable_face", "ocr_unavailable",
    "timeout",  # the worker did not finish in time
    "worker_crash",  # the worker process died
    "overloaded",  # too many uploads waiting for a worker
    "audit_unavailable",  # the audit log cannot be written and the policy says audit: required
)


class VerdictCache:
    """Recent verdicts by (content sha256, engine options), in one worker process.

    One picture is often forwarded to several chats, and a retried upload sends
    the same bytes again: the engine is deterministic for given bytes and
    options, so the second time costs a hash and a lookup instead of OCR.
    Bounded by entries and by the bytes of the cleaned outputs it holds.
    Refusals that depend on the machine rather than the file (OCR missing, a
    handler bug) are not kept.
    """

    _NOT_KEPT = ("ocr_unavailable", "engine_error")

    def __init__(self, max_entries: int = 256, max_bytes: int = 128 * 1024 * 1024):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._entries: OrderedDict[tuple, Verdict] = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = 0

    def get(self, key: tuple) -> Verdict | None:
        verdict = self._entries.get(key)
        if verdict is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return verdict

    def put(self, key: tuple, verdict: Verdict) -> None:
        size = len(verdict.output or b"")
        if verdict.refused in self._NOT_KEPT or size > self.max_bytes // 4 or key in self._entries:
            return
        self._entries[key] = verdict
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self._bytes -= len(old.output or b"")


VERDICTS = VerdictCache()


def _sanitize_cached(data: bytes, digest: str, options: EngineOptions) -> Verdict:
    started = time.perf_counter()
    key = (digest, options)
    cached = VERDICTS.get(key)
    if cached is not None:
        return replace(cached, seconds=time.perf_counter() - started, ocr_seconds=0.0)
    verdict = sanitize(data, options)
    VERDICTS.put(key, verdict)
    return verdict


@dataclass(frozen=True)
class BodyJob:
    body: bytes
    content_type: str
    content_encoding: str
    upload: bool  # the request hits a service's upload endpoint
    opaque: bool  # the service encrypts media on the device
    plan: Plan


@dataclass
class PayloadOutcome:
    label: str
    carrier: str
    format: str
    content: str
    action: str  # allow | sanitize | block | monitor
    reason: str | None = None  # block reason, or what monitor would have blocked for
    detail: str = ""
    would: str | None = None  # monitor only: the action a sanitising policy would take
    findings: list[Finding] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)
    changed: bool = False
    sha256_in: str = ""
    sha256_out: str = ""
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float | None = None  # engine time, when the engine ran
    ocr_seconds: float = 0.0

    def summary(self) -> dict:
        """JSON-safe description: no bytes, no identifier values."""
        return {"carrier": self.carrier, "format": self.format, "content": self.content,
                "action": self.action, "reason": self.reason, "detail": self.detail,
                "would": self.would, "changed": self.changed, "metadata_removed": self.removed,
                "findings": group_findings(self.findings)}


@dataclass
class BodyOutcome:
    action: str
    reason: str | None = None
    detail: str = ""
    new_body: bytes | None = None  # encoded as the client sent it; None: forward as is
    payloads: list[PayloadOutcome] = field(default_factory=list)
    failed_open: bool = False  # an error was let through because the policy says fail: open


def on_failure(fail_open: bool, reason: str, detail: str = "") -> BodyOutcome:
    """The one place that says what a failure does -- anything not inspected, cleaned or
    finished: fail closed blocks it; the policy's `fail: open` lets it through, marked
    `failed_open` so that metrics and the audit log show it. The gateway's own failures
    (no worker, a timeout, an internal error, a declared size over the limit) and the
    worker's (undecodable, too large, a refusal from the engine) all come here."""
    if fail_open:
        return BodyOutcome("allow", reason, detail, failed_open=True)
    return BodyOutcome("block", reason, detail)


def inspect_payload(job: BodyJob, body: bytes) -> tuple[BodyOutcome, bytes | None]:
    """`inspect_body` for the worker pool's send-once call (`WorkerPool.run_with_payload`):
    the body arrives beside the pickled job, and the new body leaves beside the outcome,
    so that neither is pickled (copied) in the gateway process."""
    outcome = inspect_body(replace(job, body=body))
    new_body, outcome.new_body = outcome.new_body, None
    return outcome, new_body


def inspect_body(job: BodyJob) -> BodyOutcome:
    plan = job.plan
    try:
        body = encoding.decode(job.body, job.content_encoding, plan.limits.max_body_bytes)
        tree = extract(body, job.content_type, upload=job.upload)
    except Refused as e:
        if e.reason == "undecodable":
            # The policy decides what happens to bodies that cannot be unpacked.
            action = plan.actions.get("undecodable", "block")
            if action in ("allow", "monitor"):
                return BodyOutcome(action, e.reason, e.detail)
        return on_failure(plan.fail_open, e.reason, e.detail)
    payloads = tree.payloads()
    if not payloads:
        return BodyOutcome("allow")
    if len(payloads) > plan.limits.max_payloads:
        return on_failure(plan.fail_open, "too_large", f"request carries {len(payloads)} files, over the limit")

    options = EngineOptions(
        limits=plan.limits.engine, text=plan.text, faces=plan.faces, dicom=plan.dicom,
        archive_members=tuple((c, plan.actions.get(c, "block")) for c in ("image", "dicom", "archive", "other")))
    outcomes: list[PayloadOutcome] = []
    failed_open = False
    for p in payloads:
        action = plan.actions.get(p.kind.content, "block")
        o = PayloadOutcome(p.label, p.carrier, p.kind.format, p.kind.content, action,
                           sha256_in=hashlib.sha256(p.data).hexdigest(), bytes_in=len(p.data))
        outcomes.append(o)
        if action == "block":
            o.reason = "opaque_service" if job.opaque else "policy"
            continue
        if action in ("sanitize", "monitor"):
            verdict = _sanitize_cached(p.data, o.sha256_in, options)
            o.findings, o.removed, o.detail = verdict.findings, dict(verdict.removed), verdict.detail
            o.seconds, o.ocr_seconds = verdict.seconds, verdict.ocr_seconds
            if action == "monitor":
                o.would = "block" if verdict.refused else "sanitize"
                o.reason = verdict.refused
            elif verdict.refused:
                failure = on_failure(plan.fail_open, verdict.refused)
                o.action, o.reason = failure.action, failure.reason
                failed_open = failed_open or failure.failed_open
            elif verdict.changed:
                o.changed = True
                p.replacement = verdict.output
        out = p.replacement if p.replacement is not None else p.data
        o.sha256_out = o.sha256_in if out is p.data else hashlib.sha256(out).hexdigest()
        o.bytes_out = len(out)

    worst = max(outcomes, key=lambda o: SEVERITY[o.action])
    result = BodyOutcome(worst.action, payloads=outcomes, failed_open=failed_open)
    if worst.action == "block":
        result.reason, result.detail = worst.reason, worst.detail
        for o in outcomes:  # nothing of a blocked request is forwarded
            o.sha256_out, o.bytes_out = "", 0
        return result
    if any(o.changed for o in outcomes):
        try:
            result.new_body = encoding.encode(tree.rebuild(), job.content_encoding)
        except Refused as e:
            return on_failure(plan.fail_open, e.reason, e.detail)
    return result
