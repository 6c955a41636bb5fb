#!/usr/bin/env python3
"""scrubgate's own hooks on the chat path, in-process: microseconds per request.

    .venv/bin/python -m bench.hooks [REPO]      # REPO: another checkout to compare (default: this one)

The proxy benchmark measures whole requests through real processes, where this
machine's noise (mitmdump alone varies 10-30% between runs) hides changes of a
few per cent. This times only what scrubgate adds to a chat message on the event
loop -- Gateway.requestheaders + request (route, the JSON check for embedded
files), Metrics and Audit (one line to a file) -- on 5000 mitmproxy test flows.
Run it for two checkouts back to back to compare them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]).resolve()
sys.path.insert(0, str(REPO / "addons"))  # this or another checkout, to compare them

from mitmproxy import http  # noqa: E402
from mitmproxy.test import taddons, tflow  # noqa: E402

from scrubgate.policy import Policy  # noqa: E402
from scrubgate.proxy import make_addons  # noqa: E402

N = 5000


async def main() -> None:
    addons = make_addons()
    by_name = {type(a).__name__: a for a in addons}  # the order changed over time
    gateway, metrics, audit = by_name["Gateway"], by_name["Metrics"], by_name["Audit"]
    with taddons.context(*addons) as tctx, tempfile.TemporaryDirectory() as tmp:
        tctx.configure(audit, scrubgate_audit_log=str(Path(tmp) / "audit.jsonl"))
        policy = Policy.load(REPO / "policies" / "default.yaml")
        if hasattr(gateway, "store"):
            gateway.store.install(policy)
        else:  # a checkout from before the policy store
            gateway.policy = policy
        body = json.dumps({"channel": "C1", "text": "ward round at 10, bed 4 stable"}).encode()
        flows = []
        for _ in range(N):
            f = tflow.tflow()
            f.request = http.Request.make("POST", "https://slack.com/api/chat.postMessage", body,
                                          {"Host": "slack.com", "Content-Type": "application/json"})
            flows.append(f)
        started = time.perf_counter()
        for f in flows:
            gateway.requestheaders(f)
            await gateway.request(f)
            metrics.request(f)
            audit.request(f)
        took = time.perf_counter() - started
    print(f"{REPO}: {1e6 * took / N:.1f} µs per chat request in scrubgate's hooks ({N} flows)")


if __name__ == "__main__":
    asyncio.run(main())
