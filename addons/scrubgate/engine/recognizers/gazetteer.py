"""Given names and surnames, loaded once from the committed data files.

The files are written by scripts/build_gazetteer.py (from faker's provider
tables); the runtime never imports faker. Lines starting with '#' are headers.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


def _load(name: str) -> frozenset[str]:
    with gzip.open(DATA / name, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip() for line in fh if line.strip() and not line.startswith("#"))


@lru_cache(maxsize=1)
def given_names() -> frozenset[str]:
    return _load("given_names.txt.gz")


@lru_cache(maxsize=1)
def surnames() -> frozenset[str]:
    return _load("surnames.txt.gz")
