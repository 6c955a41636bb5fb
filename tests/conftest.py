"""Real parts for end-to-end tests.

- a local HTTPS upstream with a test CA (trustme) that records every request;
- a real `scrubgate run` process, with catalogue hosts mapped to the upstream by --resolve;
- clients (httpx, curl) that go through the proxy and trust the gateway's CA.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import trustme

from scrubgate.demo import StandInHandler, free_ports, stop_process  # noqa: F401 (also used by test modules)

ROOT = Path(__file__).resolve().parent.parent
SCRUBGATE = [sys.executable, "-m", "scrubgate"]
# Hosts the upstream stands in for. bank.example.org is outside the catalogue.
UPSTREAM_HOSTS = ["slack.com", "files.slack.com", "mmg.whatsapp.net", "web.whatsapp.com", "api.imgur.com",
                  "discord.com", "upload.twitter.com", "bank.example.org"]


@dataclass
class Received:
    method: str
    host: str
    path: str
    headers: dict
    body: bytes
    at: float
    trailers: bytes = b""  # a chunked body's trailer lines


@dataclass
class Upstream:
    port: int
    ca_pem: Path
    cert_der: bytes
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    pages: dict[str, str] = field(default_factory=dict)  # path -> HTML served to GET

    def received(self, path_prefix: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]


class _UpstreamHandler(StandInHandler):
    upstream: Upstream

    def _handle(self) -> None:
        trailers = b""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            body, trailers = self._chunked()
        else:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
        rec = Received(self.command, self.headers.get("host", ""), self.path,
                       {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic(), trailers)
        with self.upstream.lock:
            self.upstream.requests.append(rec)
        if self.command == "GET" and self.path in self.upstream.pages:  # a web app's page, for browsers
            page = self.upstream.pages[self.path].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        if self.path.startswith("/slow-response"):
            time.sleep(0.2)
        # Upstream faults on demand (tests/test_faults.py): the body is recorded first, as a
        # real service would have received it.
        if "fault=reset" in self.path:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()  # RST, no response
            return
        if "fault=500" in self.path:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if "fault=slow" in self.path:
            time.sleep(3)
        if "download=trickle" in self.path:  # 64 KiB now, the other 2 MiB three seconds later
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(65536 + (2 << 20)))
            self.end_headers()
            self.wfile.write(b"\x01" * 65536)
            self.wfile.flush()
            time.sleep(3)
            self.wfile.write(b"\x02" * (2 << 20))
            return
        self.reply_json({"ok": True, "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)})

    def _chunked(self) -> tuple[bytes, bytes]:
        """A chunked body, decoded, and its trailer lines as they came: the sink records
        every byte a real service would have received."""
        body = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            body += self.rfile.read(size)
            self.rfile.readline()
        trailers = b""
        while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
            trailers += line
        return bytes(body), trailers

    do_GET = do_POST = do_PUT = _handle


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def upstream(tmp_path_factory, test_ca) -> Upstream:
    d = tmp_path_factory.mktemp("upstream")
    cert = test_ca.issue_cert(*UPSTREAM_HOSTS)
    ca_pem = d / "upstream-ca.pem"
    test_ca.cert_pem.write_to_path(str(ca_pem))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _UpstreamHandler)
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    up = Upstream(server.server_address[1], ca_pem, der)
    _UpstreamHandler.upstream = up
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield up
    server.shutdown()


@dataclass
class GatewayProcess:
    proc: subprocess.Popen
    port: int
    metrics_port: int
    confdir: Path
    audit_log: Path
    log_path: Path
    trust_pem: Path  # gateway CA + upstream test CA

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kw) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(self.trust_pem))
        return httpx.Client(proxy=self.proxy, verify=ctx, timeout=60, **kw)

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_gateway(tmp: Path, upstream: Upstream, policy: Path | None = None, extra: list[str] = (),
                  env: dict[str, str] | None = None) -> GatewayProcess:
    port, mport = free_ports(2)
    confdir, audit, log_path = tmp / "conf", tmp / "audit.jsonl", tmp / "gateway.log"
    cmd = [*SCRUBGATE, "run", "--listen-port", str(port), "--metrics-port", str(mport),
           "--confdir", str(confdir), "--audit-log", str(audit), "--workers", "2",
           "--upstream-ca", str(upstream.ca_pem)]
    if policy:
        cmd += ["--policy", str(policy)]
    for host in UPSTREAM_HOSTS:
        cmd += ["--resolve", f"{host}:443={'127.0.0.1'}:{upstream.port}"]
    cmd += list(extra)
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    logf = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    wait_ready(proc, mport, log_path)
    trust = tmp / "trust.pem"
    trust.write_bytes((confdir / "mitmproxy-ca-cert.pem").read_bytes() + upstream.ca_pem.read_bytes())
    return GatewayProcess(proc, port, mport, confdir, audit, log_path, trust)


def gateway_with_policy_edits(tmp: Path, upstream: Upstream, edits: dict[str, str]) -> GatewayProcess:
    """A gateway on a copy of the shipped policies, with `edits` made to default.yaml."""
    policies = tmp / "policies"
    shutil.copytree(ROOT / "policies", policies)
    policy = policies / "default.yaml"
    text = policy.read_text()
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new)
    policy.write_text(text)
    return start_gateway(tmp, upstream, policy=policy)


def wait_ready(proc: subprocess.Popen, metrics_port: int, log_path: Path | None = None,
               seconds: float = 60) -> None:
    """Poll /readyz until it answers 200; fail with the process's log if it dies or never gets there."""
    def log() -> str:
        return log_path.read_text(errors="replace") if log_path else ""

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode}:\n{log()}")
        try:
            if httpx.get(f"http://127.0.0.1:{metrics_port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"gateway did not become ready in {seconds:g} s:\n{log()}")


def stop_gateway(gw: GatewayProcess) -> None:
    stop_process(gw.proc)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory, upstream) -> GatewayProcess:
    gw = start_gateway(tmp_path_factory.mktemp("gateway"), upstream)
    yield gw
    stop_gateway(gw)


@pytest.fixture(scope="session")
def exiftool() -> str:
    path = shutil.which("exiftool")
    if not path:
        pytest.fail("exiftool is missing: run `make test` (it installs libimage-exiftool-perl)")
    return path
