"""Burned-in text: find every line once, read it, decide with named rules.

    picture ─▶ detect.find_lines ─▶ read.read_lines ─▶ rules.decide ─▶ boxes to paint
               PP-OCR DB detector    PP-OCR CRNN,       named rules over
               (one pass)            Tesseract for      a page.Page
                                     unsure lines

Each stage is testable on its own: the rules take synthetic lines, no OCR.
`scan` is what the pixel scanner calls; it returns padded boxes to fill and
value-free findings.
"""

from __future__ import annotations

import time

import numpy as np
from PIL import Image

from ...boxes import Box, Polygon, clip_to_quad, grow, grow_quad
from ...verdict import Finding
from . import detect, read, rules
from .page import Page

__all__ = ["scan", "warm_up"]

_PAD = 0.15  # of a line's height: the detector's box is already grown around the ink
_HEADER_BAND = 0.35  # coloured header bands sit in the top third of a screen
# A line this many times as long as tall has a true slant (a shorter blob's rectangle
# can lie at any angle): what is painted on it is cut to its rotated rectangle. Its
# upright box, on a photo tilted by 7 degrees, is four times the line's height and
# blacks out the lines above and below.
_QUAD_MIN_ASPECT = 2.5


def scan(image: Image.Image, *, text: str, languages: str, hints: tuple[tuple[str, str], ...] = (),
         photographic: bool = False, camera: bool = False,
         colour_source: Image.Image | None = None,
         codes: tuple[Box, ...] = ()) -> tuple[list[Box], list[Polygon], list[Finding]]:
    """(boxes to fill, polygons to fill on tilted lines, findings) for the text in `image`
    that the policy's `text`
    (identifiers|all|none) wants gone. `photographic` (a camera's JPEG or HEIC)
    picks which reader goes first, `camera` lets the detector try small inputs first
    on a big photo; `colour_source` is the unblanked picture, for
    the colour of each line's background; `codes` are the barcodes' boxes."""
    from .. import ocr

    if text == "none":
        return [], [], []
    started = time.perf_counter()
    try:
        lines = read.read_lines(image, detect.find_lines(image, camera=camera), languages, photographic)
        page = Page(image.size, lines, on_colour=_on_colour(colour_source or image, lines), codes=tuple(codes))
        redactions = rules.decide(page, text, hints)
    finally:
        ocr.ocr_seconds += time.perf_counter() - started
    fills, polygons, findings = [], [], []
    whole = {r.line for r in redactions if not r.parts}  # one rule wanting the whole line wins
    for r in redactions:
        line = lines[r.line]
        p = max(2, round(_PAD * line.height))
        boxes = [grow(b, image.size, p) for b in ([line.box] if r.line in whole else r.parts)]
        if _slanted(line.detection):
            rim = grow_quad(line.detection.quad, p)
            polygons += [clip_to_quad(b, rim) for b in boxes]
        else:
            fills += boxes
        findings.append(Finding(r.kind, "pixels", r.rule, r.box, r.confidence))
    return fills, polygons, findings


def _slanted(d: detect.Detection) -> bool:
    return d.width >= _QUAD_MIN_ASPECT * d.height and abs(d.angle) >= 0.5


def _on_colour(image: Image.Image, lines: list[read.Line]) -> list[bool]:
    """Per line: does it sit on a saturated colour band near the top of the picture?
    (An EHR's patient header: white or dark text on orange, blue, green.)"""
    if not lines:
        return []
    hsv = np.asarray(image.convert("RGB").convert("HSV"))
    height, width = hsv.shape[:2]
    out = []
    for line in lines:
        x, y, w, h = line.box
        if y > _HEADER_BAND * height:
            out.append(False)
            continue
        ring = max(2, h // 4)
        top = hsv[max(0, y - ring):max(0, y), x:x + w].reshape(-1, 3)
        bottom = hsv[min(height, y + h):min(height, y + h + ring), x:x + w].reshape(-1, 3)
        sample = np.concatenate([top, bottom]) if len(top) or len(bottom) else np.zeros((0, 3))
        if len(sample) == 0:
            out.append(False)
            continue
        s, v = np.median(sample[:, 1]), np.median(sample[:, 2])
        out.append(bool(s >= 90 and v >= 60))
    return out


def warm_up() -> None:
    """Load both networks and run them once now (worker start): onnxruntime plans its
    memory on the first run, which should not be the first upload's wait."""
    probe = Image.new("RGB", (96, 48), "white")
    detect.find_lines(probe)
    read._ppocr([np.zeros((32, 96, 3), np.uint8)], [detect.Detection(((0, 0), (96, 0), (96, 32), (0, 32)),
                                                                   (0, 0, 96, 32), 1.0)], read.TUNING)
