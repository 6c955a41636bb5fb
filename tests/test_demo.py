"""`scrubgate demo`: the newcomer's first minute works offline, end to end, and leaks nothing."""

from __future__ import annotations

import re
import subprocess
import sys
import time

from PIL import Image

SAMPLES = {  # the line of each sample in the demo's output -> expected action
    "phone photo of a viewer screen": "cleaned",
    "EHR screenshot": "cleaned",
    "DICOM secondary capture": "cleaned",
    "wristband photo": "cleaned",
    "Telegram Web media (MTProto, encrypted)": "blocked",
}
PICTURES = ["01-phone-photo.png", "02-ehr-screenshot.png", "03-dicom-secondary-capture.png",
            "04-wristband-photo.png"]
VALUES = ["943 476 5919", "9434765919", "KOWALSKI", "Kowalski", "Anna", "ANNA", "RX0042113", "04/03/1962",
          "04-Mar-1962", "19620304", "Riverside", "OKONJO"]


def test_demo_runs_offline_and_shows_kinds_not_values(tmp_path):
    out = tmp_path / "out"
    t = time.monotonic()
    # cwd=tmp_path: the demo must not need the repository as its working directory
    r = subprocess.run([sys.executable, "-m", "scrubgate", "demo", "--out", str(out)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=180)
    seconds = time.monotonic() - t
    print(r.stdout, r.stderr, f"demo took {seconds:.1f} s", sep="\n")
    assert r.returncode == 0, r.stderr[-3000:]

    for title, action in SAMPLES.items():
        lines = [ln for ln in r.stdout.splitlines() if ln.strip().startswith(title)]
        assert len(lines) == 1, (title, r.stdout)
        assert re.search(rf"->\s+\S+\s+{action}\b", lines[0]), lines[0]
    telegram = next(ln for ln in r.stdout.splitlines() if "Telegram" in ln and "->" in ln)
    assert "opaque_service" in telegram

    for name in PICTURES:
        with Image.open(out / name) as im:
            im.verify()
        with Image.open(out / name) as im:
            assert im.width > 2 * im.height * 0.9  # two pictures side by side
    page = (out / "05-telegram-web-block-page.html").read_text()
    assert "<html" in page.lower() and "NHSmail" in page

    assert [v for v in VALUES if v in r.stdout or v in r.stderr] == []
    assert re.search(r'scrubgate_identifiers_total\{kind="national_id",source="pixels"\}\s+\+\d', r.stdout)
    assert re.search(r'scrubgate_blocks_total\{reason="opaque_service",service="telegram"\}\s+\+1', r.stdout)
    assert "scrubgate_metadata_removed_total" in r.stdout


def test_demo_is_in_the_help():
    r = subprocess.run([sys.executable, "-m", "scrubgate", "demo", "--help"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "--out" in r.stdout and "--keep-running" in r.stdout


def test_keep_running_records_later_uploads_in_the_audit_log(tmp_path):
    """The audit log in --out grows with uploads sent while the demo stays up, and survives it."""
    import json
    import os
    import signal

    import httpx

    out = tmp_path / "out"
    log = tmp_path / "demo.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "scrubgate", "demo", "--out", str(out), "--keep-running"],
                                cwd=tmp_path, stdout=f, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        deadline = time.monotonic() + 180
        while "stays up" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        text = log.read_text()
        assert "stays up" in text, text[-3000:]
        proxy = re.search(r"proxy:\s+(http://127\.0\.0\.1:\d+)", text).group(1)
        ca = re.search(r"CA:\s+(\S+)", text).group(1)
        audit = out / "audit.jsonl"
        assert re.search(rf"audit:\s+{re.escape(str(audit))}", text), text[-1500:]
        before = len(audit.read_text().splitlines())
        with httpx.Client(proxy=proxy, verify=ca, timeout=60) as c:
            r = c.post("https://web.telegram.org/apiw1", content=b"\x00" * 64)
        assert r.status_code == 403
        deadline = time.monotonic() + 10
        while len(audit.read_text().splitlines()) == before and time.monotonic() < deadline:
            time.sleep(0.2)
        records = [json.loads(line) for line in audit.read_text().splitlines()]
        assert len(records) == before + 1 and records[-1]["action"] == "block"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert len(audit.read_text().splitlines()) == before + 1  # still there after the demo stopped
