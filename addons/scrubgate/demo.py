"""`scrubgate demo`: the gateway at work in a minute, offline and without configuration.

Starts a local stand-in messenger (HTTPS on 127.0.0.1 with a throw-away CA made
here), runs `scrubgate run` with the default policy in front of it, sends
synthetic uploads through the proxy, and shows what was done to each (from the
audit log: kinds and counts, never values), the before/after pictures, and the
metrics that moved. Only the standard library and scrubgate's own dependencies
are used (no test packages).
"""

from __future__ import annotations

import datetime
import email.parser
import email.policy
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import paths

# The messenger hosts the stand-in answers for (all in the service catalogue).
HOSTS = ["discord.com", "slack.com", "files.slack.com", "api.imgur.com", "mmg.whatsapp.net"]
ACTIONS = {"sanitize": "cleaned", "block": "blocked", "allow": "passed", "monitor": "passed (monitor)"}


class DemoError(Exception):
    pass


# -- the stand-in messenger ----------------------------------------------------------------
def _make_tls(directory: Path, hosts: list[str]) -> tuple[Path, Path, Path]:
    """A throw-away CA and a leaf for `hosts`; returns (ca.pem, leaf.pem, leaf.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scrubgate demo messenger CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_pem, leaf_pem, leaf_key = directory / "messenger-ca.pem", directory / "messenger.pem", directory / "messenger.key"
    ca_pem.write_bytes(ca.public_bytes(pem))
    leaf_pem.write_bytes(leaf.public_bytes(pem))
    leaf_key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return ca_pem, leaf_pem, leaf_key


@dataclass
class Received:
    host: str
    path: str
    content_type: str
    body: bytes


@dataclass
class Messenger:
    server: http.server.ThreadingHTTPServer
    ca_pem: Path
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def last(self, path: str) -> Received | None:
        with self.lock:
            hits = [r for r in self.received if r.path == path]
        return hits[-1] if hits else None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class StandInHandler(http.server.BaseHTTPRequestHandler):
    """What every local stand-in upstream needs (this demo's messenger, the tests'
    and the benchmarks' upstream): keep-alive, a small JSON answer, no access log.

    Headers and body leave as two writes -- two TLS records -- and with Nagle's
    algorithm on, the second waits for the client's delayed ACK: ~40 ms added to
    every request. So TCP_NODELAY."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def reply_json(self, payload: dict, status: int = 200) -> None:
        reply = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not gone within `timeout` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_messenger(directory: Path) -> Messenger:
    ca_pem, leaf_pem, leaf_key = _make_tls(directory, HOSTS)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(leaf_pem, leaf_key)

    class Handler(StandInHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            with messenger.lock:
                messenger.received.append(Received(self.headers.get("host", ""), self.path,
                                                   self.headers.get("content-type", ""), body))
            self.reply_json({"ok": True, "bytes": len(body)})

        do_GET = do_POST = do_PUT = _handle

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    messenger = Messenger(server, ca_pem)
    threading.Thread(target=server.serve_forever, daemon=True, name="demo-messenger").start()
    return messenger


# -- the gateway ---------------------------------------------------------------------------
def free_ports(n: int) -> list[int]:
    """n distinct free ports (the sockets stay open until all are chosen, so no repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class DemoGateway:
    proc: subprocess.Popen
    port: int
    metrics_port: int
    confdir: Path
    audit: Path
    log_path: Path

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join("    " + ln for ln in text.splitlines()[-lines:])

    def get(self, path: str, timeout: float = 5) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=timeout) as r:
                return r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, ""

    def stop(self) -> None:
        stop_process(self.proc)


def start_gateway(work: Path, messenger: Messenger, workers: int, listen_port: int = 0,
                  audit: Path | None = None) -> DemoGateway:
    port, mport = free_ports(2)
    port = listen_port or port
    confdir, log_path = work / "conf", work / "gateway.log"
    audit = audit or work / "audit.jsonl"
    cmd = [sys.executable, "-m", "scrubgate", "run", "--policy", str(paths.default_policy()),
           "--listen-port", str(port), "--metrics-port", str(mport), "--confdir", str(confdir),
           "--audit-log", str(audit), "--workers", str(workers),
           "--upstream-ca", str(messenger.ca_pem)]
    for host in HOSTS:
        cmd += ["--resolve", f"{host}:443=127.0.0.1:{messenger.port}"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("SCRUBGATE_SECRET_FILE", None)  # a throw-away secret in the temp confdir
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=work)
    gw = DemoGateway(proc, port, mport, confdir, audit, log_path)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"the gateway exited with status {proc.returncode} before it was ready; "
                            f"last lines of its log ({log_path}):\n{gw.log_tail()}")
        try:
            if gw.get("/readyz", timeout=1)[0] == 200:
                return gw
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    gw.stop()
    raise DemoError(f"the gateway did not become ready in 90 s; last lines of its log ({log_path}):\n"
                    f"{gw.log_tail()}")


# -- a client that goes through the proxy (standard library only) -------------------------
def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    boundary = "----scrubgate-demo-" + uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                     + value.encode() + b"\r\n")
    for name, (filename, data, ctype) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def multipart_file(body: bytes, content_type: str) -> bytes | None:
    """The first file part of a multipart body, as the messenger received it."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    for part in msg.iter_parts():
        if part.get_filename() is not None:
            return part.get_payload(decode=True)
    return None


def post(gw: DemoGateway, trust: ssl.SSLContext, host: str, path: str, body: bytes, headers: dict,
         timeout: float = 90) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", gw.port, context=trust, timeout=timeout)
    conn.set_tunnel(host, 443)
    try:
        conn.request("POST", path, body=body, headers={"Host": host, **headers})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


# -- samples -------------------------------------------------------------------------------
@dataclass
class Sample:
    slug: str
    title: str
    host: str
    path: str
    data: bytes
    kind: str  # image, dicom, opaque
    field: str = "file"
    filename: str = "upload"
    ctype: str = "application/octet-stream"


def make_samples() -> list[Sample]:
    from . import samples as s
    return [
        Sample("01-phone-photo", "phone photo of a viewer screen", "discord.com",
               "/api/v9/channels/802/messages", s.phone_photo_jpeg(), "image", "files[0]", "IMG_0412.jpg",
               "image/jpeg"),
        Sample("02-ehr-screenshot", "EHR screenshot", "slack.com", "/api/files.upload",
               s.ehr_screenshot(), "image", "file", "Screenshot.png", "image/png"),
        Sample("03-dicom-secondary-capture", "DICOM secondary capture", "files.slack.com",
               "/upload/v1/demo", s.secondary_capture(), "dicom", "file", "IM0001.dcm", "application/dicom"),
        Sample("04-wristband-photo", "wristband photo", "api.imgur.com", "/3/upload",
               s.wristband_photo(), "image", "image", "wristband.jpg", "image/jpeg"),
        Sample("05-telegram-web", "Telegram Web media (MTProto, encrypted)", "web.telegram.org",
               "/apiw1", s.opaque_blob(), "opaque"),
    ]


# -- audit and metrics ---------------------------------------------------------------------
def read_audit(path: Path, skip: int) -> list[dict]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(ln) for ln in lines[skip:] if ln.strip()]


def wait_audit(gw: DemoGateway, skip: int, host: str, path: str, seconds: float = 10) -> tuple[dict | None, int]:
    deadline = time.monotonic() + seconds
    while True:
        records = read_audit(gw.audit, skip)
        for i, rec in enumerate(records):
            if rec.get("host") == host and rec.get("path") == path.split("?", 1)[0]:
                return rec, skip + i + 1
        if time.monotonic() > deadline:
            return None, skip
        time.sleep(0.1)


METRIC_LINE = re.compile(r"^(scrubgate_[a-z_]+_total)(\{[^}]*\})? ([0-9.eE+-]+)$")
SHOWN = ("scrubgate_flows_total", "scrubgate_blocks_total", "scrubgate_identifiers_total",
         "scrubgate_metadata_removed_total", "scrubgate_payloads_total")


def counters(text: str) -> dict[tuple[str, str], float]:
    out = {}
    for line in text.splitlines():
        m = METRIC_LINE.match(line.strip())
        if m and m.group(1) in SHOWN:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def why(rec: dict) -> str:
    if rec.get("action") == "block":
        return f"reason: {rec.get('reason')}"
    found: dict[str, int] = {}
    removed: dict[str, int] = {}
    for p in rec.get("payloads", []):
        for k, n in (p.get("identifiers") or {}).items():
            found[k] = found.get(k, 0) + n
        for k, n in (p.get("metadata_removed") or {}).items():
            removed[k] = removed.get(k, 0) + n
    bits = []
    if found:
        bits.append("identifiers " + ", ".join(f"{k} x{n}" for k, n in sorted(found.items())))
    if removed:
        bits.append("metadata " + ", ".join(f"{k} x{n}" for k, n in sorted(removed.items())))
    return "; ".join(bits) or "nothing to remove"


# -- the demo ------------------------------------------------------------------------------
def main(args) -> int:
    t0 = time.monotonic()
    if args.workers < 1:
        print("scrubgate demo: --workers must be at least 1", file=sys.stderr)
        return 2
    out = Path(args.out).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"scrubgate demo: cannot create {out}: {e.strerror}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="scrubgate-demo-"))
    messenger = gw = None
    try:
        print("scrubgate demo: synthetic patient data only; everything stays on this machine.")
        print("[1/4] making sample uploads and a stand-in messenger (HTTPS on 127.0.0.1) ...", flush=True)
        samples = make_samples()
        messenger = start_messenger(work)
        print(f"[2/4] starting `scrubgate run` (default policy, {args.workers} workers) ...", flush=True)
        # The audit log is written where the user looks, not copied there once: uploads
        # sent during --keep-running land in it too. Kinds, counts and hashes only.
        audit = out / "audit.jsonl"
        audit.unlink(missing_ok=True)  # this run's records only
        gw = start_gateway(work, messenger, args.workers, getattr(args, "listen_port", 0) or 0, audit)
        print(f"      ready in {time.monotonic() - t0:.1f} s: proxy 127.0.0.1:{gw.port}, "
              f"metrics http://127.0.0.1:{gw.metrics_port}/metrics", flush=True)
        trust = ssl.create_default_context(cafile=str(gw.confdir / "mitmproxy-ca-cert.pem"))
        before = counters(gw.get("/metrics")[1])

        print("[3/4] uploading through the gateway:", flush=True)
        width = max(len(s.title) for s in samples)
        skip, failures = 0, []
        for s in samples:
            expected = "blocked" if s.kind == "opaque" else "cleaned"
            if s.kind == "opaque":
                body, headers = s.data, {"Content-Type": "application/octet-stream", "Accept": "text/html"}
            else:
                body, ctype = multipart({"channel": "C0DEMO"}, {s.field: (s.filename, s.data, s.ctype)})
                headers = {"Content-Type": ctype, "Accept": "application/json"}
            t = time.monotonic()
            try:
                status, rheaders, rbody = post(gw, trust, s.host, s.path, body, headers)
            except (OSError, http.client.HTTPException) as e:
                raise DemoError(f"upload of the {s.title} failed: {type(e).__name__}: {e}\n"
                                f"gateway log:\n{gw.log_tail()}") from None
            seconds = time.monotonic() - t
            rec, skip = wait_audit(gw, skip, s.host, s.path)
            action = ACTIONS.get(rec["action"], rec["action"]) if rec else ("blocked" if status == 403 else "?")
            reason = why(rec) if rec else "no audit record"
            got = messenger.last(s.path)
            written = _write_result(out, s, got, rbody, rheaders)
            print(f"  {s.title:<{width}}  -> {s.host:<16} {action:<8} {seconds:5.1f} s  {reason}")
            print(f"  {'':<{width}}     {written}", flush=True)
            if action != expected:
                failures.append(f"{s.title}: expected {expected}, got {action} (HTTP {status})")

        after = counters(gw.get("/metrics")[1])
        print("[4/4] metrics that moved (http://127.0.0.1:%d/metrics):" % gw.metrics_port)
        for key in sorted(after, key=lambda k: (SHOWN.index(k[0]), k[1])):
            delta = after[key] - before.get(key, 0.0)
            if delta:
                print(f"  {key[0]}{key[1]}  +{delta:g}")
        print(f"\nbefore/after pictures and the audit log of this run (audit.jsonl) in {out}/")
        print(f"done in {time.monotonic() - t0:.1f} s.")
        if failures:
            raise DemoError("unexpected outcome: " + "; ".join(failures))
        if getattr(args, "keep_running", False):
            _keep_running(gw)
        return 0
    except DemoError as e:
        print(f"scrubgate demo: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if gw:
            gw.stop()
        if messenger:
            messenger.stop()
        shutil.rmtree(work, ignore_errors=True)


def _write_result(out: Path, s: Sample, got: Received | None, rbody: bytes, rheaders: dict) -> str:
    """Write the before/after picture (or the block page); return a line describing it."""
    import io

    from PIL import Image

    from . import samples as ds
    if s.kind == "opaque":
        path = out / f"{s.slug}-block-page.html"
        path.write_bytes(rbody)
        sent = "nothing reached the messenger" if got is None else "WARNING: the messenger received it"
        return f"{path.name} (the page the user sees; {sent}; incident {rheaders.get('x-scrubgate-incident', '?')})"
    if got is None:
        return "nothing reached the messenger"
    received = multipart_file(got.body, got.content_type)
    if received is None:
        return "the messenger received no file"
    if s.kind == "dicom":
        a, b = ds.dicom_frame(s.data), ds.dicom_frame(received)
    else:
        a, b = Image.open(io.BytesIO(s.data)), Image.open(io.BytesIO(received))
    path = out / f"{s.slug}.png"
    ds.side_by_side(a, b).save(path)
    return f"{path.name} (left: sent, right: what the messenger received, {len(received)} bytes)"


def _keep_running(gw: DemoGateway) -> None:
    print(f"""
The gateway stays up (Ctrl-C to stop). Point a browser or curl at it:
  proxy:   http://127.0.0.1:{gw.port}
  CA:      {gw.confdir / 'mitmproxy-ca-cert.pem'}   (trust it in the client)
  e.g.     curl --proxy http://127.0.0.1:{gw.port} --cacert {gw.confdir / 'mitmproxy-ca-cert.pem'} \\
             -F file=@picture.png https://slack.com/api/files.upload
  Catalogue hosts {', '.join(HOSTS)} go to the local stand-in messenger;
  other hosts go to the real internet (if there is one), tunnelled untouched.
  metrics: http://127.0.0.1:{gw.metrics_port}/metrics
  audit:   {gw.audit}   (one line per decision, as you upload)""", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    try:
        while not stop.is_set() and gw.proc.poll() is None:
            stop.wait(1)
    except KeyboardInterrupt:
        pass
