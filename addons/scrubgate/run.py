"""`scrubgate run`: mitmproxy's DumpMaster with the scrubgate addons and our flags."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from mitmproxy import exceptions, options
from mitmproxy.tools.dump import DumpMaster

from .proxy import make_addons


def run(args) -> int:
    return asyncio.run(_main(args))


async def _main(args) -> int:
    logging.getLogger().setLevel(logging.INFO)
    for noisy in ("asyncio", "hpack", "tornado"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    opts = options.Options()
    master = DumpMaster(opts, with_termlog=True, with_dumper=False)
    master.addons.add(*make_addons())
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
