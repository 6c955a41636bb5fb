"""Limits and fail-open/closed, on a gateway with a deliberately small policy."""

import shutil
import subprocess
import time

import httpx
import pytest

from conftest import gateway_with_policy_edits, stop_gateway
from metadata_samples import encode, picture


SMALL = {"max_body_bytes: 52428800": "max_body_bytes: 200000", "max_payloads: 32": "max_payloads: 2"}


@pytest.fixture(scope="module")
def small_gateway(tmp_path_factory, upstream):
    gw = gateway_with_policy_edits(tmp_path_factory.mktemp("small"), upstream, SMALL)
    yield gw
    stop_gateway(gw)


def test_declared_giant_body_is_blocked_before_forwarding(small_gateway, upstream):
    body = b"\x00" * 300_000
    with small_gateway.client() as c:
        r = c.post("https://slack.com/api/files.upload?giant=1", content=body,
                   headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 403 and r.json()["reason"] == "too_large"
    assert [q for q in upstream.received("/api/files.upload") if "giant" in q.path] == []


def test_chunked_transfer_body_over_the_limit_is_blocked(small_gateway, upstream):
    def chunks():
        for _ in range(30):
            yield b"\x01" * 10_000  # 300 kB, no Content-Length

    with small_gateway.client() as c:
        r = c.post("https://slack.com/api/files.upload?streamed=1", content=chunks(),
                   headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 403 and r.json()["reason"] == "too_large"
    assert [q for q in upstream.received("/api/files.upload") if "streamed" in q.path] == []


def _rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_refused_body_is_read_but_not_held(small_gateway, upstream, framing):
    """200 MB refused (declared over the limit, or chunked and growing past it): the
    client still gets its 403 once it has sent everything, and the gateway holds none of
    it (mitmproxy alone would keep all 200 MB until the end)."""
    size, piece = 200 * 1024 * 1024, b"\x02" * (1024 * 1024)
    peak = [_rss_mib(small_gateway.proc.pid)]
    before = peak[0]

    def body():
        for _ in range(size // len(piece)):
            peak.append(_rss_mib(small_gateway.proc.pid))
            yield piece

    headers = {"Content-Type": "application/octet-stream"}
    if framing == "content-length":
        headers["Content-Length"] = str(size)
    with small_gateway.client() as c:
        r = c.post(f"https://slack.com/api/files.upload?held={framing}", content=body(), headers=headers,
                   timeout=120)
    assert r.status_code == 403 and r.json()["reason"] == "too_large", r.text[:200]
    assert max(peak) - before < 60, f"the gateway grew by {max(peak) - before:.0f} MiB reading a refused body"
    assert [q for q in upstream.received("/api/files.upload") if "held" in q.path] == []


def test_a_refused_http2_body_of_no_declared_length_is_not_held(small_gateway, upstream):
    """The same over HTTP/2 from curl, streaming 200 MB from stdin with no length: refused
    once it passes the limit, read to its end, and not held."""
    assert shutil.which("curl"), "curl is missing: run `make test`"
    before = _rss_mib(small_gateway.proc.pid)
    zeros = subprocess.Popen(["head", "-c", str(200 * 1024 * 1024), "/dev/zero"], stdout=subprocess.PIPE)
    curl = subprocess.Popen(["curl", "-sS", "--http2", "-X", "POST", "-T", "-", "-o", "/dev/null",
                             "-w", "%{http_version} %{http_code}", "-H", "Content-Type: application/octet-stream",
                             "-x", small_gateway.proxy, "--cacert", str(small_gateway.trust_pem),
                             "https://slack.com/api/files.upload?held=h2"],
                            stdin=zeros.stdout, stdout=subprocess.PIPE, text=True)
    peak = before
    while curl.poll() is None:
        peak = max(peak, _rss_mib(small_gateway.proc.pid))
        time.sleep(0.05)
    zeros.wait(10)
    assert curl.stdout.read().split() == ["2", "403"]
    assert peak - before < 60, f"the gateway grew by {peak - before:.0f} MiB reading a refused body"
    assert [q for q in upstream.received("/api/files.upload") if "held" in q.path] == []


def test_too_many_files_in_one_request(small_gateway, upstream):
    png = encode(picture(32, 32), "PNG")
    files = [("f", (f"{i}.png", png, "image/png")) for i in range(3)]
    with small_gateway.client() as c:
        r = c.post("https://slack.com/api/files.upload?many=1", files=files)
    assert r.status_code == 403 and r.json()["reason"] == "too_large"


def test_readyz_and_healthz(small_gateway):
    base = f"http://127.0.0.1:{small_gateway.metrics_port}"
    assert httpx.get(base + "/healthz").status_code == 200
    r = httpx.get(base + "/readyz")
    assert r.status_code == 200 and "default" in r.text


# -- fail: open -------------------------------------------------------------------------------
# The same limits with `fail: open`: what fails is let through, and says so in the audit
# log and in scrubgate_failed_open_total. Every failure path goes through job.on_failure,
# whether the worker or the gateway hit it.

@pytest.fixture(scope="module")
def open_gateway(tmp_path_factory, upstream):
    gw = gateway_with_policy_edits(tmp_path_factory.mktemp("open"), upstream, {**SMALL, "\nfail: closed": "\nfail: open"})
    yield gw
    stop_gateway(gw)


def _last_upload_record(gw) -> dict:
    """The audit record of the request just answered (written before the answer)."""
    import json

    records = [json.loads(line) for line in gw.audit_log.read_text().splitlines() if line.strip()]
    return [r for r in records if r["path"] == "/api/files.upload"][-1]


def test_fail_open_forwards_a_request_over_the_file_limit_and_says_so(open_gateway, upstream):
    png = encode(picture(32, 32), "PNG")
    files = [("f", (f"{i}.png", png, "image/png")) for i in range(3)]
    with open_gateway.client() as c:
        r = c.post("https://slack.com/api/files.upload?open-many=1", files=files)
    assert r.status_code == 200, r.text
    assert [q for q in upstream.received("/api/files.upload") if "open-many" in q.path]
    record = _last_upload_record(open_gateway)
    assert record["failed_open"] is True and record["reason"] == "too_large" and record["action"] == "allow"
    assert 'scrubgate_failed_open_total{reason="too_large"' in open_gateway.metrics()


def test_fail_open_forwards_an_undecodable_picture_untouched(open_gateway, upstream):
    # A JPEG header and then garbage: sniffed as JPEG, refused by the engine as corrupt.
    broken = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x13" * 4000
    with open_gateway.client() as c:
        r = c.post("https://slack.com/api/files.upload?open-broken=1",
                   files=[("f", ("x.jpg", broken, "image/jpeg"))])
    assert r.status_code == 200, r.text
    sent = [q for q in upstream.received("/api/files.upload") if "open-broken" in q.path]
    assert sent and broken in sent[0].body  # failing open forwards what it could not clean
    record = _last_upload_record(open_gateway)
    assert record["failed_open"] is True and record["action"] == "allow"
    assert record["payloads"][0]["reason"] in ("corrupt", "undecodable", "unsupported_format")


def test_fail_open_still_reads_a_body_declared_over_the_limit(open_gateway, upstream):
    # The declared length alone no longer blocks; the body is read and checked, then let
    # through as too large.
    body = b"\x00" * 300_000
    with open_gateway.client() as c:
        r = c.post("https://slack.com/api/files.upload?open-giant=1", content=body,
                   headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert [q for q in upstream.received("/api/files.upload") if "open-giant" in q.path]
    assert _last_upload_record(open_gateway)["failed_open"] is True
