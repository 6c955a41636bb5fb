"""`scrubgate icap` against real ICAP clients: c-icap-client, and Squid (ssl-bump) end to end.

- c-icap-client: OPTIONS; REQMOD of a multipart JPEG to a catalogue host (cleaned), of
  ciphertext to WhatsApp (block page), of anything to another host (204).
- Squid 5 with deploy/icap/squid.conf (paths and ports changed only): a client behind it
  uploads through ssl-bump; a JPEG with GPS and a burned-in identifier arrives cleaned, an
  encrypted messenger's upload gets the block page, another host is spliced untouched,
  and with scrubgate stopped Squid refuses the upload and nothing reaches the upstream.
- Hostile ICAP input gets an ICAP error, and the service goes on serving.
"""

from __future__ import annotations

import io
import os
import pwd
import re
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from conftest import ROOT, SCRUBGATE, UPSTREAM_HOSTS, free_ports, stop_process, wait_ready

MARKERS = [b"ICAPARTIST Okonjo", b"ICAPCOMMENT MRN RX0077"]


def _planted_jpeg(tag: str, screen: bool = False) -> bytes:
    if screen:
        from pictures import viewer_screen
        im = viewer_screen().convert("RGB")
    else:
        im = Image.new("RGB", (64, 48), (90, 120, 150))
    exif = Image.Exif()
    exif[0x013B] = MARKERS[0].decode()
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 5.0, 0.0), 3: "E", 4: (4.0, 53.0, 0.0)})  # GPS
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes(), quality=92)
    data = buf.getvalue()
    note = MARKERS[1] + f" {tag}".encode()
    return data[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + data[2:]


def _multipart(data: bytes, boundary: str = "sgICAPbound") -> tuple[bytes, str]:
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="scan.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class Icap:
    def __init__(self, proc, port, metrics_port, audit, log):
        self.proc, self.port, self.metrics_port, self.audit, self.log = proc, port, metrics_port, audit, log

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text


def start_icap(tmp: Path, policy: Path | None = None, *extra: str) -> Icap:
    port, mport = free_ports(2)
    log = tmp / "icap.log"
    proc = subprocess.Popen([*SCRUBGATE, "icap", "--listen-port", str(port), "--metrics-port", str(mport),
                             "--confdir", str(tmp / "conf"), "--audit-log", str(tmp / "audit.jsonl"),
                             "--workers", "2", *(["--policy", str(policy)] if policy else []), *extra],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=ROOT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    wait_ready(proc, mport, log)
    deadline = time.monotonic() + 30
    while "ICAP service listening" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return Icap(proc, port, mport, tmp / "audit.jsonl", log)


@pytest.fixture(scope="module")
def icap(tmp_path_factory):
    svc = start_icap(tmp_path_factory.mktemp("icap"))
    yield svc
    stop_process(svc.proc)


def _client(icap: Icap, *args: str) -> subprocess.CompletedProcess:
    if not shutil.which("c-icap-client"):
        pytest.fail("c-icap-client is missing: run `make test` (it installs the c-icap package)")
    r = subprocess.run(["c-icap-client", "-i", "127.0.0.1", "-p", str(icap.port), "-s", "reqmod", *args],
                       capture_output=True, text=True, timeout=120)
    r.stdout += r.stderr  # c-icap-client writes the response headers to stderr
    return r


# -- c-icap-client ---------------------------------------------------------------------------------
def test_readyz_names_the_icap_listener(icap):
    r = httpx.get(f"http://127.0.0.1:{icap.metrics_port}/readyz", timeout=10)
    assert r.status_code == 200 and f"ICAP on port {icap.port}" in r.text, r.text


def test_options(icap):
    out = _client(icap, "-v").stdout
    assert "ICAP/1.0 200 OK" in out and "Methods: REQMOD" in out and "Allow: 204" in out
    assert re.search(r'ISTag: "sg-[0-9a-f]{24}"', out) and "Preview: 0" in out
    assert "Max-Connections: 1000" in out and "Options-TTL: 60" in out


def test_reqmod_cleans_a_multipart_jpeg(icap, tmp_path):
    body, ctype = _multipart(_planted_jpeg("cicap"))
    (tmp_path / "in.bin").write_bytes(body)
    r = _client(icap, "-req", "https://slack.com/api/files.upload", "-method", "POST", "-hx",
                f"Content-Type: {ctype}", "-f", str(tmp_path / "in.bin"), "-o", str(tmp_path / "out.bin"), "-v")
    assert "ICAP/1.0 200 OK" in r.stdout, r.stdout + r.stderr
    out = (tmp_path / "out.bin").read_bytes()
    assert b"\xff\xd8" in out and not [m for m in MARKERS if m in out]
    length = int(re.search(r"Content-Length: (\d+)", r.stdout).group(1))
    assert length == len(out)  # lengths fixed
    record = [ln for ln in icap.audit.read_text().splitlines() if '"path":"/api/files.upload"' in ln][-1]
    assert '"action":"sanitize"' in record and "ICAPARTIST" not in icap.audit.read_text()


def test_reqmod_blocks_an_encrypted_messenger_with_the_page(icap, tmp_path):
    (tmp_path / "blob").write_bytes(os.urandom(2048))
    r = _client(icap, "-req", "https://mmg.whatsapp.net/mms/image/x", "-method", "POST", "-hx",
                "Accept: text/html", "-f", str(tmp_path / "blob"), "-o", str(tmp_path / "page.html"), "-v")
    assert "HTTP/1.1 403" in r.stdout and "X-Scrubgate-Reason: opaque_service" in r.stdout, r.stdout
    assert "NHSmail" in (tmp_path / "page.html").read_text()


def test_reqmod_of_another_host_is_204(icap, tmp_path):
    (tmp_path / "x").write_bytes(b"hello " * 100)
    r = _client(icap, "-req", "https://bank.example.org/transfer", "-method", "POST", "-f", str(tmp_path / "x"), "-v")
    assert "ICAP/1.0 204" in r.stdout, r.stdout


# -- hostile input ---------------------------------------------------------------------------------
def _raw(icap: Icap, data: bytes, read_timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", icap.port), timeout=read_timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return out


def _reqmod(encapsulated: str, http_head: bytes, rest: bytes = b"", extra: str = "") -> bytes:
    return (f"REQMOD icap://127.0.0.1/reqmod ICAP/1.0\r\nHost: 127.0.0.1\r\nAllow: 204\r\n{extra}"
            f"Encapsulated: {encapsulated}\r\n\r\n").encode() + http_head + rest


HEAD = b"POST https://slack.com/api/files.upload HTTP/1.1\r\nHost: slack.com\r\nContent-Type: image/jpeg\r\n\r\n"


@pytest.mark.parametrize("name,data", [
    ("garbage", b"HELLO THERE\r\n\r\n"),
    ("no encapsulated", b"REQMOD icap://x/reqmod ICAP/1.0\r\nHost: x\r\n\r\n"),
    ("bad encapsulated", _reqmod("req-hdr=zero, req-body=5", HEAD)),
    ("wrong offset", _reqmod(f"req-hdr=0, req-body={len(HEAD) - 7}", HEAD, b"5\r\nhello\r\n0\r\n\r\n")),
    ("body not last", _reqmod(f"req-body=0, req-hdr={len(HEAD)}", HEAD)),
    ("bad chunk size", _reqmod(f"req-hdr=0, req-body={len(HEAD)}", HEAD, b"zz\r\nhello\r\n0\r\n\r\n")),
    ("huge header", b"OPTIONS icap://x/reqmod ICAP/1.0\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"),
    ("unknown service", b"OPTIONS icap://x/echo ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n"),
    ("respmod", b"RESPMOD icap://x/reqmod ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n"),
    # "\xb2" is latin-1 "²": str.isdigit() takes it, int() does not
    ("superscript preview", _reqmod(f"req-hdr=0, null-body={len(HEAD)}", HEAD).replace(
        b"Allow: 204\r\n", b"Allow: 204\r\nPreview: \xb2\r\n")),
    ("unreadable url", _reqmod("req-hdr=0, null-body=44", b"GET http://[x/ HTTP/1.1\r\nHost: slack.com\r\n\r\n")),
    ("superscript offset", _reqmod("req-hdr=0, null-body=1", HEAD).replace(b"null-body=1", b"null-body=\xb2")),
])
def test_malformed_requests_get_an_icap_error(icap, name, data):
    out = _raw(icap, data)
    assert re.match(rb"ICAP/1\.0 (400|404|405) ", out), (name, out[:200])
    assert b"HTTP/1.1 200" not in out


def test_a_never_ending_chunk_is_refused_and_nothing_is_held(icap):
    """A chunk that claims 4 GiB: over the body limit before a byte of it is read."""
    head = HEAD.replace(b"Content-Type", b"Content-Length: 99999999999\r\nContent-Type")
    with socket.create_connection(("127.0.0.1", icap.port), timeout=15) as s:
        s.sendall(_reqmod(f"req-hdr=0, req-body={len(head)}", head, b"ffffffff\r\n" + b"x" * 65536))
        out = s.recv(65536)
    assert b"HTTP/1.1 403" in out and b"too_large" in out, out[:300]


def test_failing_open_on_a_body_over_the_limit_answers_204_and_closes(tmp_path):
    """Under `fail: open` (monitor policy) an over-limit body is left to the client's own
    copy: 204, and the connection is closed, since the rest of the body was never read."""
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    policy = tmp_path / "policies" / "monitor.yaml"
    policy.write_text(policy.read_text().replace("max_body_bytes: 52428800", "max_body_bytes: 1024"))
    svc = start_icap(tmp_path, policy)
    try:
        head = HEAD.replace(b"Content-Type", b"Content-Length: 8192\r\nContent-Type")
        with socket.create_connection(("127.0.0.1", svc.port), timeout=15) as s:
            s.sendall(_reqmod(f"req-hdr=0, req-body={len(head)}", head, b"2000\r\n" + b"z" * 4096))
            out = b""
            while chunk := s.recv(65536):  # ends: the server closes
                out += chunk
        assert out.startswith(b"ICAP/1.0 204"), out[:200]
    finally:
        stop_process(svc.proc)


def test_a_client_that_vanishes_mid_body_loses_nothing_and_the_service_goes_on(icap):
    before = icap.metrics()
    with socket.create_connection(("127.0.0.1", icap.port), timeout=10) as s:
        s.sendall(_reqmod(f"req-hdr=0, req-body={len(HEAD)}", HEAD, b"1000\r\n" + b"y" * 100))
    deadline = time.monotonic() + 10
    while "scrubgate_icap_errors_total" not in icap.metrics() or icap.metrics() == before:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert "ICAP/1.0 200 OK" in _client(icap, "-v").stdout  # still serving
    assert re.search(r'scrubgate_icap_requests_total\{method="OPTIONS",status="200"\} [1-9]', icap.metrics())


# -- Squid end to end ------------------------------------------------------------------------------
def _squid_conf(tmp: Path, icap_port: int, squid_port: int, hosts_file: Path, upstream) -> Path:
    text = (ROOT / "deploy" / "icap" / "squid.conf").read_text()
    for old, new in [("http_port 3128", f"http_port 127.0.0.1:{squid_port}"),
                     ("/etc/squid/bump-ca.pem", str(tmp / "bump-ca.pem")),
                     ("/var/lib/squid/ssl_db", str(tmp / "ssl_db")),
                     ("/etc/squid/scrubgate-hosts.txt", str(tmp / "hosts.txt")),
                     ("icap://127.0.0.1:1344/reqmod", f"icap://127.0.0.1:{icap_port}/reqmod")]:
        assert old in text, old
        text = text.replace(old, new)
    # The machine's own bits: where the test's upstream is, and where Squid writes.
    text += (f"\nhosts_file {hosts_file}\ntls_outgoing_options cafile={upstream.ca_pem}\n"
             f"pid_filename {tmp}/squid.pid\ncache_log {tmp}/cache.log\naccess_log {tmp}/access.log\n"
             f"coredump_dir {tmp}\ncache_effective_user proxy\nshutdown_lifetime 1 seconds\n")
    conf = tmp / "squid.conf"
    conf.write_text(text)
    return conf


def _start_squid(test_ca, upstream, icap_port: int) -> tuple[subprocess.Popen, Path, int]:
    """Squid with deploy/icap/squid.conf (paths and ports only), its ICAP service on
    `icap_port`; returns the process, its folder and its port once it listens."""
    squid_bin = shutil.which("squid") or "/usr/sbin/squid"
    if not os.path.exists(squid_bin):
        pytest.fail("squid is missing: run `make test` (it installs squid-openssl)")
    if os.geteuid() != 0:
        pytest.skip("Squid drops to its `proxy` user and needs root to start here")
    import tempfile
    tmp = Path(tempfile.mkdtemp(prefix="scrubgate-squid-"))  # not under pytest's 0700 tmp: Squid runs as proxy
    tmp.chmod(0o755)
    proxy = pwd.getpwnam("proxy")
    bump = test_ca  # Squid's bump CA: the clients trust it
    (tmp / "bump-ca.pem").write_bytes(bump.cert_pem.bytes() + bump.private_key_pem.bytes())
    subprocess.run(["/usr/lib/squid/security_file_certgen", "-c", "-s", str(tmp / "ssl_db"), "-M", "4MB"],
                   check=True, capture_output=True)
    hosts = subprocess.run([sys.executable, str(ROOT / "deploy" / "icap" / "make_hosts.py"),
                            str(ROOT / "policies" / "services.yaml")], check=True, capture_output=True, text=True)
    (tmp / "hosts.txt").write_text(hosts.stdout)
    (tmp / "etc-hosts").write_text("".join(f"127.0.0.1 {h}\n" for h in UPSTREAM_HOSTS))
    for p in tmp.rglob("*"):
        os.chown(p, proxy.pw_uid, proxy.pw_gid)
    os.chown(tmp, proxy.pw_uid, proxy.pw_gid)
    (squid_port,) = free_ports(1)
    conf = _squid_conf(tmp, icap_port, squid_port, tmp / "etc-hosts", upstream)
    proc = subprocess.Popen([squid_bin, "-N", "-f", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace") + _read(tmp / "cache.log")
            try:
                socket.create_connection(("127.0.0.1", squid_port), timeout=1).close()
                return proc, tmp, squid_port
            except OSError:
                assert time.monotonic() < deadline, _read(tmp / "cache.log")
                time.sleep(0.3)
    except BaseException:
        stop_process(proc)
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@pytest.fixture(scope="module")
def squid(tmp_path_factory, test_ca, upstream):
    svc = start_icap(Path(tmp_path_factory.mktemp("squid-icap")))
    try:  # whatever fails, neither Squid nor the ICAP service outlives the module
        proc, tmp, squid_port = _start_squid(test_ca, upstream, svc.port)
        try:
            yield {"port": squid_port, "icap": svc, "tmp": tmp, "ca": tmp / "client-ca.pem"}
        finally:
            stop_process(proc)
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        stop_process(svc.proc)


def _read(p: Path) -> str:
    return p.read_text(errors="replace") if p.exists() else ""


def _via_squid(squid, upstream, test_ca, url: str, *extra: str) -> tuple[int, str, str]:
    ca = squid["tmp"] / "trust.pem"
    ca.write_bytes(test_ca.cert_pem.bytes())  # trusts the bump CA (which is also the upstream's here)
    r = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "90", "--proxy",
                        f"http://127.0.0.1:{squid['port']}", "--cacert", str(ca), *extra, url],
                       capture_output=True, text=True, timeout=120)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body, r.stderr


def test_squid_cleans_a_jpeg_with_gps_and_a_burned_in_identifier(squid, upstream, test_ca, tmp_path):
    tag = f"sq{os.getpid()}"
    (tmp_path / "scan.jpg").write_bytes(_planted_jpeg(tag, screen=True))
    code, body, err = _via_squid(squid, upstream, test_ca, f"https://slack.com:{upstream.port}/api/files.upload?fid={tag}",
                                 "-F", f"file=@{tmp_path / 'scan.jpg'};type=image/jpeg")
    assert code == 200, (code, body, err, _read(squid["tmp"] / "cache.log")[-2000:])
    (got,) = [r for r in upstream.received("/api/files.upload") if tag in r.path]
    assert b"\xff\xd8" in got.body and not [m for m in MARKERS if m in got.body]
    jpeg = got.body[got.body.index(b"\xff\xd8"):got.body.rindex(b"\r\n--")]
    with Image.open(io.BytesIO(jpeg)) as im:
        assert not im.getexif().get_ifd(0x8825)  # no GPS
    # The banner's identifiers were found in the pixels (and painted: the action is sanitize).
    import json
    records = [json.loads(ln) for ln in squid["icap"].audit.read_text().splitlines()]
    (rec,) = [r for r in records if r["path"] == "/api/files.upload"]
    assert rec["action"] == "sanitize" and rec["client"] == "127.0.0.1"
    assert rec["payloads"][0]["identifiers"].get("national_id", 0) >= 1, rec["payloads"]


def test_squid_gives_an_encrypted_messenger_upload_the_block_page(squid, upstream, test_ca, tmp_path):
    tag = f"sqb{os.getpid()}"
    (tmp_path / "blob").write_bytes(os.urandom(2048))
    code, body, _ = _via_squid(squid, upstream, test_ca, f"https://mmg.whatsapp.net:{upstream.port}/mms/image/{tag}",
                               "-H", "Accept: text/html", "--data-binary", f"@{tmp_path / 'blob'}")
    assert code == 403 and "NHSmail" in body and "WhatsApp" in body
    assert upstream.received(f"/mms/image/{tag}") == []


def test_squid_splices_a_host_outside_the_catalogue(squid, upstream, test_ca, tmp_path):
    tag = f"sqs{os.getpid()}"
    (tmp_path / "scan.jpg").write_bytes(_planted_jpeg(tag))
    only_upstream = tmp_path / "up.pem"
    only_upstream.write_bytes(upstream.ca_pem.read_bytes())
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "60", "--proxy",
                        f"http://127.0.0.1:{squid['port']}", "--cacert", str(only_upstream), "-F",
                        f"file=@{tmp_path / 'scan.jpg'};type=image/jpeg",
                        f"https://bank.example.org:{upstream.port}/upload?fid={tag}"],
                       capture_output=True, text=True, timeout=90)
    assert r.stdout == "200", r.stderr
    (got,) = [q for q in upstream.received("/upload") if tag in q.path]
    assert MARKERS[0] in got.body  # untouched


def test_with_scrubgate_stopped_squid_refuses_and_nothing_arrives(squid, upstream, test_ca, tmp_path):
    stop_process(squid["icap"].proc)
    tag = f"sqd{os.getpid()}"
    (tmp_path / "scan.jpg").write_bytes(_planted_jpeg(tag))
    code, body, _ = _via_squid(squid, upstream, test_ca, f"https://slack.com:{upstream.port}/api/files.upload?fid={tag}",
                               "-F", f"file=@{tmp_path / 'scan.jpg'};type=image/jpeg")
    assert code >= 500 or code == 0, (code, body[:300])
    assert [r for r in upstream.received("/api/files.upload") if tag in r.path] == []


def test_reqmod_judges_by_the_url_host_too(icap):
    """A Host header naming another site does not make a catalogue upload 'not ours'."""
    body = _planted_jpeg("hostlie")
    head = (f"POST https://slack.com/api/files.upload HTTP/1.1\r\nHost: bank.example.org\r\n"
            f"Content-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    chunk = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    out = _raw(icap, _reqmod(f"req-hdr=0, req-body={len(head)}", head, chunk, extra="Connection: close\r\n"),
               read_timeout=60)
    assert out.startswith(b"ICAP/1.0 200"), out[:200]
    assert b"\xff\xd8" in out and not [m for m in MARKERS if m in out]


# -- the quick path: 204s answered from the heads, on a connection shared with the stream path --------
GET_OTHER = b"GET https://bank.example.org/account HTTP/1.1\r\nHost: bank.example.org\r\n\r\n"
POST_OTHER = b"POST https://bank.example.org/transfer HTTP/1.1\r\nHost: bank.example.org\r\nContent-Length: 5\r\n\r\n"
POST_OPAQUE = (b"POST https://mmg.whatsapp.net/mms/image/x HTTP/1.1\r\nHost: mmg.whatsapp.net\r\n"
               b"Accept: text/html\r\nContent-Length: 5\r\n\r\n")
PIPELINE = b"".join([
    _reqmod(f"req-hdr=0, null-body={len(GET_OTHER)}", GET_OTHER),                             # 204, quick
    b"OPTIONS icap://127.0.0.1/reqmod ICAP/1.0\r\nHost: 127.0.0.1\r\n\r\n",                  # 200, stream
    _reqmod(f"req-hdr=0, req-body={len(POST_OPAQUE)}", POST_OPAQUE, b"5\r\nhello\r\n0\r\n\r\n"),  # 403 page
    _reqmod(f"req-hdr=0, null-body={len(GET_OTHER)}", GET_OTHER),                             # 204, quick again
    _reqmod(f"req-hdr=0, req-body={len(POST_OTHER)}", POST_OTHER, b"0\r\n\r\n", "Preview: 0\r\n"),  # 204
])


def _pipelined(icap: Icap, pieces: list[bytes]) -> bytes:
    with socket.create_connection(("127.0.0.1", icap.port), timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in pieces:
            s.sendall(piece)
        s.shutdown(socket.SHUT_WR)  # done sending: the server answers everything, then closes
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize("arrival", ["at once", "byte by byte"])
def test_pipelined_requests_are_answered_in_order_across_both_paths(icap, arrival):
    """Requests the quick path answers and requests the stream path serves, on one
    connection, sent at once or a byte at a time: every one answered, in order."""
    pieces = [PIPELINE] if arrival == "at once" else [PIPELINE[i:i + 1] for i in range(len(PIPELINE))]
    out = _pipelined(icap, pieces)
    assert re.findall(rb"^ICAP/1\.0 (\d{3})", out, re.M) == [b"204", b"200", b"200", b"204", b"204"], out[:600]
    assert b"Methods: REQMOD" in out and b"HTTP/1.1 403" in out and b"opaque_service" in out
    # the quick path's 204s reach the metric within a second or so
    deadline = time.monotonic() + 10
    while not re.search(r'scrubgate_icap_requests_total\{method="REQMOD",status="204"\} ([3-9]|[1-9]\d)', icap.metrics()):
        assert time.monotonic() < deadline, icap.metrics()
        time.sleep(0.3)


def test_a_utf8_superscript_content_length_is_not_a_crash(icap):
    """Content-Length "²" (UTF-8) in a catalogue request: treated as unknown, answered."""
    head = POST_OPAQUE.replace(b"Content-Length: 5", "Content-Length: ²".encode())
    out = _raw(icap, _reqmod(f"req-hdr=0, req-body={len(head)}", head, b"5\r\nhello\r\n0\r\n\r\n",
                             "Connection: close\r\n"))
    assert out.startswith(b"ICAP/1.0 200") and b"HTTP/1.1 403" in out, out[:300]


def test_stalled_and_idle_connections_are_cut_off(tmp_path):
    """--timeout: half a request that never finishes is cut off and counted; an idle
    keep-alive connection is closed quietly. Both on the quick path's own timer."""
    svc = start_icap(tmp_path, None, "--timeout", "2")
    try:
        def seconds_until_closed(data: bytes) -> tuple[float, bytes]:
            with socket.create_connection(("127.0.0.1", svc.port), timeout=20) as s:
                s.sendall(data)
                t0 = time.monotonic()
                out = b""
                while chunk := s.recv(65536):
                    out += chunk
                return time.monotonic() - t0, out

        whole = _reqmod(f"req-hdr=0, null-body={len(GET_OTHER)}", GET_OTHER)
        idle, out = seconds_until_closed(whole)
        assert out.startswith(b"ICAP/1.0 204") and 1.5 < idle < 8, (idle, out[:100])
        assert not re.search(r'scrubgate_icap_errors_total\{kind="timeout"\} [1-9]', svc.metrics())
        stalled, out = seconds_until_closed(whole[:40])
        assert out == b"" and 1.5 < stalled < 8, (stalled, out)
        assert re.search(r'scrubgate_icap_errors_total\{kind="timeout"\} 1\.0', svc.metrics()), svc.metrics()
    finally:
        stop_process(svc.proc)


def test_a_client_that_pipelines_without_reading_is_held_back(icap):
    """Requests sent without their answers being read: once the answers back up, the
    connection stops reading, so the client's sends block (TCP pushes back) and the
    server's memory stays flat. Other clients are served meanwhile."""
    pid = icap.proc.pid

    def rss_mib() -> float:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    one = _reqmod(f"req-hdr=0, null-body={len(GET_OTHER)}", GET_OTHER)
    batch = one * 2000  # about 300 KB
    before = rss_mib()
    sent = 0
    with socket.create_connection(("127.0.0.1", icap.port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(3)
        started = time.monotonic()
        try:
            while sent < 400 * 1024 * 1024:  # unbounded without back-pressure
                s.sendall(batch)
                sent += len(batch)
        except TimeoutError:
            pass  # blocked: the server stopped reading
        blocked_after = time.monotonic() - started - 3
        assert sent < 64 * 1024 * 1024, f"{sent >> 20} MiB went in without a single answer read"
        # The kernel's buffers take the first ~14 MiB either way. A server that kept reading
        # while its answers piled up in user space took 18-26 s to fill them (measured with
        # the write-pause check removed); one that stops reads nothing more, and the
        # client blocks within a second or two.
        assert blocked_after < 10, f"the client could send for {blocked_after:.0f} s"
        assert "ICAP/1.0 200 OK" in _client(icap, "-v").stdout  # the others are still served
        assert rss_mib() - before < 64, (before, rss_mib())


@pytest.mark.parametrize("client,data", [
    # c-icap-client 0.5.10, a POST with Preview: 0 (captured)
    ("c-icap-client", b"REQMOD icap://127.0.0.1/reqmod ICAP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: "
     b"C-ICAP-Client-Library/0.5.10\r\nAllow: 204\r\nPreview: 0\r\nEncapsulated: req-hdr=0, req-body=155\r\n\r\n"
     b"POST https://bank.example.org/x HTTP/1.0\r\nLast-Modified: Mon Dec  7 15:48:35 2026\r\nContent-Length: 6\r\n"
     b"Content-Length: 6\r\nUser-Agent: C-ICAP-Client/x.xx\r\n\r\n0\r\n\r\n"),
])
def test_the_common_clients_requests_take_the_quick_path(client, data):
    """What c-icap-client sends for a request that is not ours is answered from the buffer
    (a change that sent it to the full parser would still be correct, and slow). Squid's
    own requests: test_squids_own_requests_for_other_sites_take_the_quick_path."""
    from scrubgate.icap.protocol import recognise

    found = recognise(bytearray(data))
    assert isinstance(found, tuple) and found[0] == len(data), (client, found)


def test_a_bug_while_serving_is_answered_500_and_the_connection_closed():
    """An exception of ours inside the stream path (here planted) still answers: ICAP 500,
    so a proxy with bypass=off refuses the request, and the connection is closed."""
    import asyncio

    from mitmproxy.test import taddons

    from scrubgate.icap.connection import IcapConnection
    from scrubgate.icap.server import IcapServer

    class Store:
        policy = None

    class Transport:
        def __init__(self):
            self.written, self.closed = b"", False

        def write(self, data):
            self.written += data

        def is_closing(self):
            return self.closed

        def close(self):
            self.closed = True

        def get_extra_info(self, name, default=None):
            return ("127.0.0.1", 4000)

        def pause_reading(self):
            pass

        def resume_reading(self):
            pass

    server = IcapServer(Store(), gateway=None)

    async def broken(*args):
        raise RuntimeError("planted")

    server._answer = broken
    with taddons.context(server):
        async def go():
            conn, transport = IcapConnection(server, 5), Transport()
            conn.connection_made(transport)
            data = b"OPTIONS icap://127.0.0.1/reqmod ICAP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
            conn.get_buffer(len(data))[:len(data)] = data
            conn.buffer_updated(len(data))
            for _ in range(100):
                if transport.closed:
                    break
                await asyncio.sleep(0.01)
            conn.connection_lost(None)
            return transport

        transport = asyncio.run(go())
    assert transport.written.startswith(b"ICAP/1.0 500 ") and transport.closed, transport.written


class _IcapRecorder(socketserver.ThreadingTCPServer):
    """An ICAP service that records what its client sends, raw, and answers OPTIONS as
    scrubgate does and every REQMOD 204. A request is what arrives before the sender
    waits for an answer (ICAP clients do not pipeline)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.raw: list[bytes] = []
        super().__init__(("127.0.0.1", 0), _IcapRecorderHandler)


class _IcapRecorderHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(0.5)
        buf = b""
        while True:
            try:
                data = self.request.recv(65536)
                if not data:
                    return
                buf += data
                continue
            except TimeoutError:
                if not buf:
                    continue
            self.server.raw.append(buf)
            if buf.startswith(b"OPTIONS"):
                self.request.sendall(b'ICAP/1.0 200 OK\r\nMethods: REQMOD\r\nISTag: "rec"\r\nAllow: 204\r\n'
                                     b"Preview: 0\r\nTransfer-Preview: *\r\nOptions-TTL: 60\r\n"
                                     b"Encapsulated: null-body=0\r\n\r\n")
            else:
                self.request.sendall(b'ICAP/1.0 204 No Content\r\nISTag: "rec"\r\nEncapsulated: null-body=0\r\n\r\n')
            buf = b""


def test_squids_own_requests_for_other_sites_take_the_quick_path(test_ca, upstream, tmp_path):
    """What Squid (deploy/icap/squid.conf) really sends for requests that are not ours: a
    spliced HTTPS site's CONNECT, a plain-HTTP GET and a POST. Each is one whole request the
    quick look recognises, so none of this traffic reaches the full parser."""
    from scrubgate.icap.protocol import recognise

    recorder = _IcapRecorder()
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    proc, tmp, port = _start_squid(test_ca, upstream, recorder.server_address[1])
    try:
        (tmp_path / "form.txt").write_text("hello")
        for url, extra in [(f"https://bank.example.org:{upstream.port}/a", []),
                           ("http://bank.example.org/b?x=1", []),
                           ("http://bank.example.org/c", ["-F", f"f=@{tmp_path / 'form.txt'}"])]:
            subprocess.run(["curl", "-sS", "-o", "/dev/null", "--max-time", "20", "-k", "--proxy",
                            f"http://127.0.0.1:{port}", *extra, url], capture_output=True, timeout=30)
    finally:
        stop_process(proc)
        recorder.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    reqmods = [r for r in recorder.raw if r.startswith(b"REQMOD")]
    kinds = {r.split(b"\r\n\r\n", 2)[1].split(b" ", 1)[0] for r in reqmods}
    assert {b"GET", b"POST"} <= kinds, recorder.raw
    for raw in reqmods:
        found = recognise(bytearray(raw))
        assert isinstance(found, tuple) and found[0] == len(raw), raw
