"""The per-worker verdict cache: the same bytes under the same options are cleaned once."""

from __future__ import annotations

from pathlib import Path

from pictures import encode, viewer_screen
from scrubgate.engine.verdict import Verdict
from scrubgate.job import VERDICTS, BodyJob, VerdictCache, inspect_body
from scrubgate.policy import Policy, Service

POLICY = Policy.load(Path(__file__).resolve().parent.parent / "policies" / "default.yaml")
SERVICE = Service(id="offline", name="offline", media="inspectable", hosts=())


def _job(data: bytes, plan=None) -> BodyJob:
    return BodyJob(data, "", "", upload=True, opaque=False, plan=plan or POLICY.plan_for(SERVICE, b"k" * 32))


def test_a_picture_sent_twice_is_cleaned_once_with_the_same_result():
    screen = encode(viewer_screen(), "PNG")
    hits = VERDICTS.hits
    first = inspect_body(_job(screen))
    second = inspect_body(_job(screen))
    assert VERDICTS.hits == hits + 1
    assert first.new_body == second.new_body and first.new_body is not None
    a, b = first.payloads[0], second.payloads[0]
    assert [f.kind for f in a.findings] == [f.kind for f in b.findings] and a.findings
    assert (a.sha256_out, a.changed) == (b.sha256_out, b.changed)
    assert b.ocr_seconds == 0.0  # nothing was read again


def test_other_options_are_another_entry():
    from dataclasses import replace

    screen = encode(viewer_screen(), "PNG")
    inspect_body(_job(screen))
    misses = VERDICTS.misses
    plan = replace(POLICY.plan_for(SERVICE, b"k" * 32), text="all")
    inspect_body(_job(screen, plan))
    assert VERDICTS.misses == misses + 1


def test_bounded_by_entries_and_bytes_and_machine_failures_are_not_kept():
    cache = VerdictCache(max_entries=2, max_bytes=100)
    for i in range(3):
        cache.put((str(i),), Verdict("png", "image", output=b"x" * 10))
    assert cache.get(("0",)) is None and cache.get(("2",)) is not None
    cache.put(("big",), Verdict("png", "image", output=b"x" * 60))  # over a quarter of the budget
    assert cache.get(("big",)) is None
    cache.put(("ocr",), Verdict("png", "image", refused="ocr_unavailable"))
    assert cache.get(("ocr",)) is None
    cache.put(("bad",), Verdict("png", "image", refused="corrupt"))  # a property of the file: kept
    assert cache.get(("bad",)) is not None
