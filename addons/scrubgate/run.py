"""`scrubgate run`: mitmproxy's DumpMaster with the scrubgate addons and our flags."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys

from mitmproxy import ctx, exceptions, options
from mitmproxy.tools.dump import DumpMaster

from .proxy import make_addons


def run(args, icap: bool = False) -> int:
    """`scrubgate run` (the proxy), or with icap=True `scrubgate icap` (the same addons
    behind an ICAP listener, mitmproxy's own proxy server off)."""
    clash = port_clash(args)
    if clash:
        print(f"scrubgate: {clash}", file=sys.stderr)
        return 2
    return asyncio.run(_main(args, icap))


def _busy(host: str, port: int) -> str | None:
    """Why HOST:PORT cannot be listened on, or None. Binding is the only honest test."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        return f"{host} is not an address of this machine ({e.strerror})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's servers do
        try:
            s.bind(address)
        except OSError as e:
            return e.strerror or str(e)
    return None


def port_clash(args) -> str | None:
    """One line naming the flag to change, instead of a traceback or mitmproxy's --mode hint."""
    checks = [(args.metrics_host, args.metrics_port, "--metrics-port")] if args.metrics_port else []
    if not args.mode:  # with --mode the listen address is the mode's own; mitmproxy reports it
        checks.insert(0, (args.listen_host, args.listen_port, "--listen-port"))
    for host, port, flag in checks:
        why = _busy(host, port)
        if why:
            return f"cannot listen on {host}:{port} ({why}); choose another port with {flag}"
    return None


class _Announce:
    """With -q mitmproxy's info lines are gone; where the gateway listens must still be said."""

    def __init__(self, metrics: str, icap: bool = False) -> None:
        self.metrics = metrics
        self.icap = icap

    def running(self) -> None:
        if self.icap:
            what, addrs = "ICAP service", f"{ctx.options.scrubgate_icap_host}:{ctx.options.scrubgate_icap_port}"
        else:
            server = ctx.master.addons.get("proxyserver")
            what = "proxy"
            addrs = ", ".join(f"{a[0]}:{a[1]}" for a in server.listen_addrs()) if server else "?"
        print(f"scrubgate: {what} listening on {addrs}; {self.metrics}", file=sys.stderr, flush=True)


async def _main(args, icap: bool = False) -> int:
    logging.getLogger().setLevel(logging.INFO)
    for noisy in ("asyncio", "hpack", "tornado"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    opts = options.Options()
    master = DumpMaster(opts, with_termlog=True, with_dumper=False)
    addons = make_addons()
    master.addons.add(*addons)
    if icap:
        from .icap.server import IcapServer
        from .proxy import Gateway, PolicyStore
        from .proxy import Metrics
        store = next(a for a in addons if isinstance(a, PolicyStore))
        icap_server = IcapServer(store, next(a for a in addons if isinstance(a, Gateway)))
        master.addons.add(icap_server)
        next(a for a in addons if isinstance(a, Metrics)).add_readiness(icap_server.readiness)
    if args.quiet:
        metrics = (f"metrics on http://{args.metrics_host}:{args.metrics_port}/metrics" if args.metrics_port
                   else "metrics off")
        master.addons.add(_Announce(metrics, icap))
    updates = {
        "listen_host": args.listen_host,
        "listen_port": args.listen_port,
        "mode": args.mode or ["regular"],
        "scrubgate_policy": args.policy,
        "scrubgate_metrics_host": args.metrics_host,
        "scrubgate_metrics_port": args.metrics_port,
        "scrubgate_workers": args.workers,
        "scrubgate_secret_file": args.secret_file,
        "scrubgate_resolve": args.resolve,
        "termlog_verbosity": "warn" if args.quiet else "info",
    }
    if icap:  # mitmproxy's proxy server stays off; the ICAP listener takes the address
        updates.update(server=False, listen_port=0, scrubgate_icap_host=args.listen_host,
                       scrubgate_icap_port=args.listen_port,
                       scrubgate_icap_max_connections=args.max_connections,
                       scrubgate_icap_timeout=args.timeout)
    if args.upstream_ca:
        if not os.path.isfile(args.upstream_ca):
            print(f"scrubgate: --upstream-ca {args.upstream_ca}: no such file", file=sys.stderr)
            return 2
        updates["ssl_verify_upstream_trusted_ca"] = args.upstream_ca
    if args.confdir:
        updates["confdir"] = args.confdir
    if args.audit_log:
        updates["scrubgate_audit_log"] = args.audit_log
        updates["scrubgate_audit_max_bytes"] = args.audit_max_bytes
        updates["scrubgate_audit_backups"] = args.audit_backups
    try:
        if args.confdir:  # the CA is read when confdir is configured: set it first
            opts.update(confdir=args.confdir)
        opts.update(**updates)
        opts.set(*args.set_options)
    except exceptions.OptionsError as e:
        print(f"scrubgate: {e}", file=sys.stderr)
        return 2

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, master.shutdown)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    await master.run()
    return 0
