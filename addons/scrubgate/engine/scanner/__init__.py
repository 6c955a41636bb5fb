"""The pixel scanner: find identifiers drawn into a picture and paint them out.

Format-blind: it gets `raster.Decoded` frames and edits them in place. For
each distinct frame it looks for

- burned-in text (`text.scan`: every line found once by a neural detector,
  read, and judged by named rules; a line carrying an identifier is redacted
  whole, technical lines are kept, unreadable lines where identifiers live
  are painted);
- barcodes, QR codes and DataMatrix: always redacted;
- faces, in every raster format: blurred, refused, or kept, as the policy says.

Redaction is a solid fill over a padded box. A blur over text can be undone
(deconvolution, or simply reading it through the blur); a fill cannot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from ..boxes import Box, Polygon, grow, overlap
from ..formats.raster import Decoded
from ..limits import FacesMode, TextMode
from ..verdict import Finding, Refused
from . import barcodes, faces, ocr, text


@dataclass(frozen=True)
class PixelOptions:
    text: TextMode = "identifiers"  # barcodes and faces still apply with "none"
    faces: FacesMode = "blur"
    languages: str = ocr.DEFAULT_LANGUAGES
    # Values known to identify this patient (a DICOM header's name, IDs, dates),
    # as (kind, value): OCR'd lines that fuzzily contain one are redacted.
    # Held in memory for the scan only; never logged or reported.
    hints: tuple[tuple[str, str], ...] = ()


@dataclass
class FrameResult:
    fills: list[Box] = field(default_factory=list)  # solid redactions
    polygons: list[Polygon] = field(default_factory=list)  # solid redactions on tilted lines
    blurs: list[Box] = field(default_factory=list)  # face blurs
    findings: list[Finding] = field(default_factory=list)


def scan(decoded: Decoded, options: PixelOptions) -> tuple[bool, list[Finding]]:
    """Scan and redact every frame of `decoded` in place. Returns (changed, findings).

    Identical frames (a GIF that holds still, TIFF pages of one scan) are read once.
    """
    findings: list[Finding] = []
    changed = False
    seen: dict[str, FrameResult] = {}
    for index, frame in enumerate(decoded.frames):
        digest = hashlib.blake2b(frame.tobytes(), digest_size=16).hexdigest()
        result = seen.get(digest)
        if result is None:
            result = scan_frame(frame, options, decoded.photographic, decoded.camera)
            seen[digest] = result
            findings.extend(result.findings)
        if result.fills or result.polygons or result.blurs:
            redact(frame, result)
            changed = True
    return changed, findings


def scan_frame(frame: Image.Image, options: PixelOptions, photographic: bool = False,
               camera: bool = False) -> FrameResult:
    result = FrameResult()
    found_codes = barcodes.find(frame)
    codes = barcodes.tighten(frame, found_codes)  # a linear code's bars, not a third of the picture
    for (box, polygon), (_, family) in zip(codes, found_codes):
        if polygon is None:
            result.fills.append(pad(box, frame.size, 0.08))
        else:
            result.polygons.append(polygon)
        result.findings.append(Finding("barcode", "pixels", f"barcode.{family}", box, 1.0))
    if options.text != "none":
        # Bars and modules read as letters ("回回") and join the lines beside them,
        # so the text stages see the codes blanked: exactly what is painted, so that
        # no text beside a code is hidden from them and left unpainted.
        page = _blank(frame, result.fills, result.polygons) if codes else frame
        fills, polygons, found = text.scan(page, text=options.text, languages=options.languages, hints=options.hints,
                                           photographic=photographic, camera=camera, colour_source=frame,
                                           codes=tuple(b for b, _ in codes))
        result.fills += fills
        result.polygons += polygons
        result.findings += found
    # Faces in every format: a phone screenshot of a chart's patient photo is a PNG.
    if options.faces != "keep":
        found = faces.find(frame)
        if found and options.faces == "block":
            raise Refused("identifiable_face", "the picture shows a face; the policy blocks those")
        for box in found:
            result.blurs.append(box)
            result.findings.append(Finding("face", "pixels", "face.haar", box, 0.8))
    result.fills = merge_boxes(result.fills)
    result.findings = dedupe(result.findings)
    return result


def _blank(frame: Image.Image, boxes: list[Box], polygons: list[Polygon]) -> Image.Image:
    rgb = frame.convert("RGB")
    fill = tuple(int(v) for v in np.median(np.asarray(rgb).reshape(-1, 3), axis=0))
    _paint(ImageDraw.Draw(rgb), boxes, polygons, fill)
    return rgb


def _paint(draw: ImageDraw.ImageDraw, boxes: list[Box], polygons: list[Polygon], fill) -> None:
    for x, y, w, h in boxes:
        draw.rectangle((x, y, x + w - 1, y + h - 1), fill=fill)
    for polygon in polygons:
        draw.polygon([(round(px), round(py)) for px, py in polygon], fill=fill)


def dedupe(findings: list[Finding]) -> list[Finding]:
    """Several passes read the same line: one finding per kind and place, the surest one."""
    kept: list[Finding] = []
    for f in sorted(findings, key=lambda f: -f.confidence):
        if f.box is None or not any(k.kind == f.kind and k.box is not None and overlap(k.box, f.box) > 0.5
                                    for k in kept):
            kept.append(f)
    return kept


def pad(box: Box, size: tuple[int, int], fraction: float = 0.3) -> Box:
    """Grow a box by a fraction of its height (ascenders, descenders, OCR box jitter)."""
    return grow(box, size, max(2, round(box[3] * fraction)))


def merge_boxes(boxes: list[Box]) -> list[Box]:
    """Drop boxes wholly inside another (passes find the same line several times)."""
    boxes = sorted(set(b for b in boxes if b[2] > 0 and b[3] > 0), key=lambda b: -(b[2] * b[3]))
    kept: list[Box] = []
    for b in boxes:
        if not any(k[0] <= b[0] and k[1] <= b[1] and k[0] + k[2] >= b[0] + b[2] and k[1] + k[3] >= b[1] + b[3]
                   for k in kept):
            kept.append(b)
    return kept


def redact(frame: Image.Image, result: FrameResult) -> None:
    for box in result.blurs:
        faces.blur(frame, box)
    if not result.fills and not result.polygons:
        return
    _paint(ImageDraw.Draw(frame), result.fills, result.polygons, _black(frame))


def _black(frame: Image.Image):
    if frame.mode in ("RGBA", "LA"):
        return (0,) * (len(frame.mode) - 1) + (255,)
    if frame.mode == "P":
        # The palette entry nearest black; decoders hand us RGB(A) normally.
        palette = frame.getpalette() or [0, 0, 0]
        triples = [palette[i:i + 3] for i in range(0, len(palette), 3)]
        return min(range(len(triples)), key=lambda i: sum(triples[i]))
    if frame.mode in ("I", "I;16", "F"):
        return 0
    return (0,) * len(frame.getbands()) if len(frame.getbands()) > 1 else 0
