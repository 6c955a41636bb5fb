"""The speed benchmark harness runs end to end, so its one documented command cannot rot.

Not a timed test: nothing here asserts a speed. It asserts that bare mitmdump
and scrubgate both answer every request (the harness once measured a stalled
mitmdump without noticing), that the uploads really reach the workers (every
one distinct, so the verdict cache cannot answer), and that the report names
the machine and the targets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_proxy_bench_quick_parts(tmp_path):
    cmd = [sys.executable, "-m", "bench.proxy", "--only", "b_slack_chat,d2_discord_screen_ocr",
           "--rounds", "1", "--seconds", "1.5", "--out", str(tmp_path)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [report] = tmp_path.glob("proxy-*-only.json")
    res = json.loads(report.read_text())
    assert res["machine"]["cores"] >= 1 and "mitmproxy" in res["machine"]["packages"]
    by_key = {s["key"]: s for s in res["scenarios"]}
    assert set(by_key) == {"b_slack_chat", "d2_discord_screen_ocr"}
    for s in by_key.values():
        for side in ("mitmdump", "scrubgate"):
            r = s[side]
            assert r["errors"] == 0 and r["requests"] > 0, (s["key"], side, r)
            assert set(r["status"]) == {"200"}, (s["key"], side, r["status"])
            assert r["proxy_cpu_ms_per_request"] > 0
    # OCR'd uploads take the engine's time, not a cache lookup's: far slower than chat.
    assert by_key["d2_discord_screen_ocr"]["scrubgate"]["p50_ms"] > 5 * by_key["b_slack_chat"]["scrubgate"]["p50_ms"]
    assert any(t["target"].startswith("b_slack_chat") for t in res["targets"])
    md = report.with_suffix(".md").read_text()
    assert "## Machine" in md and "## Targets" in md


def test_unique_makes_every_upload_new_and_keeps_it_valid():
    from bench import proxy
    from pictures import encode, viewer_screen
    from scrubgate.engine import sanitize

    for fmt in ("PNG", "JPEG"):
        data = encode(viewer_screen(size=(320, 240)), fmt)
        a, b = proxy.unique(data), proxy.unique(data)
        assert a != b != data
        v = sanitize(a)
        assert v.refused is None and b"bench-" not in v.output  # the engine removes the marker
