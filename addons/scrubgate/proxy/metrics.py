"""Prometheus metrics and the /metrics, /healthz, /readyz endpoint.

Every label value comes from a closed set: catalogue service ids, actions,
content kinds, identifier kinds, block reasons, stages. Never a host from
traffic, a user, a file name or a value.
"""

from __future__ import annotations

import logging
import platform
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import mitmproxy.version
from mitmproxy import ctx
from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, GCCollector,
                               PlatformCollector, ProcessCollector)
from prometheus_client.exposition import choose_encoder

from .. import __version__
from ..engine.verdict import CONTENT_KINDS
from .decision import Decision, decision_of

log = logging.getLogger("scrubgate.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

FLOWS = Counter("scrubgate_flows_total", "Requests to catalogue services, by the action taken.",
                ["service", "action"], registry=REGISTRY)
PAYLOADS = Counter("scrubgate_payloads_total",
                   "Files found inside requests, by content kind and the action taken on each.",
                   ["service", "content", "action"], registry=REGISTRY)
BLOCKS = Counter("scrubgate_blocks_total", "Requests answered with a block page, by reason.",
                 ["service", "reason"], registry=REGISTRY)
IDENTIFIERS = Counter("scrubgate_identifiers_total",
                      "Identifiers found in files (and removed, unless the action was monitor).",
                      ["kind", "source"], registry=REGISTRY)
METADATA = Counter("scrubgate_metadata_removed_total",
                   "Metadata blocks (EXIF, XMP, IPTC, comments, text chunks ...) removed from files.",
                   ["field"], registry=REGISTRY)
ERRORS = Counter("scrubgate_errors_total",
                 "Failures by stage: decode, engine, timeout, worker, policy_reload, audit, internal.",
                 ["stage"], registry=REGISTRY)
TLS_DECISIONS = Counter(
    "scrubgate_tls_decisions_total",
    "Connections to catalogue hosts decided before decryption: refused_media_host (TLS alert by "
    "server name), refused_connect (explicit proxy CONNECT answered 403), handshake_failed (the client "
    "did not accept the gateway's certificate: no CA, or a pinned app), tunnelled_untrusted (a chat "
    "host tunnelled for such a client), refused_quic (HTTP/3 to a catalogue host dropped: the client "
    "falls back to TCP).",
    ["service", "decision"], registry=REGISTRY)
ICAP_REQUESTS = Counter("scrubgate_icap_requests_total",
                        "ICAP requests answered (scrubgate icap), by ICAP method and status: 204 not ours or "
                        "unchanged, 200 modified or blocked (the block page inside), 4xx/5xx refused.",
                        ["method", "status"], registry=REGISTRY)
ICAP_ERRORS = Counter("scrubgate_icap_errors_total",
                      "ICAP requests that failed: malformed, unknown_service, method, not_ready, timeout, "
                      "aborted (the client vanished), internal.",
                      ["kind"], registry=REGISTRY)
ICAP_CONNECTIONS = Gauge("scrubgate_icap_connections", "ICAP client connections open now.", registry=REGISTRY)
FAILED_OPEN = Counter("scrubgate_failed_open_total",
                      "Uploads forwarded uninspected because the policy says fail: open.",
                      ["service", "reason"], registry=REGISTRY)
BYTES = Counter("scrubgate_payload_bytes_total",
                "Bytes of files inspected (in) and forwarded after cleaning (out).",
                ["direction"], registry=REGISTRY)
JOB_SECONDS = Histogram("scrubgate_job_duration_seconds",
                        "Time a worker spent on one request body (decode, extract, clean, rebuild).",
                        registry=REGISTRY,
                        buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
ADDED_LATENCY = Histogram("scrubgate_added_latency_seconds",
                          "Delay scrubgate added to a request before forwarding or answering it.",
                          registry=REGISTRY,
                          buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
SANITIZE_SECONDS = Histogram("scrubgate_sanitize_duration_seconds",
                             "Engine time for one file (sniff, metadata, pixels, re-encode), by content kind.",
                             ["content"], registry=REGISTRY,
                             buckets=(.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
OCR_SECONDS = Histogram("scrubgate_ocr_duration_seconds",
                        "Time spent on burned-in text (line detection, reading, rules) in one file that was scanned.",
                        registry=REGISTRY, buckets=(.05, .1, .25, .5, 1, 2, 4, 8, 15, 30, 60))
WORKERS = Gauge("scrubgate_workers", "Worker processes in the sanitiser pool.", registry=REGISTRY)
WORKERS_BUSY = Gauge("scrubgate_workers_busy", "Worker processes busy with a job.", registry=REGISTRY)
QUEUE_DEPTH = Gauge("scrubgate_queue_depth", "Uploads waiting for a free worker.", registry=REGISTRY)
INFLIGHT_BYTES = Gauge("scrubgate_inflight_bytes",
                       "Request body bytes held for inspection now (limits.max_inflight_bytes caps it).",
                       registry=REGISTRY)
WORKER_RESTARTS = Counter("scrubgate_worker_restarts_total",
                          "Worker processes replaced, by reason (timeout, worker_crash, cancelled).",
                          ["reason"], registry=REGISTRY)
POLICY_RELOADS = Counter("scrubgate_policy_reloads_total",
                         "Policy (re)loads by result; a failed reload keeps the previous policy.",
                         ["result"], registry=REGISTRY)
POLICY_INFO = Gauge("scrubgate_policy_info", "The policy in force (value is always 1).",
                    ["name", "version", "sha256"], registry=REGISTRY)
BUILD_INFO = Gauge("scrubgate_build_info", "scrubgate build (value is always 1).",
                   ["version", "mitmproxy", "python"], registry=REGISTRY)
BUILD_INFO.labels(__version__, mitmproxy.version.VERSION, platform.python_version()).set(1)


# Series that exist from the start: prometheus_client creates a labelled series
# at its first increment, and rate()/increase() cannot see that first step -- the
# first timeout or failed reload would go unnoticed by the alerts.
for _stage in ("decode", "engine", "timeout", "worker", "overload", "policy_reload", "audit", "internal"):
    ERRORS.labels(_stage)
for _result in ("success", "failure"):
    POLICY_RELOADS.labels(_result)
for _reason in ("timeout", "worker_crash", "cancelled"):
    WORKER_RESTARTS.labels(_reason)
for _content in CONTENT_KINDS:
    SANITIZE_SECONDS.labels(_content)


def set_policy_info(name: str, version: str, sha256: str) -> None:
    POLICY_INFO.clear()
    POLICY_INFO.labels(name, version, sha256).set(1)  # whole: it must match the audit log's


def record(decision: Decision) -> None:
    FLOWS.labels(decision.service, decision.action).inc()
    if decision.action == "block" and decision.reason:
        BLOCKS.labels(decision.service, decision.reason).inc()
    if decision.failed_open and decision.reason:
        FAILED_OPEN.labels(decision.service, decision.reason).inc()
    if decision.error_stage:
        ERRORS.labels(decision.error_stage).inc()
    if decision.job_seconds is not None:
        JOB_SECONDS.observe(decision.job_seconds)
    ADDED_LATENCY.observe(decision.added_seconds)
    for p in decision.payloads:
        PAYLOADS.labels(decision.service, p.content, p.action).inc()
        if p.seconds is not None:
            SANITIZE_SECONDS.labels(p.content).observe(p.seconds)
            if p.ocr_seconds > 0:
                OCR_SECONDS.observe(p.ocr_seconds)
        BYTES.labels("in").inc(p.bytes_in)
        BYTES.labels("out").inc(p.bytes_out)
        for f in p.findings:
            IDENTIFIERS.labels(f.kind, f.source).inc()
        for field, count in p.removed.items():
            METADATA.labels(field).inc(count)


class _Handler(BaseHTTPRequestHandler):
    ready: Callable[[], tuple[bool, str]] = staticmethod(lambda: (False, "starting"))

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, encoder(REGISTRY), content_type)
        elif path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
        elif path == "/readyz":
            ok, why = self.ready()
            self._send(200 if ok else 503, (why + "\n").encode(), "text/plain")
        else:
            self._send(404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # scrapes every 15 s would drown the log
        pass


class Metrics:
    """mitmproxy addon: serves the metrics endpoint and counts each decision."""

    def __init__(self, ready: Callable[[], tuple[bool, str]]):
        self._ready = ready
        self._server: ThreadingHTTPServer | None = None

    def add_readiness(self, check: Callable[[], tuple[bool, str]]) -> None:
        """/readyz also waits for `check` (the ICAP listener, under `scrubgate icap`)."""
        first = self._ready

        def both() -> tuple[bool, str]:
            ok, why = first()
            if not ok:
                return ok, why
            ok2, why2 = check()
            return ok2, f"{why}; {why2}"
        self._ready = both

    def load(self, loader) -> None:
        loader.add_option("scrubgate_metrics_host", str, "127.0.0.1",
                          "Address for the /metrics, /healthz and /readyz endpoint. Read at start: "
                          "a change needs a restart.")
        loader.add_option("scrubgate_metrics_port", int, 9464,
                          "Port for the /metrics, /healthz and /readyz endpoint (0 disables it). "
                          "Read at start: a change needs a restart.")

    def configure(self, updated) -> None:
        if self._server is not None and updated & {"scrubgate_metrics_host", "scrubgate_metrics_port"}:
            log.warning("the metrics address changed: the endpoint stays where it is until the "
                        "gateway restarts")

    def running(self) -> None:
        port = ctx.options.scrubgate_metrics_port
        if not port:
            return
        handler = type("Handler", (_Handler,), {"ready": staticmethod(self._ready)})
        host = ctx.options.scrubgate_metrics_host
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as e:
            # Readiness probes and alerts hang on this endpoint: do not run blind.
            log.error(f"cannot serve metrics on {host}:{port} ({e.strerror}); choose another port "
                      f"with --metrics-port (scrubgate_metrics_port) or 0 to disable it")
            ctx.master.shutdown()
            return
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="scrubgate-metrics",
                         daemon=True).start()
        log.info(f"metrics on http://{ctx.options.scrubgate_metrics_host}:{port}/metrics")

    def done(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def request(self, flow) -> None:
        decision = decision_of(flow)
        if decision is not None and not decision.recorded_metrics:
            decision.recorded_metrics = True
            record(decision)
