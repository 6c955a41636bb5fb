"""The audit log of a real `scrubgate run`: who, what, when, from where, which outcome,
and never a value.

- proxy authentication: the authenticated user is in the record; no credentials, 407;
- every documented field, with its type; hashes that match the bytes sent and received;
- the leak test: identifiers planted in pixels, metadata, DICOM headers and pixels, ZIP
  member paths, file names and query strings never reach the audit log, the gateway's
  own log or /metrics;
- size rotation (PATH.1 ... PATH.N), SIGHUP reopen, and a failing disk that is counted.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import signal
import socket
import ssl
import time
import uuid
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from conftest import gateway_with_policy_edits, start_gateway, stop_gateway
from test_gateway_e2e import multipart_files

USER, PASSWORD = "alice", "s3cret"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def proxy_client(gw, user: str | None = USER, password: str = PASSWORD) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(gw.trust_pem))
    proxy = f"http://{user}:{password}@127.0.0.1:{gw.port}" if user else gw.proxy
    return httpx.Client(proxy=proxy, verify=ctx, timeout=60)


def wait_for(check, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def metric(text: str, name: str, **labels) -> float:
    sel = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    m = re.search(rf"^{name}\{{{sel}\}} ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


@pytest.fixture(scope="module")
def authed(tmp_path_factory, upstream):
    """A gateway that requires proxy credentials (mitmproxy's proxyauth)."""
    gw = start_gateway(tmp_path_factory.mktemp("audit-auth"), upstream,
                       extra=["--set", f"proxyauth={USER}:{PASSWORD}"])
    yield gw
    stop_gateway(gw)


def png_screen() -> bytes:
    from pictures import viewer_screen

    buf = io.BytesIO()
    viewer_screen().save(buf, "PNG")
    return buf.getvalue()


# -- who --------------------------------------------------------------------------------------
def test_authenticated_user_is_recorded_and_anonymous_clients_get_407(authed, upstream):
    before = len(records(authed.audit_log)) if authed.audit_log.exists() else 0
    with proxy_client(authed) as c:
        r = c.post("https://slack.com/api/chat.postMessage?who=1", json={"text": "ward round at 10"})
    assert r.status_code == 200, r.text
    rec = records(authed.audit_log)[-1]
    assert (rec["user"], rec["service"], rec["path"], rec["action"]) == \
        ("alice", "slack", "/api/chat.postMessage", "allow")

    # No credentials: the CONNECT is refused with 407 and the request never leaves.
    with socket.create_connection(("127.0.0.1", authed.port), timeout=10) as raw:
        raw.sendall(b"CONNECT slack.com:443 HTTP/1.1\r\nHost: slack.com:443\r\n\r\n")
        head = raw.recv(4096)
    assert head.startswith(b"HTTP/1.1 407") and b"Proxy-Authenticate: Basic" in head, head
    for user, password in ((None, ""), (USER, "wrong")):
        with proxy_client(authed, user, password) as c, pytest.raises(httpx.ProxyError, match="407"):
            c.post("https://slack.com/api/chat.postMessage?who=anonymous", json={"text": "x"})
    # Plain-HTTP proxying is refused the same way.
    r = httpx.get("http://slack.com/api/users.list", proxy=authed.proxy, timeout=10)
    assert r.status_code == 407
    assert [q for q in upstream.received("/api/chat.postMessage") if "anonymous" in q.path] == []
    assert len(records(authed.audit_log)) == before + 1  # refused before any decision: nothing to audit
    assert PASSWORD not in authed.audit_log.read_text() + authed.log()


# -- what, when, where, outcome ------------------------------------------------------------------
def test_every_field_with_its_type_and_no_query_string(authed, upstream):
    screen = png_screen()
    path = "/api/v9/channels/702/messages"
    t0 = datetime.now(timezone.utc)
    with proxy_client(authed) as c:
        r = c.post(f"https://discord.com{path}?token=SECRET123&name=KOWALSKI",
                   files={"files[0]": ("image.png", screen, "image/png")})
        assert r.status_code == 200, r.text
        blocked = c.post("https://web.telegram.org/apiw1?auth=SECRET123", content=b"\x8f" * 512,
                         headers={"Content-Type": "image/jpeg", "Accept": "application/json"})
        assert blocked.status_code == 403
    got = upstream.received(path)[-1]
    _, forwarded = multipart_files(got.body, got.headers["content-type"])["files[0]"]
    rec, block = records(authed.audit_log)[-2:]

    assert set(rec) >= {"ts", "instance", "incident", "client", "user", "service", "host", "method", "path",
                        "action", "reason", "failed_open", "payloads", "policy"}
    ts = datetime.fromisoformat(rec["ts"])
    assert ts.utcoffset() == timedelta(0) and t0 - timedelta(seconds=1) <= ts <= datetime.now(timezone.utc)
    assert isinstance(rec["instance"], str) and rec["instance"] == socket.gethostname()
    assert re.fullmatch(r"[0-9a-f]{12}", rec["incident"])
    assert rec["client"] == "127.0.0.1" and rec["user"] == "alice"
    assert (rec["service"], rec["host"], rec["method"], rec["path"]) == ("discord", "discord.com", "POST", path)
    assert rec["action"] == "sanitize" and rec["reason"] is None and rec["failed_open"] is False

    [p] = rec["payloads"]
    assert (p["carrier"], p["format"], p["content"], p["action"]) == ("multipart", "png", "image", "sanitize")
    assert isinstance(p["identifiers"], dict) and p["identifiers"]
    assert all(isinstance(k, str) and isinstance(v, int) and v > 0 for k, v in p["identifiers"].items())
    assert p["identifiers"].get("national_id", 0) >= 1  # the NHS number burned into the banner
    assert isinstance(p["metadata_removed"], dict)
    # The hashes are of the very bytes the client sent and the upstream received.
    assert p["sha256_in"] == hashlib.sha256(screen).hexdigest() and p["bytes_in"] == len(screen)
    assert p["sha256_out"] == hashlib.sha256(forwarded).hexdigest() and p["bytes_out"] == len(forwarded)
    assert p["sha256_in"] != p["sha256_out"]
    pol = rec["policy"]
    assert pol["name"] == "default" and isinstance(pol["version"], str) and HEX64.match(pol["sha256"])
    assert f'sha256="{pol["sha256"]}"' in authed.metrics()  # the very digest scrubgate_policy_info carries

    assert (block["service"], block["action"], block["reason"], block["path"], block["user"]) == \
        ("telegram", "block", "opaque_service", "/apiw1", "alice")
    assert block["incident"] == blocked.json()["incident"] != rec["incident"]  # the block page's id
    text = authed.audit_log.read_text()
    assert "SECRET123" not in text and "KOWALSKI" not in text.upper() and "token" not in text


# -- never a value -------------------------------------------------------------------------------
def test_no_planted_value_reaches_audit_log_gateway_log_or_metrics(authed, upstream, tmp_path, exiftool):
    import dicoms
    import pictures
    import metadata_samples as samples

    study = "1.2.826.0.1.3680043.8.498.1"
    zbuf = io.BytesIO()
    members = [f"KOWALSKI_ANNA_19620304/SERIES1/IM{i:04d}.dcm" for i in range(2)]
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
        z.comment = b"export for KOWALSKI RX0042113"
        for i, name in enumerate(members):
            z.writestr(name, dicoms.secondary_capture(study, banner=i == 0, size=(320, 240)))
    uploads = [  # (url, file name, bytes, form fields, expected status)
        ("https://discord.com/api/v9/channels/801/messages", "KOWALSKI_ANNA_viewer_RX0042113.png",
         png_screen(), {}, 200),
        ("https://slack.com/api/files.upload", "Alvarez handover bed 12.jpg",
         samples.jpeg_with_metadata(tmp_path), {"initial_comment": "for Dr OKONJO re KOWALSKI"}, 200),
        ("https://slack.com/api/files.upload", "PNGPLANTED-wound-photo.png",
         samples.png_with_metadata(tmp_path), {}, 200),
        ("https://discord.com/api/v9/channels/802/messages", "Riverside_RX0042113_CT.dcm",
         dicoms.secondary_capture(), {}, 200),
        ("https://discord.com/api/v9/channels/803/messages", "study OKONJO 19620304.zip",
         zbuf.getvalue(), {}, 200),
        ("https://slack.com/api/files.upload", "patients-Riverside-ward.csv",
         b"name,nhs\nKOWALSKI ANNA,9434765919\n", {}, 403),
    ]
    before = len(records(authed.audit_log))
    with proxy_client(authed) as c:
        for url, name, data, fields, status in uploads:
            r = c.post(f"{url}?patient=KOWALSKI&mrn=RX0042113", data=fields,
                       files={"file": (name, data, "application/octet-stream")})
            assert r.status_code == status, (name, r.status_code, r.text[:300])
    new = records(authed.audit_log)[before:]
    assert [r["action"] for r in new] == ["sanitize"] * 5 + ["block"], new
    assert {p["format"] for r in new for p in r["payloads"]} >= {"png", "jpeg", "dicom", "zip"}
    kinds = {k for r in new for p in r["payloads"] for k in p["identifiers"]}
    assert "person_name" in kinds, kinds  # the kinds are recorded, just not the values

    values = set(pictures.IDENTIFIERS) | set(samples.PLANTED.values()) | set(dicoms.PATIENT.values())
    values |= {v for v in dicoms.PLANTED if len(v) >= 6} | set(members) | {name for _, name, *_ in uploads}
    values |= {"KOWALSKI", "RX0042113", "9434765919", "943 476 5919", "19620304", "04-Mar-1962", "04/03/1962",
               "St Mary's", "Alvarez", "OKONJO", "Riverside", "Acacia", "handover", "PLANTED", "patient=", "mrn="}
    # The audit log (every file), the gateway's whole output and the metrics exposition.
    places = {"audit log": authed.audit_log.read_text(), "gateway log": authed.log(),
              "metrics": authed.metrics()}
    assert all(places.values())
    leaks = {where: sorted(v for v in values if v.upper() in text.upper()) for where, text in places.items()}
    assert leaks == {where: [] for where in places}, leaks


# -- rotation, SIGHUP, failures ------------------------------------------------------------------
@pytest.fixture(scope="module")
def rotating(tmp_path_factory, upstream):
    gw = start_gateway(tmp_path_factory.mktemp("audit-rotate"), upstream,
                       extra=["--set", "scrubgate_audit_max_bytes=2000", "--set", "scrubgate_audit_backups=2"])
    yield gw
    stop_gateway(gw)


def _chat(gw, n: int, tag: str) -> None:
    with gw.client() as c:
        for i in range(n):
            r = c.post(f"https://slack.com/api/chat.postMessage?{tag}={i}", json={"text": f"ping {i}"})
            assert r.status_code == 200


def test_size_rotation_keeps_n_backups(rotating):
    path = rotating.audit_log
    one = len(path.read_bytes()) if path.exists() else 0
    _chat(rotating, 1, "first")
    size = len(path.read_bytes()) - one  # one record's size
    assert 200 < size < 1000, size
    _chat(rotating, 3 * 2000 // size + 3, "fill")  # enough to fill PATH, PATH.1, PATH.2 and more
    files = [path, Path(f"{path}.1"), Path(f"{path}.2")]
    assert all(f.exists() for f in files), sorted(p.name for p in path.parent.iterdir())
    assert not Path(f"{path}.3").exists()
    stamps = []
    for f in reversed(files):  # oldest first
        data = f.read_bytes()
        assert len(data) <= 2000 and data.endswith(b"\n")
        recs = [json.loads(line) for line in data.decode().splitlines()]  # every line is whole JSON
        assert recs
        stamps += [r["ts"] for r in recs]
    assert stamps == sorted(stamps)  # PATH.2 is older than PATH.1, which is older than PATH
    assert len(set(r["incident"] for f in files for r in records(f))) == len(stamps)


def test_sighup_reopens_and_a_failing_disk_is_counted(rotating, tmp_path):
    path = rotating.audit_log
    moved = tmp_path / "moved.jsonl"
    path.rename(moved)
    kept = moved.read_bytes()
    rotating.proc.send_signal(signal.SIGHUP)
    wait_for(path.exists)  # reopened: a new, empty file
    _chat(rotating, 1, "after_hup")
    assert len(records(path)) == 1 and moved.read_bytes() == kept

    # A full disk: writes fail; the request still goes through, the failure is counted and logged.
    reopened = rotating.log().count("audit log reopened")
    path.unlink()
    path.symlink_to("/dev/full")
    rotating.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: rotating.log().count("audit log reopened") > reopened)
    errors = metric(rotating.metrics(), "scrubgate_errors_total", stage="audit")
    _chat(rotating, 2, "full_disk")
    assert metric(rotating.metrics(), "scrubgate_errors_total", stage="audit") == errors + 2
    log = rotating.log()
    assert "cannot write the audit log" in log and "No space left on device" in log
    assert "full_disk" not in log  # the error, never the record

    # Disk back: move the link away, SIGHUP, records flow into a fresh file again.
    path.unlink()
    rotating.proc.send_signal(signal.SIGHUP)
    wait_for(path.exists)
    _chat(rotating, 1, "recovered")
    assert [r["action"] for r in records(path)] == ["allow"]


def test_stdout_audit_for_a_log_shipper(tmp_path, upstream):
    """`--audit-log -`: whole JSON lines on stdout, among the gateway's own log lines."""
    gw = start_gateway(tmp_path, upstream, extra=["--set", "scrubgate_audit_log=-"])
    try:
        _chat(gw, 2, "stdout")
        wait_for(lambda: len([ln for ln in gw.log().splitlines() if ln.startswith("{")]) == 2)
        recs = [json.loads(ln) for ln in gw.log().splitlines() if ln.startswith("{")]
        assert [(r["service"], r["action"], r["path"]) for r in recs] == \
            [("slack", "allow", "/api/chat.postMessage")] * 2
    finally:
        stop_gateway(gw)


@pytest.mark.parametrize("setting, message", [
    ("scrubgate_audit_backups=0", "scrubgate_audit_backups must be at least 1"),
    ("scrubgate_audit_max_bytes=-1", "scrubgate_audit_max_bytes must be 0"),
    ("scrubgate_audit_log=/nonexistent/dir/audit.jsonl", "cannot open /nonexistent/dir/audit.jsonl"),
])
def test_bad_audit_settings_stop_the_start(tmp_path, setting, message):
    import subprocess

    from conftest import ROOT, SCRUBGATE

    r = subprocess.run([*SCRUBGATE, "run", "--confdir", str(tmp_path / "conf"), "--metrics-port", "0",
                        "--set", setting], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 2 and message in r.stderr, (r.returncode, r.stderr[-1000:])


def test_audit_required_blocks_uploads_it_cannot_record(tmp_path, upstream):
    """`audit: required`: with the audit log on a full disk, an upload is refused
    (audit_unavailable) and never forwarded; chat without files still flows; the metrics
    count the block. With the default best_effort the same upload goes through."""
    from uploads import fresh, received

    gw = gateway_with_policy_edits(tmp_path, upstream, {"audit: best_effort": "audit: required"})
    try:
        path = gw.audit_log
        path.unlink(missing_ok=True)
        path.symlink_to("/dev/full")
        gw.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "audit log reopened" in gw.log())
        tag = "audit-required-" + uuid.uuid4().hex[:6]
        with gw.client() as c:
            r = c.post(f"https://slack.com/api/files.upload?fid={tag}",
                       files=[("file", ("scan.jpg", fresh(tag), "image/jpeg"))])
            assert r.status_code == 403 and r.headers["x-scrubgate-reason"] == "audit_unavailable", r.text[:200]
            assert c.post("https://slack.com/api/chat.postMessage", json={"text": "ok"}).status_code == 200
        assert received(upstream, tag) == []
        blocks = [ln for ln in gw.metrics().splitlines() if ln.startswith("scrubgate_blocks_total{")]
        assert [ln for ln in blocks if 'reason="audit_unavailable"' in ln and ln.endswith(" 1.0")], blocks
    finally:
        stop_gateway(gw)
