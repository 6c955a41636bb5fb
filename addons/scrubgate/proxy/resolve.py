"""--resolve HOST:PORT=ADDR:PORT: connect somewhere else, keep the name.

Like curl's --resolve. Tests and demos use it to stand a local server in for
a real messenger; the TLS name (SNI) and certificate checks still use HOST.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

from mitmproxy import ctx, exceptions

log = logging.getLogger("scrubgate.resolve")


class ResolveSpec(NamedTuple):
    host: str
    port: int
    addr: str
    addr_port: int


def _split(hostport: str, spec: str) -> tuple[str, int]:
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise exceptions.OptionsError(
            f"invalid resolve spec {spec!r}: expected HOST:PORT=ADDR:PORT, e.g. "
            f"web.whatsapp.com:443=127.0.0.1:8443")
    return host.strip("[]").lower(), int(port)


def parse_spec(spec: str) -> ResolveSpec:
    left, sep, right = spec.partition("=")
    if not sep:
        raise exceptions.OptionsError(f"invalid resolve spec {spec!r}: expected HOST:PORT=ADDR:PORT")
    return ResolveSpec(*_split(left, spec), *_split(right, spec))


class Resolve:
    def __init__(self) -> None:
        self.table: dict[tuple[str, int], tuple[str, int]] = {}
        self._asked: dict[int, tuple[str, int]] = {}  # id(server) -> HOST:PORT, while it connects

    def load(self, loader) -> None:
        loader.add_option("scrubgate_resolve", Sequence[str], [],
                          "Connect to ADDR:PORT whenever a client asks for HOST:PORT, for any host. "
                          "Format: HOST:PORT=ADDR:PORT. For tests and demos only.")

    def configure(self, updated) -> None:
        if "scrubgate_resolve" in updated:
            specs = [parse_spec(s) for s in ctx.options.scrubgate_resolve]
            self.table = {(s.host, s.port): (s.addr, s.addr_port) for s in specs}

    def running(self) -> None:
        if self.table:
            log.warning(f"--resolve is in use: {len(self.table)} host(s) are redirected to other "
                        f"addresses. This is for tests and demos, not production.")

    def server_connect(self, data) -> None:
        if not self.table or not data.server.address:
            return
        host, port = data.server.address[0], data.server.address[1]
        target = self.table.get((str(host).lower(), port))
        if target:
            if data.server.sni is None:
                data.server.sni = host
            self._asked[id(data.server)] = (host, port)
            data.server.address = target

    def server_connected(self, data) -> None:
        # Give the open connection back the name the client asked for. mitmproxy reuses a
        # server connection for the next request only if its address matches the request's;
        # left at ADDR:PORT, every request would open one more connection until mitmproxy's
        # per-address connection limit stalls the client (lazy connection strategy). The
        # setter refuses changes on an open connection, hence the direct write.
        asked = self._asked.pop(id(data.server), None)
        if asked is not None:
            data.server.__dict__["address"] = asked

    def server_connect_error(self, data) -> None:
        self._asked.pop(id(data.server), None)
