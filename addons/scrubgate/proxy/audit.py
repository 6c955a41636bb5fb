"""The audit log: one JSON line per decision, with kinds, counts and hashes only.

`--audit-log PATH` appends to PATH (reopened on SIGHUP, for logrotate);
`--audit-log -` writes to stdout. The operations issue extends the record.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
from datetime import datetime, timezone

from mitmproxy import ctx, http

from .decision import Decision
from .metrics import ERRORS

log = logging.getLogger("scrubgate.audit")


def audit_record(flow: http.HTTPFlow, d: Decision, policy) -> dict:
    client = flow.client_conn.peername[0] if flow.client_conn.peername else None
    user = flow.metadata.get("proxyauth")
    return {
        "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "instance": socket.gethostname(),
        "incident": d.incident,
        "client": client,
        "user": user[0] if isinstance(user, tuple) else None,
        "service": d.service,
        "host": flow.request.pretty_host,
        "method": flow.request.method,
        "path": flow.request.path.split("?", 1)[0],
        "action": d.action,
        "reason": d.reason,
        "failed_open": d.failed_open,
        "payloads": [{
            "carrier": p.carrier, "format": p.format, "content": p.content, "action": p.action,
            "reason": p.reason, "would": p.would,
            "identifiers": _count(f.kind for f in p.findings),
            "metadata_removed": p.removed,
            "sha256_in": p.sha256_in, "sha256_out": p.sha256_out or None,
            "bytes_in": p.bytes_in, "bytes_out": p.bytes_out,
        } for p in d.payloads],
        "policy": {"name": policy.name, "version": policy.version, "sha256": policy.sha256}
        if policy else None,
    }


def _count(kinds) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in kinds:
        out[k] = out.get(k, 0) + 1
    return out


class Audit:
    def __init__(self, gateway) -> None:
        self.gateway = gateway
        self._file = None
        self._lock = threading.Lock()
        gateway.on_sighup.append(self._reopen)  # logrotate moves the file, then sends SIGHUP

    def load(self, loader) -> None:
        loader.add_option("scrubgate_audit_log", str, "",
                          "Append one JSON line per decision to this file ('-' for stdout, empty: off). "
                          "Reopened on SIGHUP so logrotate can move it.")

    def configure(self, updated) -> None:
        if "scrubgate_audit_log" in updated:
            self._reopen()

    def _reopen(self) -> None:
        path = ctx.options.scrubgate_audit_log
        with self._lock:
            if self._file not in (None, sys.stdout):
                self._file.close()
            self._file = None
            if path == "-":
                self._file = sys.stdout
            elif path:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                self._file = os.fdopen(fd, "a", encoding="utf-8", buffering=1)

    def request(self, flow: http.HTTPFlow) -> None:
        d = flow.metadata.get("scrubgate")
        if not isinstance(d, Decision) or d.recorded_audit or self._file is None:
            return
        d.recorded_audit = True
        line = json.dumps(audit_record(flow, d, self.gateway.policy), separators=(",", ":"))
        try:
            with self._lock:
                self._file.write(line + "\n")
        except OSError as e:
            ERRORS.labels("audit").inc()
            log.error(f"cannot write audit log: {e.strerror}")

    def done(self) -> None:
        with self._lock:
            if self._file not in (None, sys.stdout):
                self._file.close()
            self._file = None
