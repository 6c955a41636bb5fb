"""`scrubgate icap`: the gateway as an ICAP REQMOD service for an existing web proxy.

The hospital's proxy (Squid, a secure web gateway) decrypts and calls us with each
request. We build a mitmproxy flow from the encapsulated request and run the very
hooks the proxy runs: the Gateway admits and decides (workers clean), Audit and
Metrics record. Only the transport differs:

* not a catalogue request: `204 No Content` (or the request echoed if the client
  did not allow 204), decided from the headers with `Preview: 0`, before the body;
* blocked: an encapsulated HTTP 403 with the block page (HTML or JSON);
* cleaned: the modified HTTP request, lengths fixed;
* anything we cannot do: an ICAP error, so that a client configured with
  `bypass=off` refuses the request (fail closed).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from urllib.parse import urlsplit

from mitmproxy import connection, ctx, http
from mitmproxy.proxy.layers.http import HttpRequestHook

from .. import __version__
from ..job import on_failure
from ..proxy import metrics
from ..proxy.decision import Decision
from ..proxy.gateway import Gateway, block
from ..proxy.policy_store import PolicyStore
from .connection import IcapConnection
from .protocol import BodyTooLarge, IcapError, IcapRequest, read_chunks, read_request, response

log = logging.getLogger("scrubgate.icap")

SERVICES = ("reqmod", "scrubgate")
_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 404: "ICAP Service Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 500: "Server Error",
            503: "Service Overloaded"}


def _parse_http_head(head: bytes) -> tuple[str, str, str, list[tuple[bytes, bytes]]]:
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise IcapError(400, "malformed encapsulated HTTP request line")
    fields = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise IcapError(400, "malformed encapsulated HTTP header line")
        fields.append((name, value.strip()))
    try:
        return parts[0].decode("ascii"), parts[1].decode("ascii"), parts[2].decode("ascii"), fields
    except UnicodeDecodeError:
        raise IcapError(400, "non-ASCII encapsulated request line")


def _make_flow(req: IcapRequest, peer: tuple[str, int], local: tuple[str, int]) -> tuple[http.HTTPFlow, str]:
    """A live mitmproxy flow for the encapsulated request (body not yet set), and the
    request target as it came (it is written back unchanged)."""
    method, target, version, fields = _parse_http_head(req.http_head)
    headers = http.Headers(fields)
    try:
        if target.startswith("/"):  # origin-form: the host is in the Host header
            host = headers.get("host", "")
            if not host:
                raise IcapError(400, "encapsulated request has neither an absolute URL nor a Host header")
            url = urlsplit(f"https://{host}{target}")
        else:
            url = urlsplit(target)
    except ValueError:  # urlsplit refuses "http://[x/"
        raise IcapError(400, "unreadable URL in the encapsulated request")
    if url.scheme not in ("http", "https") or not url.hostname:
        raise IcapError(400, "encapsulated request URL must be http(s)://host/...")
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        raise IcapError(400, "bad port in the encapsulated request URL")
    path = target if target.startswith("/") else (url.path or "/") + (f"?{url.query}" if url.query else "")
    request = http.Request(url.hostname, port, method.encode(), url.scheme.encode(), b"", path.encode(),
                           version.encode(), headers, b"", None, time.time(), None)
    # The client the proxy serves (Squid: adaptation_send_client_ip on), else the proxy.
    client_ip = req.headers.get("x-client-ip", "").strip() or peer[0]
    client = connection.Client(peername=(client_ip, 0), sockname=local, timestamp_start=time.time())
    server = connection.Server(address=(url.hostname, port))
    flow = http.HTTPFlow(client, server, live=True)
    flow.request = request
    user = req.headers.get("x-authenticated-user", "")
    if user:
        try:  # Squid sends base64("Local://name") or a bare base64 name
            name = base64.b64decode(user, validate=True).decode("utf-8").rsplit("/", 1)[-1]
            flow.metadata["proxyauth"] = (name, "")
        except (ValueError, UnicodeDecodeError):
            pass
    return flow, target


def _candidates(head: bytes) -> tuple[set[str], str]:
    """Every host an encapsulated request head names (the URL's and each Host header's) and
    its path, cheaply. The proxy connects by the URL, a server may read the Host header: the
    request is ours if any of them is a catalogue host. A head this cannot read is treated
    as ours, and the full parse judges it."""
    parts = head[:head.find(b"\r\n")].split(b" ")
    if len(parts) != 3:
        return set(), ""
    hosts = set()
    lowered = head.lower()
    at = lowered.find(b"\r\nhost:")
    while at >= 0:  # each Host header line (the head ends with a line break)
        end = head.find(b"\r\n", at + 7)
        hosts.add(_host_name(head[at + 7:end].strip().decode("latin-1")))
        at = lowered.find(b"\r\nhost:", end)
    target = parts[1]
    if target.startswith(b"/"):
        return hosts, target.decode("latin-1")
    plain = _PLAIN_URL.fullmatch(target)
    if plain:  # the common form, read as urlsplit would read it, at a fraction of its cost
        hosts.add(plain.group(1).decode("ascii").lower())
        return hosts, (plain.group(2) or b"/").decode("latin-1")
    try:
        url = urlsplit(target.decode("latin-1"))
    except ValueError:  # "http://[x/": unreadable, so ours, and the full parse refuses it
        return set(), ""
    hosts.add(_host_name(url.netloc))
    return hosts, url.path or "/"


def _host_name(authority: str) -> str:
    """`user@Host:port` -> `host`; a bare IPv6 address is left whole."""
    if authority.count(":") > 1 and "[" not in authority:
        return authority.lower()
    return authority.rpartition("@")[2].rsplit(":", 1)[0].strip("[]").lower()


# http(s)://host[:port][/path][?query]: letters, digits, dots and dashes in the host, nothing
# urlsplit would strip or split differently.
_PLAIN_URL = re.compile(rb"https?://([A-Za-z0-9.-]+)(?::[0-9]{1,5})?(/[^?#\s]*)?(?:[?#][^\s]*)?")


# The common head, read in one pass: a request line with a plain absolute URL (as
# _PLAIN_URL), and where each Host line is; a Host value that is a plain name (and
# port) is captured, any other leaves its group empty.
_PLAIN_REQUEST_LINE = re.compile(
    rb"[^ \r\n]* https?://([A-Za-z0-9.-]+)(?::[0-9]{1,5})?(/[^?#\s]*)?(?:[?#][^\s]*)? [^ \r\n]*\r\n")
_HOST_LINE = re.compile(rb"\r\nhost:(?:[ \t]*([A-Za-z0-9.-]+)(?::[0-9]{0,5})?[ \t]*(?=\r\n))?", re.I)


def _ours(catalogue, head: bytes) -> bool:
    """Whether the policy routes any host the head names. The quick path asks this of
    every request, so the common head is read with two regular expressions, and only
    a head they cannot vouch for takes `_candidates` (the same answer, several times
    the cost; tests/test_fuzz.py compares them)."""
    line = _PLAIN_REQUEST_LINE.match(head)
    if line is not None:
        names = _HOST_LINE.findall(head)
        if b"" not in names:  # else a Host value that is not a plain name
            names.append(line.group(1))
            return _routed(catalogue, {n.decode("ascii") for n in names}, (line.group(2) or b"/").decode("latin-1"))
    return _ours_by_candidates(catalogue, head)


def _ours_by_candidates(catalogue, head: bytes) -> bool:
    """`_ours` for any head: every host it names routed, and a head with none is ours."""
    hosts, path = _candidates(head)
    return not hosts or _routed(catalogue, hosts, path)


def _routed(catalogue, hosts, path: str) -> bool:
    """Any of `hosts` (the catalogue folds case) belongs to a service."""
    return any(catalogue.route(host, path) is not None for host in hosts)


def _http_head(first_line: str, headers: http.Headers) -> bytes:
    lines = [first_line.encode("ascii")] + [k + b": " + v for k, v in headers.fields]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class IcapServer:
    """mitmproxy addon: listens for ICAP and runs each REQMOD through the gateway's hooks."""

    def __init__(self, store: PolicyStore, gateway: Gateway) -> None:
        self.store = store
        self.gateway = gateway
        self.server: asyncio.AbstractServer | None = None
        self.connections = 0
        self._quick_policy = None  # the policy _quick_204 was made for
        self._quick_204 = b""
        # 204s of the quick path, counted here and added to the metric once a second: a
        # Prometheus counter takes a lock per increment, a tenth of the quick path's cost.
        self._quick_204s = 0
        self._quick_count = metrics.ICAP_REQUESTS.labels("REQMOD", "204")
        self._flush_timer: asyncio.TimerHandle | None = None

    def load(self, loader) -> None:
        loader.add_option("scrubgate_icap_host", str, "127.0.0.1", "ICAP listen address.")
        loader.add_option("scrubgate_icap_port", int, 1344, "ICAP listen port (RFC 3507's 1344).")
        loader.add_option("scrubgate_icap_max_connections", int, 1000,
                          "ICAP connections served at once; more are answered 503 and closed. "
                          "Announced in OPTIONS as Max-Connections.")
        loader.add_option("scrubgate_icap_timeout", int, 120,
                          "Seconds one ICAP request may take to arrive and be answered (a client that "
                          "trickles or stalls is cut off), and that an idle keep-alive connection is kept.")

    async def running(self) -> None:
        host, port = ctx.options.scrubgate_icap_host, ctx.options.scrubgate_icap_port
        timeout = ctx.options.scrubgate_icap_timeout
        try:
            self.server = await asyncio.get_running_loop().create_server(
                lambda: IcapConnection(self, timeout), host, port)
        except OSError as e:
            log.error(f"cannot listen for ICAP on {host}:{port} ({e.strerror}); choose another port "
                      f"with --listen-port")
            ctx.master.shutdown()
            return
        self._flush_quick_count()
        addrs = ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in self.server.sockets)
        log.info(f"ICAP service listening on {addrs} (icap://HOST:{port}/reqmod)")

    def done(self) -> None:
        if self._flush_timer:
            self._flush_timer.cancel()
        self._flush_quick_count(again=False)
        if self.server:
            self.server.close()

    def _flush_quick_count(self, again: bool = True) -> None:
        if self._quick_204s:
            self._quick_count.inc(self._quick_204s)
            self._quick_204s = 0
        if again:
            self._flush_timer = asyncio.get_running_loop().call_later(1.0, self._flush_quick_count)

    def readiness(self) -> tuple[bool, str]:
        if self.server is None or not self.server.is_serving():
            return False, "ICAP listener not up"
        return True, f"ICAP on port {ctx.options.scrubgate_icap_port}"

    @property
    def istag(self) -> str:
        """Changes whenever the policy (or its catalogue) changes, so clients drop cached OPTIONS."""
        policy = self.store.policy
        return f'"sg-{policy.sha256[:24]}"' if policy else '"sg-none"'

    def _headers(self, **extra: str) -> dict[str, str]:
        return {"ISTag": self.istag, "Server": f"scrubgate/{__version__}", **extra}

    # -- connections ---------------------------------------------------------------------------
    def admit_connection(self, conn: IcapConnection) -> bool:
        """Count a new connection, or answer 503 when there are too many (the caller closes)."""
        if self.connections >= ctx.options.scrubgate_icap_max_connections:
            metrics.ICAP_REQUESTS.labels("other", "503").inc()
            conn.write(self._error(503))
            return False
        self.connections += 1
        metrics.ICAP_CONNECTIONS.set(self.connections)
        return True

    def release_connection(self, conn: IcapConnection) -> None:
        self.connections -= 1
        metrics.ICAP_CONNECTIONS.set(self.connections)

    def quick_answer(self, http_head: bytes) -> bytes | None:
        """`204` for a request the connection's quick look recognised (a REQMOD whose body, if
        any, stays with the client), when it is not ours; None: the stream path serves it.
        The decision `_answer` takes for such a request, without building one."""
        policy = self.store.policy
        if policy is None or _ours(policy.catalogue, http_head):
            return None
        if policy is not self._quick_policy:  # the 204 carries the policy's ISTag
            self._quick_policy = policy
            self._quick_204 = response(204, "No Content", self._headers())
        self._quick_204s += 1
        return self._quick_204

    async def serve(self, conn: IcapConnection) -> bool:
        """Serve requests from the connection's inbox until it is empty between two. True: the
        connection carries on (on the quick path); False: close it."""
        peer = (conn.get_extra_info("peername") or ("?", 0))[:2]
        local = (conn.get_extra_info("sockname") or ("?", 0))[:2]
        reader = conn.inbox
        try:
            while True:
                try:
                    async with asyncio.timeout(ctx.options.scrubgate_icap_timeout):
                        keep = await self._one(reader, conn, peer, local)
                except EOFError:
                    return False  # closed between requests
                except IcapError as e:
                    metrics.ICAP_ERRORS.labels(_error_label(e.status)).inc()
                    log.info(f"ICAP request refused: {e.status} {e.detail}")
                    await self._send(conn, self._error(e.status), "other", e.status)
                    return False
                except TimeoutError:
                    metrics.ICAP_ERRORS.labels("timeout").inc()
                    return False
                if not keep:
                    return False
                if not reader.buf:
                    return True
        except (ConnectionError, asyncio.IncompleteReadError):
            metrics.ICAP_ERRORS.labels("aborted").inc()
            return False
        except Exception as e:  # a bug of ours: answer 500 (the proxy refuses the request), close
            log.exception("ICAP internal error")
            metrics.ICAP_ERRORS.labels("internal").inc()
            await self._send(conn, self._error(500), "other", 500)
            return False

    async def _send(self, writer: IcapConnection, data: bytes, method: str, status: int) -> None:
        metrics.ICAP_REQUESTS.labels(method, str(status)).inc()
        writer.write(data)
        try:
            await writer.drain()
        except ConnectionError:
            pass

    async def _one(self, reader, writer, peer, local) -> bool:
        """Serve one ICAP request. True: the connection can carry another."""
        req = await read_request(reader)
        keep = await self._answer(req, reader, writer, peer, local)
        return keep and req.headers.get("connection", "").lower() != "close"

    async def _answer(self, req: IcapRequest, reader, writer, peer, local) -> bool:
        if req.service not in SERVICES:
            raise IcapError(404, "unknown ICAP service (use /reqmod)")
        if req.method == "OPTIONS":
            await self._send(writer, self._options(), "OPTIONS", 200)
            return True
        if req.method != "REQMOD":
            raise IcapError(405, f"{req.method} is not offered (REQMOD only)")
        if not req.http_head:
            raise IcapError(400, "REQMOD without an encapsulated request head (req-hdr)")
        policy = self.store.policy
        if policy is None:
            raise IcapError(503, "not ready: no policy")
        if req.http_head.startswith(b"CONNECT ") and not req.has_body:
            # The proxy asks about the tunnel itself (Squid does, before ssl-bump): no body,
            # nothing to clean; the requests inside come one by one after the bump.
            status, data, keep = self._unchanged(req)
            await self._send(writer, data, "REQMOD", status)
            return keep
        if not _ours(policy.catalogue, req.http_head):
            # Not ours, decided from the head alone (no flow built): the common case.
            status, data, keep = await self._not_ours(req, reader, policy.limits.max_body_bytes)
        elif not self.gateway.sanitisers.ready:  # ours, and no one to clean it: fail closed
            raise IcapError(503, "not ready: the sanitiser workers are not all up")
        else:
            flow, target = _make_flow(req, peer, local)
            status, data, keep = await self._reqmod(req, flow, target, reader, writer)
        await self._send(writer, data, "REQMOD", status)
        return keep

    def _options(self) -> bytes:
        return response(200, "OK", self._headers(**{
            "Methods": "REQMOD", "Service": f"scrubgate {__version__} image sanitiser",
            "Max-Connections": str(ctx.options.scrubgate_icap_max_connections),
            "Options-TTL": "60", "Allow": "204", "Preview": "0", "Transfer-Preview": "*"}))

    # -- REQMOD --------------------------------------------------------------------------------
    async def _reqmod(self, req: IcapRequest, flow: http.HTTPFlow, target: str, reader, writer
                      ) -> tuple[int, bytes, bool]:
        policy = self.store.policy
        limit = policy.limits.max_body_bytes
        service = Gateway.route(flow, policy)  # the Host header's host, or the URL's
        if service is None:  # a head the quick look could not read, judged in full
            return await self._not_ours(req, reader, limit)

        # Ours: admit by declared length before reading the body (budget, size limit).
        length = flow.request.headers.get("content-length", "")
        declared = int(length) if length.isascii() and length.isdigit() else (limit if req.has_body else 0)
        self.gateway.admit(flow, declared)
        whole = True
        if flow.response is None and req.has_body:
            try:
                ieof = await read_chunks(reader, req, limit)
                if req.preview is not None and not ieof:
                    writer.write(b"ICAP/1.0 100 Continue\r\n\r\n")
                    await writer.drain()
                    await read_chunks(reader, req, limit)
            except BodyTooLarge:
                whole = False
                outcome = on_failure(policy.fail_open, "too_large", "body size is over the limit")
                if outcome.action != "block":  # failing open: the client forwards its own copy
                    self.gateway.release(flow)
                    if not req.allow_204:
                        return 500, self._error(500), False
                    status, data, _ = self._unchanged(req)
                    return status, data, False  # the rest of the body is still unread: close
                block(flow, Decision(service.id, service.media, service.is_upload(flow.request.path)),
                      policy, outcome.reason, outcome.detail)
        elif req.has_body:
            whole = False  # refused at admission: the body stays unread
        original = bytes(req.body)
        if whole:
            flow.request.raw_content = original
        head_before = req.http_head
        await ctx.master.addons.handle_lifecycle(HttpRequestHook(flow))  # Gateway, Audit, Metrics
        if flow.response is not None:
            return 200, self._blocked(flow), whole
        new_head = _http_head(f"{flow.request.method} {target} {flow.request.http_version}", flow.request.headers)
        changed = flow.request.raw_content != original or new_head != _normalised(head_before)
        if not changed:
            return self._unchanged(req, original)
        body = flow.request.raw_content or b""
        if req.has_body or body:
            data = response(200, "OK", self._headers(), [("req-hdr", new_head)], body)
        else:
            data = response(200, "OK", self._headers(), [("req-hdr", new_head)])
        return 200, data, True

    async def _not_ours(self, req: IcapRequest, reader, limit: int) -> tuple[int, bytes, bool]:
        """Left as it is. With a preview the client still holds the body: only the preview is
        read. Without one, the body is on its way and is read (bounded) before the answer."""
        if req.has_body:
            if req.preview is not None:
                await read_chunks(reader, req, limit)
            else:
                await self._drain(reader, req, limit)
        return self._unchanged(req)

    def _unchanged(self, req: IcapRequest, body: bytes | None = None) -> tuple[int, bytes, bool]:
        if req.allow_204:
            return 204, response(204, "No Content", self._headers()), True
        # The client wants the message back: echo it as it came.
        if req.has_body:
            data = response(200, "OK", self._headers(), [("req-hdr", req.http_head)],
                            bytes(req.body) if body is None else body)
        else:
            data = response(200, "OK", self._headers(), [("req-hdr", req.http_head)])
        return 200, data, True

    def _blocked(self, flow: http.HTTPFlow) -> bytes:
        r = flow.response
        r.headers["content-length"] = str(len(r.raw_content or b""))
        head = _http_head(f"HTTP/1.1 {r.status_code} {r.reason or 'Forbidden'}", r.headers)
        return response(200, "OK", self._headers(), [("res-hdr", head)], r.raw_content or b"")

    def _error(self, status: int) -> bytes:
        """An ICAP error answer; the connection closes after it."""
        return response(status, _REASONS.get(status, "Error"), self._headers(Connection="close"))

    async def _drain(self, reader, req: IcapRequest, limit: int) -> None:
        try:
            await read_chunks(reader, req, limit)
        except BodyTooLarge:
            raise IcapError(400, "body of a request that is not ours is over the limit")


def _normalised(head: bytes) -> bytes:
    """A head as _http_head would write it (header lines `Name: value`), to compare."""
    lines = head[:-4].split(b"\r\n")
    out = [lines[0]]
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        out.append(name + b": " + value.strip())
    return b"\r\n".join(out) + b"\r\n\r\n"


def _error_label(status: int) -> str:
    return {400: "malformed", 404: "unknown_service", 405: "method", 503: "not_ready"}.get(status, "internal")
