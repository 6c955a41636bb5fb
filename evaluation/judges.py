"""Outside judges for the pixel tests: an OCR engine that is not the sanitiser's.

RapidOCR (PaddleOCR models run on onnxruntime, shipped inside the wheel) reads
the output; if it can still read a planted identifier, the sanitiser failed,
whatever Tesseract thinks.
"""

from __future__ import annotations

import difflib
import io
import logging
import re
from functools import lru_cache

import numpy as np
from PIL import Image


@lru_cache(maxsize=1)
def _rapidocr():
    from rapidocr import RapidOCR

    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    return RapidOCR()


def _read(image: Image.Image) -> list[str]:
    result = _rapidocr()(np.asarray(image.convert("RGB"))[:, :, ::-1])
    return list(result.txts or ())


def read_text(image: bytes | Image.Image) -> list[str]:
    """Every text line RapidOCR reads in the picture, whole or in any quarter.

    RapidOCR's detector sometimes skips a small cluster of text on a large
    empty page (seen after a banner was painted out); reading the overlapping
    quarters too makes the judge stricter, never more lenient."""
    if isinstance(image, bytes):
        image = Image.open(io.BytesIO(image))
    image = image.convert("RGB")
    w, h = image.size
    lines = _read(image)
    mx, my = int(w * 0.55), int(h * 0.55)
    for box in ((0, 0, mx, my), (w - mx, 0, w, my), (0, h - my, mx, h), (w - mx, h - my, w, h)):
        lines.extend(_read(image.crop(box)))
    return lines


def _norm(s: str) -> str:
    return re.sub(r"[^0-9a-z]", "", s.lower())


def legible(needle: str, lines: list[str], threshold: float = 0.8) -> bool:
    """True when some line contains `needle` (ignoring case, spaces and punctuation),
    allowing a misread character or two."""
    n = _norm(needle)
    if not n:
        return False
    for line in lines:
        h = _norm(line)
        if n in h:
            return True
        if len(h) >= len(n) * 0.6:
            m = difflib.SequenceMatcher(None, n, h).find_longest_match(0, len(n), 0, len(h))
            window = h[max(0, m.b - m.a): max(0, m.b - m.a) + len(n)]
            if difflib.SequenceMatcher(None, n, window).ratio() >= threshold:
                return True
    return False
