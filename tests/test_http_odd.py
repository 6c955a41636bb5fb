"""Uploads over HTTP/2 and over odd HTTP/1.1: nothing uninspected passes.

A real client over HTTP/2; `Expect: 100-continue`; chunked bodies with trailers;
duplicate or conflicting Content-Length and Transfer-Encoding (the request
smuggling shapes). Each upload plants identifiers (tests/uploads.py); whatever the
gateway answers, the sink must never see them.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest

from uploads import assert_sink_clean, fresh, received, tunnel


def _tag(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _read_response(tls) -> tuple[int, bytes]:
    """Status and whatever came with it, until the peer is done or 10 s pass."""
    tls.settimeout(10)
    data = b""
    try:
        while b"\r\n\r\n" not in data or (data.startswith(b"HTTP/1.1 100") and data.count(b"\r\n\r\n") < 2):
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        pass
    if data.startswith(b"HTTP/1.1 100"):
        data = data.split(b"\r\n\r\n", 1)[1]
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


def _raw_post(gateway, tag: str, headers: str, body: bytes, host: str | None = "slack.com") -> int:
    """POST to slack.com's upload path over a hand-made TLS tunnel: `headers` are the lines
    after Host and Content-Type, each ending in CRLF. The answer's status (0: none)."""
    tls = tunnel(gateway)
    host_line = f"Host: {host}\r\n" if host else ""
    tls.sendall(f"POST /api/files.upload?fid={tag} HTTP/1.1\r\n{host_line}Content-Type: image/jpeg\r\n"
                f"{headers}\r\n".encode() + body)
    status, _ = _read_response(tls)
    tls.close()
    return status


def _curl_h2(gateway, url: str, *args: str) -> tuple[str, int]:
    """curl offers h2 first (httpx offers http/1.1 first, and with lazy upstream
    connections mitmproxy follows the client's preference)."""
    out = subprocess.run(["curl", "-sS", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                          "-x", gateway.proxy, "--cacert", str(gateway.trust_pem), *args, url],
                         capture_output=True, text=True, timeout=120)
    version, code = out.stdout.split()
    return version, int(code)


def test_http2_upload_from_a_real_client_is_cleaned(gateway, upstream, tmp_path):
    tag = _tag("h2")
    (tmp_path / "scan.jpg").write_bytes(fresh(tag))
    version, code = _curl_h2(gateway, f"https://slack.com/api/files.upload?fid={tag}",
                             "-F", f"file=@{tmp_path / 'scan.jpg'};type=image/jpeg")
    assert (version, code) == ("2", 200)  # HTTP/2 between the client and the gateway
    assert len(received(upstream, tag)) == 1
    assert_sink_clean(upstream, [tag])


def test_http2_opaque_upload_is_blocked(gateway, upstream, tmp_path):
    tag = _tag("h2block")
    (tmp_path / "blob").write_bytes(fresh(tag))
    version, code = _curl_h2(gateway, f"https://web.telegram.org/apiw1?fid={tag}",
                             "--data-binary", f"@{tmp_path / 'blob'}", "-H", "Content-Type: image/jpeg")
    assert (version, code) == ("2", 403)
    assert received(upstream, tag) == []


def test_expect_100_continue_body_is_still_inspected(gateway, upstream):
    tag = _tag("expect")
    body = fresh(tag)
    tls = tunnel(gateway)
    tls.sendall(f"POST /api/files.upload?fid={tag} HTTP/1.1\r\nHost: slack.com\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode())
    tls.settimeout(10)
    interim = tls.recv(4096)
    assert interim.startswith(b"HTTP/1.1 100"), interim[:60]  # the gateway asks for the body itself
    tls.sendall(body)
    status, _ = _read_response(tls)
    tls.close()
    assert status == 200
    assert len(received(upstream, tag)) == 1
    assert_sink_clean(upstream, [tag], judge_pixels=0)


def _chunked(body: bytes, trailer: bytes = b"") -> bytes:
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 4000]), body[i:i + 4000]) for i in range(0, len(body), 4000))
    return chunks + b"0\r\n" + trailer + b"\r\n"


def test_chunked_body_is_inspected(gateway, upstream):
    tag = _tag("chunked")
    status = _raw_post(gateway, tag, "Transfer-Encoding: chunked\r\n", _chunked(fresh(tag)))
    assert status == 200
    assert len(received(upstream, tag)) == 1
    assert_sink_clean(upstream, [tag], judge_pixels=0)


def test_chunked_body_with_trailers_never_passes_uninspected(gateway, upstream):
    """mitmproxy 12 does not take request trailers: the connection is dropped and nothing
    is forwarded. Should it learn them, the body must still arrive cleaned and the
    trailer (never inspected) must not carry a planted value through."""
    tag = _tag("trailer")
    status = _raw_post(gateway, tag, "Transfer-Encoding: chunked\r\nTrailer: X-Note\r\n",
                       _chunked(fresh(tag), b"X-Note: PLANTEDTRAILER KOWALSKI\r\n"))
    got = received(upstream, tag)
    assert status in (0, 400, 403, 200) and len(got) <= 1
    assert_sink_clean(upstream, [tag], judge_pixels=0)
    assert not [r for r in got if b"PLANTEDTRAILER" in r.trailers]


# Request smuggling shapes: a parser that disagrees with the upstream's about where the
# body ends could let bytes past inspection. Refusing them is right; so is reading them
# one way and inspecting all of it. Forwarding anything uninspected is not.
SMUGGLING = {
    "two different content-lengths": lambda n: f"Content-Length: {n}\r\nContent-Length: {n + 5}\r\n",
    "content-length and chunked": lambda n: f"Content-Length: {n}\r\nTransfer-Encoding: chunked\r\n",
    "chunked, obfuscated": lambda n: f"Content-Length: {n}\r\nTransfer-Encoding: xchunked\r\n",
    "content-length with a sign": lambda n: f"Content-Length: +{n}\r\n",
    "content-length list": lambda n: f"Content-Length: {n}, {n}\r\n",
}


@pytest.mark.parametrize("shape", list(SMUGGLING))
def test_smuggling_shapes_never_forward_uninspected_bytes(gateway, upstream, shape):
    tag = _tag("smuggle")
    body = fresh(tag)
    status = _raw_post(gateway, tag, SMUGGLING[shape](len(body)), body)
    assert status in (200, 400, 403, 411, 413, 501, 0), status  # an answer or a closed connection
    assert len(received(upstream, tag)) <= 1
    assert_sink_clean(upstream, [tag], judge_pixels=0)


def test_a_request_without_host_is_routed_by_its_tunnel_and_cleaned(gateway, upstream):
    tag = _tag("nohost")
    body = fresh(tag)
    _raw_post(gateway, tag, f"Content-Length: {len(body)}\r\n", body, host=None)
    assert_sink_clean(upstream, [tag], judge_pixels=0)
    for r in received(upstream, tag):  # routed by the tunnel's host (slack.com) and cleaned
        assert r.body != body


def test_a_host_header_naming_another_site_does_not_carry_an_upload_past(gateway, upstream):
    """The tunnel goes to slack.com, the Host header says bank.example.org: the upload is
    judged by where it really goes, and arrives cleaned."""
    tag = _tag("hostlie")
    body = fresh(tag)
    tls = tunnel(gateway)
    tls.sendall(f"POST /api/files.upload?fid={tag} HTTP/1.1\r\nHost: bank.example.org\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    status, _ = _read_response(tls)
    tls.close()
    assert status in (200, 403)
    assert_sink_clean(upstream, [tag], judge_pixels=0)
