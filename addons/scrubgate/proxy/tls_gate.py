"""Decisions taken before anything is decrypted: phones, pinned apps, BYOD.

A phone app that pins its certificate, or a phone that does not trust the
gateway's CA, never completes a TLS handshake with the gateway, so no block
page can reach it. What such a client gets is decided per host, from the
server name (SNI) in its ClientHello or the host in its CONNECT:

* A **media host** (catalogue `media_hosts`) of a service whose uploads the
  policy blocks outright is refused at once (`tls.blocked_media_hosts: refuse`):
  a fatal TLS `access_denied` alert in transparent mode, a 403 to an explicit
  proxy's CONNECT. Nothing is decrypted and nothing reaches the service. This
  works for pinned apps, and is how network vendors block WhatsApp media.
* A client that fails the gateway's handshake for a catalogue host is
  remembered per client address and service. With
  `tls.untrusted_clients: tunnel_chat`, that service's **chat hosts**
  (catalogue `chat_hosts`: exact names documented to carry no media upload)
  are then tunnelled for it, so chat keeps working. Every other host of the
  service stays intercepted, so its handshake keeps failing: fail closed.

Safety never rests on the memory: whether a media host is refused, and that a
media host is never tunnelled, is decided from the policy alone, the same on
every replica. The memory only decides between intercepting and tunnelling a
chat host, and a replica that has not seen the failure costs the client one
more failed handshake (Kubernetes `sessionAffinity: ClientIP` keeps a client
on one replica).

QUIC (HTTP/3) to a catalogue host, which reaches the gateway in WireGuard or
local mode (transparent mode's firewall rejects UDP/443 before it), is dropped:
the uploads would otherwise travel a path the tests do not cover, and clients
fall back to TCP, where everything is inspected.

Every decision is counted (`scrubgate_tls_decisions_total`) and audited.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict

from mitmproxy import http
from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy.layers import ClientQuicLayer, ClientTLSLayer, ServerQuicLayer, ServerTLSLayer
from mitmproxy.proxy.layers.quic import quic_parse_client_hello_from_datagrams
from mitmproxy.proxy.layers.tls import parse_client_hello

from . import metrics
from .audit import Audit, connection_record
from .policy_store import PolicyStore

log = logging.getLogger("scrubgate.tls")

# A TLS alert record: content type 21, TLS 1.2 record version, length 2, fatal (2),
# access_denied (49). Clients report "alert access denied", which says what happened.
TLS_ACCESS_DENIED = bytes([21, 3, 3, 0, 2, 2, 49])

# Handshake failures that say nothing about the client's trust in our CA.
_NOT_TRUST = ("Cannot parse ClientHello", "cannot agree on a TLS version", "connection closed early")


class RefuseTls(layer.Layer):
    """Answers a ClientHello with a fatal access_denied alert and closes: no certificate
    is shown and no server connection is opened."""

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if isinstance(event, events.Start):
            yield commands.SendData(self.context.client, TLS_ACCESS_DENIED)
            yield commands.CloseConnection(self.context.client)
        # whatever the client sends after that is dropped


class DropQuic(layer.Layer):
    """Ends a QUIC connection to a catalogue host without an answer: the client's HTTP/3
    attempt times out and it falls back to TCP."""

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if isinstance(event, events.Start):
            yield commands.CloseConnection(self.context.client)


class UntrustedClients:
    """Client addresses that failed the gateway's handshake, per service, for a while.
    Bounded: the oldest entries go first when it is full."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._until: OrderedDict[tuple[str, str], float] = OrderedDict()

    def note(self, client: str, service: str, seconds: float, now: float | None = None) -> None:
        key = (client, service)
        self._until.pop(key, None)
        self._until[key] = (time.monotonic() if now is None else now) + seconds
        while len(self._until) > self.max_entries:
            self._until.popitem(last=False)

    def seen(self, client: str, service: str, now: float | None = None) -> bool:
        until = self._until.get((client, service))
        if until is None:
            return False
        if until < (time.monotonic() if now is None else now):
            del self._until[(client, service)]
            return False
        return True

    def __len__(self) -> int:
        return len(self._until)


def _client_address(client) -> str | None:
    peer = client.peername
    return str(peer[0]) if peer else None


class TlsGate:
    """Hooks: next_layer (refuse by SNI), http_connect (refuse a CONNECT),
    tls_clienthello (tunnel a chat host), tls_failed_client (remember the client)."""

    def __init__(self, store: PolicyStore, audit: Audit) -> None:
        self.store = store
        self.audit = audit
        self.untrusted = UntrustedClients()

    # -- refusals ------------------------------------------------------------------------------
    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        policy = self.store.policy
        if policy is not None and isinstance(nextlayer.layer, (ServerQuicLayer, ClientQuicLayer)):
            self._quic(nextlayer, policy)
            return
        if policy is None or not isinstance(nextlayer.layer, (ServerTLSLayer, ClientTLSLayer)):
            return  # not TLS, not decided yet, or tunnelled (not a catalogue host)
        try:
            hello = parse_client_hello(nextlayer.data_client())
        except ValueError:
            return
        if hello is None or not hello.sni:
            return
        host = hello.sni.lower().rstrip(".")
        service = policy.refusal_at_hello(host)
        if service is not None:
            nextlayer.layer = RefuseTls(nextlayer.context)
            self._record(_client_address(nextlayer.context.client), service.id, host, "refused_media_host",
                         "block", "media_host")

    def _quic(self, nextlayer: layer.NextLayer, policy) -> None:
        """mitmproxy chose to intercept QUIC, so the ClientHello named a catalogue host
        (others are tunnelled before this): drop it, the client falls back to TCP."""
        try:
            hello = quic_parse_client_hello_from_datagrams([nextlayer.data_client()])
        except ValueError:
            hello = None
        host = (hello.sni if hello and hello.sni else "").lower().rstrip(".")
        services = policy.catalogue.services_for_host(host) if host else ()
        nextlayer.layer = DropQuic(nextlayer.context)
        if services:
            self._record(_client_address(nextlayer.context.client), services[0].id, host, "refused_quic",
                         "block", "quic")

    def http_connect(self, flow: http.HTTPFlow) -> None:
        """An explicit proxy's CONNECT to a refused media host: a pinned app cannot show a
        block page, so the tunnel is refused at once, with the reason in the answer."""
        policy = self.store.policy
        if policy is None or flow.response is not None:
            return
        host = flow.request.host.lower().rstrip(".")
        service = policy.refusal_at_hello(host)
        if service is None:
            return
        incident = self._record(_client_address(flow.client_conn), service.id, host, "refused_connect",
                                "block", "media_host")
        channel = policy.approved_channel
        text = (f"scrubgate: {service.name} media uploads are blocked on this network: {service.name} "
                f"encrypts files on the device, so patient details cannot be removed on the way out. "
                f"Use {channel.name} ({channel.url}) instead. Incident {incident}.\n")
        flow.response = http.Response.make(403, text.encode(), {
            "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store",
            "X-Scrubgate-Reason": "media_host", "X-Scrubgate-Incident": incident})

    # -- clients that cannot be intercepted ----------------------------------------------------
    def tls_clienthello(self, data) -> None:
        policy = self.store.policy
        sni = (data.client_hello.sni or "").lower().rstrip(".")
        client = _client_address(data.context.client)
        if (policy is None or policy.tls.untrusted_clients != "tunnel_chat" or not sni or client is None
                or data.ignore_connection or not policy.catalogue.is_chat_host(sni)):
            return
        services = policy.catalogue.services_for_host(sni)
        seen = next((s for s in services if self.untrusted.seen(client, s.id)), None)
        if seen is not None:
            data.ignore_connection = True
            self._record(client, seen.id, sni, "tunnelled_untrusted", "tunnel", "tls_untrusted")

    def tls_failed_client(self, data) -> None:
        policy = self.store.policy
        sni = (data.conn.sni or "").lower().rstrip(".")
        client = _client_address(data.context.client)
        error = data.conn.error or ""
        if policy is None or not sni or client is None or any(s in error for s in _NOT_TRUST):
            return
        services = policy.catalogue.services_for_host(sni)
        for service in services:
            self.untrusted.note(client, service.id, policy.tls.untrusted_memory_seconds)
        if services:
            self._record(client, services[0].id, sni, "handshake_failed", "block", "tls_untrusted")

    # -- records -------------------------------------------------------------------------------
    def _record(self, client: str | None, service: str, host: str, decision: str, action: str,
                reason: str) -> str:
        incident = uuid.uuid4().hex[:12]
        metrics.TLS_DECISIONS.labels(service, decision).inc()
        self.audit.append(connection_record(client, service, host, action, reason, incident,
                                            self.store.policy), incident)
        log.info(f"{decision.replace('_', ' ')}: {service} host {host} (incident {incident})")
        return incident
