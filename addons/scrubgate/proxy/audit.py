"""The audit log: one JSON line per decision, with kinds, counts and hashes only.

`--audit-log PATH` appends to PATH; `--audit-log -` writes to stdout. Rotation:
either by hand/logrotate (move the file, send SIGHUP: it is reopened) or by
size (`scrubgate_audit_max_bytes`, keeping `scrubgate_audit_backups` old files
as PATH.1 ... PATH.N). The record format is described in deploy/audit.md.

Never written: identifier values, file names, query strings, image bytes.
A record is built from the Decision (kinds, counts, hashes) and a handful of
request fields (client address, proxy user, host, method, path).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
from datetime import datetime, timezone

from mitmproxy import ctx, exceptions, http

from .decision import Decision, decision_of
from .gateway import block, request_host
from .metrics import ERRORS

log = logging.getLogger("scrubgate.audit")

INSTANCE = socket.gethostname()


def audit_record(flow: http.HTTPFlow, d: Decision, policy) -> dict:
    client = flow.client_conn.peername[0] if flow.client_conn.peername else None
    user = flow.metadata.get("proxyauth")  # (user, password) from mitmproxy's proxyauth addon
    return {
        "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "instance": INSTANCE,
        "incident": d.incident,
        "client": client,
        "user": user[0] if isinstance(user, tuple) and user else None,
        "service": d.service,
        "host": request_host(flow),
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


def connection_record(client: str | None, service: str, host: str, action: str, reason: str,
                      incident: str, policy) -> dict:
    """A decision taken on a connection before any request was read: a TLS ClientHello
    refused or tunnelled, a CONNECT refused, a client that failed the handshake."""
    return {
        "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "instance": INSTANCE,
        "incident": incident,
        "event": "connection",
        "client": client,
        "service": service,
        "host": host,
        "action": action,
        "reason": reason,
        "policy": {"name": policy.name, "version": policy.version, "sha256": policy.sha256}
        if policy else None,
    }


def _count(kinds) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in kinds:
        out[k] = out.get(k, 0) + 1
    return out


class Audit:
    def __init__(self, store) -> None:
        self.store = store  # the PolicyStore: each record names the policy in force
        self._fd: int | None = None  # None: off, or stdout (see _stdout)
        self._stdout = False
        self._path = ""
        self._size = 0  # bytes in the open file, for size rotation
        self._rotate_failed = False  # report a failing rotation once, not on every record
        self._lock = threading.Lock()
        store.on_sighup(self._sighup)  # logrotate moves the file, then sends SIGHUP

    def load(self, loader) -> None:
        loader.add_option("scrubgate_audit_log", str, "",
                          "Append one JSON line per decision to this file ('-' for stdout, empty: off). "
                          "Reopened on SIGHUP so logrotate can move it.")
        loader.add_option("scrubgate_audit_max_bytes", int, 0,
                          "Rotate the audit log when it would grow past this many bytes: PATH becomes "
                          "PATH.1, PATH.1 becomes PATH.2 and so on (0: never; use logrotate and SIGHUP "
                          "instead). Not for stdout.")
        loader.add_option("scrubgate_audit_backups", int, 5,
                          "Rotated audit files to keep with scrubgate_audit_max_bytes (PATH.1 ... PATH.N, "
                          "the oldest is overwritten). At least 1: rotation never just discards records.")

    def configure(self, updated) -> None:
        if "scrubgate_audit_max_bytes" in updated and ctx.options.scrubgate_audit_max_bytes < 0:
            raise exceptions.OptionsError("scrubgate_audit_max_bytes must be 0 (off) or a size in bytes")
        if "scrubgate_audit_backups" in updated and ctx.options.scrubgate_audit_backups < 1:
            raise exceptions.OptionsError("scrubgate_audit_backups must be at least 1")
        if "scrubgate_audit_log" in updated:
            try:
                self._reopen()
            except OSError as e:
                raise exceptions.OptionsError(
                    f"scrubgate_audit_log: cannot open {ctx.options.scrubgate_audit_log}: {e.strerror}")

    # -- the file ----------------------------------------------------------------------------
    def _close(self) -> None:
        if self._fd is not None and not self._stdout:
            os.close(self._fd)
        self._fd, self._stdout = None, False

    def _open(self) -> None:
        path = self._path
        if path == "-":
            self._fd, self._stdout, self._size = sys.stdout.fileno(), True, 0
        elif path:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o640)
            self._fd, self._stdout, self._size = fd, False, os.fstat(fd).st_size

    def _reopen(self) -> None:
        with self._lock:
            self._close()
            self._path = ctx.options.scrubgate_audit_log
            self._open()

    def _sighup(self) -> None:
        try:
            self._reopen()
            log.info("audit log reopened")
        except OSError as e:
            ERRORS.labels("audit").inc()
            log.error(f"cannot reopen the audit log: {e.strerror}; retrying on the next record")

    def _rotate(self) -> None:
        """PATH.(n-1) -> PATH.n ... PATH -> PATH.1, then a fresh PATH. Caller holds the lock."""
        self._close()
        path, keep = self._path, max(1, ctx.options.scrubgate_audit_backups)
        for i in range(keep - 1, 0, -1):
            if os.path.exists(f"{path}.{i}"):
                os.replace(f"{path}.{i}", f"{path}.{i + 1}")
        if os.path.exists(path):
            os.replace(path, f"{path}.1")
        self._open()

    def _write(self, data: bytes) -> None:
        """Append one line. Caller holds the lock. O_APPEND and a single write per line keep
        lines whole even if another process (a second replica) appends to the same file."""
        limit = 0 if self._stdout else ctx.options.scrubgate_audit_max_bytes
        if limit and self._size and self._size + len(data) > limit:
            try:
                self._rotate()
                self._rotate_failed = False
            except OSError as e:
                # Keep recording into the oversized file rather than lose records.
                ERRORS.labels("audit").inc()
                if not self._rotate_failed:
                    log.error(f"cannot rotate the audit log: {e.strerror or type(e).__name__}; "
                              "still appending to it")
                self._rotate_failed = True
                if self._fd is None:
                    self._open()
        if self._stdout:
            sys.stdout.flush()  # anything mitmproxy buffered goes first, then our whole line
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
            self._size += n

    # -- hooks -------------------------------------------------------------------------------
    def request(self, flow: http.HTTPFlow) -> None:
        d = decision_of(flow)
        if d is None or d.recorded_audit:
            return
        d.recorded_audit = True
        if not self.append(audit_record(flow, d, self.store.policy), d.incident):
            self._unrecorded(flow, d)  # outside the lock: it renders a block page

    def append(self, record: dict, incident: str) -> bool:
        """Write one record as one line. False if the log is on and the write failed."""
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=True) + "\n"
        with self._lock:
            if not self._path:
                return True
            try:
                if self._fd is None:  # a failed reopen or rotation: try again for this record
                    self._open()
                self._write(line.encode("ascii"))
                return True
            except OSError as e:
                # The error only: a strerror never carries a record's content.
                ERRORS.labels("audit").inc()
                log.error(f"cannot write the audit log (incident {incident} not recorded): "
                          f"{e.strerror or type(e).__name__}")
        return False

    def _unrecorded(self, flow: http.HTTPFlow, d) -> None:
        """An upload whose record could not be written: with `audit: required` it does not
        leave (fail closed); chat without files still does."""
        policy = self.store.policy
        if policy is None or policy.audit != "required" or d.action == "block":
            return
        if d.upload or d.payloads:
            block(flow, d, policy, "audit_unavailable", "the audit log cannot be written")

    def done(self) -> None:
        with self._lock:
            self._close()
