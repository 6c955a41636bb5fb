"""Phones and pinned apps behind an explicit proxy: what is decided before decryption.

- The catalogue's media/chat host split and the policy's `tls:` block, without a proxy.
- A real `scrubgate run`: a CONNECT to a refused media host gets a fast 403; a ClientHello
  naming it gets a TLS access_denied alert (what a transparent-mode phone sees); a client
  without the gateway's CA gets a WhatsApp chat host tunnelled after its first failed
  handshake, while a media host stays intercepted (its handshakes keep failing) and
  receives nothing. Every decision is counted and audited.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import time

import pytest

from conftest import ROOT, gateway_with_policy_edits, start_gateway, stop_gateway
from scrubgate.policy import Policy, PolicyError
from scrubgate.policy.catalogue import ServiceCatalogue
from scrubgate.proxy.tls_gate import UntrustedClients


# -- the catalogue and the policy -----------------------------------------------------------------
def _catalogue(**extra) -> ServiceCatalogue:
    entry = {"name": "Chat", "media": "opaque", "hosts": ["chat.example", "*.chat.example"], **extra}
    return ServiceCatalogue.parse({"services": {"chat": entry}}, "<test>")


def test_media_and_chat_hosts_must_be_hosts_of_the_service():
    cat = _catalogue(media_hosts=["media.chat.example"], chat_hosts=["ws.chat.example"])
    [s] = cat.services
    assert s.is_media_host("media.chat.example") and not s.is_media_host("ws.chat.example")
    assert cat.is_chat_host("ws.chat.example") and not cat.is_chat_host("media.chat.example")
    assert not cat.is_chat_host("other.chat.example")  # in neither list: never tunnelled
    for bad, why in [({"media_hosts": ["media.elsewhere.example"]}, "not one of the service's hosts"),
                     ({"chat_hosts": ["*.chat.example"]}, "exact names"),
                     ({"media_hosts": ["*.chat.example"], "chat_hosts": ["ws.chat.example"]}, "also a media host")]:
        with pytest.raises(PolicyError) as e:
            _catalogue(**bad)
        assert any(why in msg for msg in e.value.errors), e.value.errors


def test_a_chat_host_of_one_service_cannot_be_a_media_host_of_another():
    doc = {"services": {
        "a": {"name": "A", "media": "opaque", "hosts": ["*.shared.example"], "media_hosts": ["*.shared.example"]},
        "b": {"name": "B", "media": "opaque", "hosts": ["ws.shared.example"], "chat_hosts": ["ws.shared.example"]}}}
    with pytest.raises(PolicyError) as e:
        ServiceCatalogue.parse(doc, "<test>")
    assert any("is a media host of a" in msg for msg in e.value.errors)


def test_the_shipped_policy_refuses_only_media_hosts_of_services_it_blocks_outright():
    policy = Policy.load(ROOT / "policies" / "default.yaml")
    assert policy.refusal_at_hello("mmg.whatsapp.net").id == "whatsapp"
    assert policy.refusal_at_hello("MMG.WhatsApp.net.").id == "whatsapp"  # as a ClientHello may spell it
    assert policy.refusal_at_hello("cdn2.signal.org").id == "signal"
    assert policy.refusal_at_hello("web.whatsapp.com") is None  # a chat host
    assert policy.refusal_at_hello("files.slack.com") is None  # cleaned, so decrypted
    # shared by Messenger (cleaned) and its encrypted chats (blocked): decrypted, decided by path
    assert policy.refusal_at_hello("rupload.facebook.com") is None
    assert policy.refusal_at_hello("bank.example.org") is None
    assert policy.tls.untrusted_clients == "tunnel_chat"
    strict = Policy.load(ROOT / "policies" / "strict.yaml")
    assert strict.tls.untrusted_clients == "block"


def test_the_tls_block_is_validated(tmp_path):
    text = (ROOT / "policies" / "default.yaml").read_text()
    (tmp_path / "services.yaml").write_text((ROOT / "policies" / "services.yaml").read_text())
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("blocked_media_hosts: refuse", "blocked_media_hosts: drop")
                   .replace("untrusted_memory_seconds: 3600", "untrusted_memory_seconds: 0"))
    with pytest.raises(PolicyError) as e:
        Policy.load(bad)
    assert any("tls.blocked_media_hosts" in m for m in e.value.errors), e.value.errors
    assert any("untrusted_memory_seconds" in m for m in e.value.errors), e.value.errors
    ok = tmp_path / "ok.yaml"
    ok.write_text(text.replace("blocked_media_hosts: refuse", "blocked_media_hosts: intercept"))
    assert Policy.load(ok).refusal_at_hello("mmg.whatsapp.net") is None


def test_the_memory_of_untrusted_clients_expires_and_is_bounded():
    mem = UntrustedClients(max_entries=3)
    mem.note("10.0.0.1", "whatsapp", 60, now=0)
    assert mem.seen("10.0.0.1", "whatsapp", now=59) and not mem.seen("10.0.0.1", "slack", now=1)
    assert not mem.seen("10.0.0.2", "whatsapp", now=1)
    assert not mem.seen("10.0.0.1", "whatsapp", now=61) and len(mem) == 0  # expired, and forgotten
    for i in range(5):
        mem.note(f"10.0.0.{i}", "whatsapp", 60, now=0)
    assert len(mem) == 3 and not mem.seen("10.0.0.0", "whatsapp", now=1) and mem.seen("10.0.0.4", "whatsapp", now=1)


# -- a real gateway ---------------------------------------------------------------------------------
def _metric(gw, decision: str, service: str) -> float:
    m = re.search(rf'^scrubgate_tls_decisions_total\{{decision="{decision}",service="{service}"\}} (\S+)$',
                  gw.metrics(), re.M)
    return float(m.group(1)) if m else 0.0


def _connect(gw, target: str) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    return raw


def _read_head(raw: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = raw.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _audit(gw) -> list[dict]:
    return [json.loads(ln) for ln in gw.audit_log.read_text().splitlines() if ln.strip()]


def test_a_connect_to_a_refused_media_host_is_answered_at_once(gateway, upstream):
    """An explicit-proxy client (a phone with the Wi-Fi proxy set) asking for WhatsApp's
    media host: a 403 to the CONNECT, with the reason, before any TLS; no tunnel."""
    before = len(upstream.requests)
    t0 = time.monotonic()
    with _connect(gateway, "mmg.whatsapp.net:443") as raw:
        data = _read_head(raw)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
        while len(body) < length:
            body += raw.recv(4096)
    seconds = time.monotonic() - t0
    assert head.startswith(b"HTTP/1.1 403"), head
    assert b"X-Scrubgate-Reason: media_host" in head
    text = (head + b"\r\n\r\n" + body).decode()
    assert "WhatsApp" in text and "NHSmail" in text
    incident = re.search(r"X-Scrubgate-Incident: ([0-9a-f]{12})", text).group(1)
    assert seconds < 5
    assert len(upstream.requests) == before
    rec = next(r for r in reversed(_audit(gateway)) if r.get("incident") == incident)
    assert (rec["event"], rec["service"], rec["host"], rec["action"], rec["reason"]) == \
        ("connection", "whatsapp", "mmg.whatsapp.net", "block", "media_host")
    assert _metric(gateway, "refused_connect", "whatsapp") >= 1


def test_a_client_hello_naming_a_refused_media_host_gets_an_alert(gateway, upstream):
    """What a phone in transparent mode sees: the tunnel is to an address, and the name is
    only in the ClientHello (SNI). The gateway answers with a fatal access_denied alert,
    shows no certificate, and opens no connection to the host."""
    before = _metric(gateway, "refused_media_host", "whatsapp")
    with _connect(gateway, f"127.0.0.1:{upstream.port}") as raw:
        assert _read_head(raw).startswith(b"HTTP/1.1 200")
        ctx = ssl.create_default_context(cafile=str(gateway.trust_pem))
        with pytest.raises(ssl.SSLError) as e:
            ctx.wrap_socket(raw, server_hostname="mmg.whatsapp.net")
    assert "ACCESS_DENIED" in str(e.value).upper(), e.value
    assert _metric(gateway, "refused_media_host", "whatsapp") == before + 1


@pytest.fixture(scope="module")
def fresh_gateway(tmp_path_factory, upstream):
    """A gateway of its own: what it remembers about this test's client must not leak into others."""
    gw = start_gateway(tmp_path_factory.mktemp("tls-gate"), upstream)
    yield gw
    stop_gateway(gw)


def _handshake(gw, host: str, ca) -> ssl.SSLSocket:
    raw = _connect(gw, f"{host}:443")
    assert _read_head(raw).startswith(b"HTTP/1.1 200")
    ctx = ssl.create_default_context(cafile=str(ca))
    return ctx.wrap_socket(raw, server_hostname=host)


def _wait_counted(gw, service: str, at_least: float) -> None:
    deadline = time.monotonic() + 10
    while _metric(gw, "handshake_failed", service) < at_least:
        assert time.monotonic() < deadline, "the failed handshake was not counted"
        time.sleep(0.1)


def test_a_client_without_the_ca_gets_chat_tunnelled_but_never_media(fresh_gateway, upstream):
    gw = fresh_gateway
    # A phone that trusts only public CAs (here: only the upstream's test CA).
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(gw, "web.whatsapp.com", upstream.ca_pem)
    _wait_counted(gw, "whatsapp", 1)
    with _handshake(gw, "web.whatsapp.com", upstream.ca_pem) as tls:
        assert tls.getpeercert(binary_form=True) == upstream.cert_der  # the server's own certificate
        tls.sendall(b"GET /ws/chat?tunnelled=1 HTTP/1.1\r\nHost: web.whatsapp.com\r\nConnection: close\r\n\r\n")
        assert b"200 OK" in tls.recv(4096)
    assert upstream.received("/ws/chat?tunnelled=1")
    assert _metric(gw, "tunnelled_untrusted", "whatsapp") == 1

    # files.slack.com carries media that the policy cleans: it is never tunnelled.
    before = len(upstream.requests)
    for attempt in (1, 2, 3):
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(gw, "files.slack.com", upstream.ca_pem)
        _wait_counted(gw, "slack", attempt)
    assert len(upstream.requests) == before
    assert _metric(gw, "tunnelled_untrusted", "slack") == 0

    records = [r for r in _audit(gw) if r.get("event") == "connection"]
    assert [(r["service"], r["action"], r["reason"]) for r in records[:2]] == [
        ("whatsapp", "block", "tls_untrusted"), ("whatsapp", "tunnel", "tls_untrusted")]
    assert all(r["client"] == "127.0.0.1" and r["policy"]["name"] == "default" for r in records)


def test_with_untrusted_clients_block_nothing_is_tunnelled(tmp_path, upstream):
    gw = gateway_with_policy_edits(tmp_path, upstream, {"untrusted_clients: tunnel_chat": "untrusted_clients: block"})
    try:
        for attempt in (1, 2):
            with pytest.raises(ssl.SSLCertVerificationError):
                _handshake(gw, "web.whatsapp.com", upstream.ca_pem)
            _wait_counted(gw, "whatsapp", attempt)
        assert _metric(gw, "tunnelled_untrusted", "whatsapp") == 0
    finally:
        stop_gateway(gw)


def test_policy_check_names_what_is_decided_before_decryption():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "scrubgate", "policy", "check", str(ROOT / "policies" / "default.yaml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    refused = next(ln for ln in r.stdout.splitlines() if ln.startswith("refused by name"))
    assert "mmg.whatsapp.net" in refused and "files.slack.com" not in refused
    tunnelled = next(ln for ln in r.stdout.splitlines() if ln.startswith("tunnelled for clients"))
    assert "web.whatsapp.com" in tunnelled and "mmg.whatsapp.net" not in tunnelled
