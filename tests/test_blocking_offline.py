"""A blocked upload never needs the service: it is answered even when the host
cannot be reached.

Hospital firewalls often already drop WhatsApp, and a messenger's name may not
resolve inside the network. With mitmproxy's eager connection strategy the
proxy would dial the service on CONNECT and the client would see a bare 502;
the block page must come instead, from a real `scrubgate run`.
"""

from __future__ import annotations

import socket
import subprocess

import pytest

from conftest import ROOT, SCRUBGATE, start_gateway, stop_gateway

CATALOGUE = """\
version: 1
services:
  deadchat:
    name: DeadChat
    media: opaque
    hosts: ["chat.scrubgate-test.invalid"]   # .invalid never resolves (RFC 2606)
    upload_paths: ["/upload/*"]
  whatsapp:
    name: WhatsApp
    media: opaque
    hosts: ["*.whatsapp.net"]
    upload_paths: ["/mms/*"]
  pictures:
    name: Pictures
    media: inspectable
    hosts: ["images.scrubgate-test.invalid"]
    upload_paths: ["/3/image"]
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture(scope="module")
def offline_gateway(tmp_path_factory, upstream):
    tmp = tmp_path_factory.mktemp("offline")
    (tmp / "services.yaml").write_text(CATALOGUE)
    policy = (ROOT / "policies" / "default.yaml").read_text()
    (tmp / "policy.yaml").write_text(policy)  # its `catalogue: services.yaml` is the file beside it
    # mmg.whatsapp.net: "the firewall drops it", a port where nothing listens.
    gw = start_gateway(tmp, upstream, tmp / "policy.yaml",
                       extra=["--resolve", f"mmg.whatsapp.net:443=127.0.0.1:{_closed_port()}"])
    yield gw
    stop_gateway(gw)


@pytest.mark.parametrize("url", ["https://chat.scrubgate-test.invalid/upload/photo",
                                 "https://mmg.whatsapp.net/mms/image/abc"])
def test_an_unreachable_blocked_service_gets_the_block_page(offline_gateway, url):
    with offline_gateway.client() as c:
        r = c.post(url, content=b"\xff\xd8\xff\xe0 ciphertext", headers={"accept": "text/html"})
    assert r.status_code == 403, r.text
    assert r.headers["x-scrubgate-reason"] == "opaque_service"
    assert "NHSmail" in r.text and "text/html" in r.headers["content-type"]


def test_a_refused_file_to_an_unresolvable_service_is_answered_too(offline_gateway):
    """The refusal comes from the engine (a text file), after the body was read."""
    with offline_gateway.client() as c:
        r = c.post("https://images.scrubgate-test.invalid/3/image",
                   files={"image": ("notes.txt", b"Patient notes, not a picture\n" * 40, "image/png")})
    assert r.status_code == 403, r.text
    assert r.json()["reason"] in ("policy", "unsupported_format")


def test_what_must_reach_the_service_still_fails_honestly(offline_gateway):
    """Chat to an unreachable host is not blocked by scrubgate: the client sees the proxy's 502."""
    with offline_gateway.client() as c:
        r = c.get("https://chat.scrubgate-test.invalid/messages")
    assert r.status_code == 502


def test_upstream_ca_must_exist(tmp_path):
    r = subprocess.run([*SCRUBGATE, "run", "--upstream-ca", str(tmp_path / "missing.pem")],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 2 and "--upstream-ca" in r.stderr and "Traceback" not in r.stderr


def test_the_stand_in_service_is_trusted_through_upstream_ca(gateway, upstream):
    """conftest starts every gateway with --upstream-ca: a forwarded request proves the flag works."""
    with gateway.client() as c:
        r = c.get("https://slack.com/api/ping-upstream-ca")
    assert r.status_code == 200 and r.json()["ok"] is True
