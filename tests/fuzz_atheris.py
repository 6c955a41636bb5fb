#!/usr/bin/env python3
"""Coverage-guided fuzzing with atheris (libFuzzer): the long run behind `make fuzz`.

    .venv/bin/python tests/fuzz_atheris.py engine -runs=200000 [libFuzzer flags]
    .venv/bin/python tests/fuzz_atheris.py job -runs=200000

Starts from the seed corpus (tests/fuzz_seeds/*.seed) and grows it in a scratch folder.
The properties are those of tests/test_fuzz.py: nothing raises but a refusal, the
engine's catch-all (`engine_error`) never fires, and nothing passes uninspected. A
violation raises, and libFuzzer writes the input to crash-<sha1> in the current
folder: keep it in tests/fuzz_seeds/crashes/ once fixed (test_fuzz replays them).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["scrubgate"]):
    from scrubgate.engine import EngineOptions, sanitize
    from scrubgate.job import BodyJob, inspect_body
    from scrubgate.policy import Policy

SEEDS = Path(__file__).resolve().parent / "fuzz_seeds"
CONTENT_TYPES = ["multipart/form-data; boundary=fuzzboundary42", "application/json",
                 "application/x-www-form-urlencoded", "image/jpeg", "application/octet-stream"]
CODINGS = ["", "gzip", "deflate"]
METADATA_ONLY = EngineOptions(pixels=False)
_PLAN = None


class Violation(Exception):
    pass


def engine(data: bytes) -> None:
    v = sanitize(data, METADATA_ONLY)
    if v.refused == "engine_error":
        raise Violation(f"{v.format}: {v.detail}")
    if v.refused is None and v.output is None:
        raise Violation(f"{v.format}: passed without output")


def job(data: bytes) -> None:
    global _PLAN
    if _PLAN is None:
        policy = Policy.load(Path(__file__).resolve().parents[1] / "policies" / "default.yaml")
        # text "none" and faces "keep": no OCR, so that libFuzzer gets thousands of runs a
        # second through the carriers, decoders and the rebuild (the pixel path has its
        # own hypothesis target in tests/test_fuzz.py).
        _PLAN = replace(policy.plan_for(policy.catalogue.by_id["slack"], b"k" * 32), text="none", faces="keep")
    if len(data) < 2:
        return
    ctype, coding = CONTENT_TYPES[data[0] % len(CONTENT_TYPES)], CODINGS[data[1] % len(CODINGS)]
    out = inspect_body(BodyJob(data[2:], ctype, coding, True, False, _PLAN))
    if out.reason == "engine_error":
        raise Violation(out.detail)
    if out.action != "block" and out.new_body is None and any(p.changed for p in out.payloads):
        raise Violation("a cleaned file was not put back into the body")


TARGETS = {"engine": engine, "job": job}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(TARGETS)}}} [libFuzzer flags]")
    target = TARGETS[sys.argv[1]]
    corpus = Path(tempfile.mkdtemp(prefix=f"scrubgate-fuzz-{sys.argv[1]}-"))
    for seed in SEEDS.glob("*.seed"):
        data = seed.read_bytes()
        shutil.copy(seed, corpus / seed.name) if target is engine else \
            (corpus / seed.name).write_bytes(b"\x00\x00" + data)
    atheris.Setup([sys.argv[0], *sys.argv[2:], str(corpus)], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
