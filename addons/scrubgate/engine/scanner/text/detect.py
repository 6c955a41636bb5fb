"""Stage 1: find every line of text in a picture, once, with PP-OCR's DB detector.

A differentiable-binarisation (DB) network turns the picture into a map of
"text here" probabilities. Thresholding it gives one blob per text line,
whatever the polarity (light on dark, dark on light), contrast, size or tilt;
each blob's minimum-area rectangle, grown back by the shrink the network was
trained with ("unclip"), is the line. One pass, no page layout analysis.

The picture is scaled so that its short side is at least `min_short_side`
(small screenshots and DICOM frames: tiny print needs pixels) and its long
side at most `max_long_side` (the cost is linear in pixels), but never below
`min_scale` (a 4K screenshot's 14 px print must stay legible to the network).
All in `DetectorTuning`, measured on the quality corpus: PP-OCRv6 small found
as many identifier lines at 960 px as at 1600 px, in a third of the time, and
more than PP-OCRv5 mobile at any size (bench/results/detectors-*.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ...boxes import Box, ordered_corners
from . import models


@dataclass(frozen=True)
class DetectorTuning:
    min_short_side: int = 736  # upscale below this (PaddleOCR's own default)
    max_long_side: int = 960  # downscale above this
    min_scale: float = 0.5  # but never by more than this
    threshold: float = 0.3  # probability above which a pixel is text
    box_threshold: float = 0.45  # mean probability a line must reach (faint print scores 0.5-0.6)
    unclip_ratio: float = 1.6  # the network predicts shrunk lines; grow them back by this
    min_side: float = 3.0  # px on the network's input: smaller blobs are specks
    max_lines: int = 1000  # a page of dense print has a few hundred
    max_blob: float = 0.15  # a "line" taller than this share of the picture, and not
    # three times as long as tall, is anatomy or a logo the network liked: not read
    # A picture that min_scale keeps above max_long_side (over 1920 px: a 12 MP photo, a
    # 4K screenshot) is looked at with its long side at each of `ladder` first, and the
    # lines found are pooled. If they are print (coarse_min_lines or more, with a median
    # height of coarse_min_height on the network's input), that is the answer; else the
    # picture goes again at min_scale (small print on a big screenshot). On photos the
    # network does worse at large inputs, not better: an 8 MP photo of a screen gave 6,
    # 8 and 10 lines at 960, 1120 and 1280 px, then 4 at 1440 and 5 at min_scale.
    ladder: tuple[int, ...] = (960, 1280)
    coarse_min_lines: int = 3
    coarse_min_height: float = 12.0  # median line height on the network's input, px
    # A closer look where the print is small: a picture looked at below detail_scale,
    # whose lines of print are under detail_below px tall (median) on the network's
    # input, is looked at again at detail_scale, in the rows around the lines found
    # (detail_pad line heights above and below). A line beside or between found ones
    # is what the first look misses: in a phone photo of an ultrasound the DOB between
    # the MRN and the date. Where both looks found a line, the closer one's box wins
    # (the first split "03/02/2017" into "03/02" and nothing).
    # Camera photos only; the detector's boxes are about twice the height of the ink.
    # The rows are looked at closer, but never at more than detail_max_pixels (about
    # 0.5 s); if that allows less than 1.15 times the first look, not at all.
    detail_scale: float = 1.0
    detail_below: float = 32.0
    detail_pad: float = 1.0
    detail_max_pixels: int = 600_000


TUNING = DetectorTuning()


@dataclass(frozen=True)
class Detection:
    """One text line: a rotated rectangle (corners clockwise from top-left, in the
    picture's pixels), its axis-aligned box, and the detector's mean probability."""
    quad: tuple[tuple[float, float], ...]
    box: Box
    score: float

    @property
    def angle(self) -> float:
        """Slant of the line's top edge, degrees."""
        (x0, y0), (x1, y1) = self.quad[0], self.quad[1]
        return float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))

    @property
    def width(self) -> float:
        (x0, y0), (x1, y1) = self.quad[0], self.quad[1]
        return float(np.hypot(x1 - x0, y1 - y0))

    @property
    def height(self) -> float:
        (x0, y0), (x3, y3) = self.quad[0], self.quad[3]
        return float(np.hypot(x3 - x0, y3 - y0))


def input_scale(size: tuple[int, int], tuning: DetectorTuning = TUNING) -> float:
    short, long = min(size), max(size)
    scale = max(1.0, tuning.min_short_side / max(short, 1))
    return max(min(scale, tuning.max_long_side / max(long, 1)), tuning.min_scale)


def find_lines(image: Image.Image, tuning: DetectorTuning = TUNING,
               model: str = models.DETECTOR_FILE, camera: bool = False) -> list[Detection]:
    """Every text line in `image`, top to bottom. `camera`: a photograph, where the
    `ladder` of small inputs is tried first (screenshots keep their small print, which
    only min_scale shows: the quality corpus's 4K screenshots leaked with the ladder),
    and small print gets a closer look (`_closer_look`)."""
    rgb = np.asarray(image.convert("RGB"))
    found, used = _first_look(rgb, tuning, model, camera)
    if camera:
        found = _closer_look(rgb, found, used, tuning, model)
    return sorted(found, key=lambda d: (d.box[1], d.box[0]))


def _first_look(rgb: np.ndarray, tuning: DetectorTuning, model: str, camera: bool) -> tuple[list[Detection], float]:
    """The lines of the whole picture, and the largest scale it was looked at."""
    h, w = rgb.shape[:2]
    scale = input_scale((w, h), tuning)
    pooled: list[Detection] = []
    for long_side in tuning.ladder if camera else ():
        step = long_side / max(w, h)
        if step >= scale:
            break  # a picture small enough for one pass at its own scale
        # The network's working set and time grow faster than its input (0.3 GB and
        # 0.5 s at 0.7 MP; 0.9 GB and 4-11 s at the 3 MP of a 12 MP photo at min_scale).
        found = _detect_at(rgb, step, model, tuning)
        pooled = _pool(pooled, found)
        # Lines of print only (three times as long as tall): a logo or a corner blob
        # says nothing about the size of the print.
        heights = sorted(d.height * step for d in found if d.width >= 3 * d.height)
        if len(heights) >= tuning.coarse_min_lines and heights[len(heights) // 2] >= tuning.coarse_min_height:
            return pooled, step
    return _pool(pooled, _detect_at(rgb, scale, model, tuning)), scale


def _closer_look(rgb: np.ndarray, found: list[Detection], used: float, tuning: DetectorTuning,
                 model: str) -> list[Detection]:
    """`found`, with the rows around it looked at again at detail_scale when its print
    was small on the network's input (see DetectorTuning)."""
    heights = sorted(d.height for d in found if d.width >= 2 * d.height)
    if used >= 0.95 * tuning.detail_scale or not heights or \
            heights[len(heights) // 2] * used >= tuning.detail_below:
        return found
    h = rgb.shape[0]
    rows = sorted((max(0, int(y - tuning.detail_pad * bh)), min(h, int(y + bh + tuning.detail_pad * bh)))
                  for _, y, _, bh in (d.box for d in found))
    bands = [list(rows[0])]
    for top, bottom in rows[1:]:
        if top <= bands[-1][1]:
            bands[-1][1] = max(bands[-1][1], bottom)
        else:
            bands.append([top, bottom])
    area = rgb.shape[1] * sum(bottom - top for top, bottom in bands)
    scale = min(tuning.detail_scale, (tuning.detail_max_pixels / area) ** 0.5)
    if scale < 1.15 * used:
        return found
    closer: list[Detection] = []
    for top, bottom in bands:
        closer += _detect_at(rgb[top:bottom], scale, model, tuning, top=top, size=rgb.shape[1::-1])
    return _pool_closer(closer, found)


def _pool_closer(closer: list[Detection], found: list[Detection]) -> list[Detection]:
    """`found` and `closer` together. A closer line replaces the first-look lines it
    covers when it is the same line seen whole ("03/02/2017" for "03/02"), not two lines
    run together (no taller than 1.3 times each); a closer line that is mostly inside a
    first-look line it does not cover is a piece of it, and goes; any other is a line the
    first look missed, and is added.
    Overlap is measured on the rotated rectangles: on a tilted photo the upright boxes
    of neighbouring lines overlap by half."""
    import cv2

    quads = {id(d): np.asarray(d.quad, np.float32) for d in (*closer, *found)}

    def area(d: Detection) -> float:
        return d.width * d.height

    def shared(a: Detection, b: Detection) -> float:
        if _shared(a.box, b.box) == 0:
            return 0.0
        return float(cv2.intersectConvexConvex(quads[id(a)], quads[id(b)])[0])

    replaced: set[int] = set()
    out: list[Detection] = []
    for c in closer:
        overlap = [(i, shared(c, f)) for i, f in enumerate(found)]
        covered = [i for i, s in overlap if s > 0.8 * area(found[i])]
        if any(s > 0.5 * area(c) and i not in covered for i, s in overlap):
            continue  # a piece of a line the first look saw ("Patiëntnr:" of "Patiëntnr: 26514896")
        if all(c.height <= 1.3 * found[i].height for i in covered):
            replaced.update(covered)
            out.append(c)
    return out + [f for i, f in enumerate(found) if i not in replaced]


def _pool(kept: list[Detection], found: list[Detection]) -> list[Detection]:
    """`kept` plus each line of `found` that is not already there (more than half of the
    smaller box shared with a kept line)."""
    out = list(kept)
    for d in found:
        x, y, w, h = d.box
        if not any(_shared(d.box, k.box) > 0.5 * min(w * h, k.box[2] * k.box[3]) for k in kept):
            out.append(d)
    return out


def _shared(a: Box, b: Box) -> int:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, w) * max(0, h)


def _detect_at(rgb: np.ndarray, scale: float, model: str, tuning: DetectorTuning, top: int = 0,
               size: tuple[int, int] | None = None) -> list[Detection]:
    """The lines in `rgb` looked at `scale`; `rgb` may be a band of rows starting at
    `top` in a picture of `size`."""
    import cv2

    h, w = rgb.shape[:2]
    nw, nh = max(32, int(round(w * scale / 32)) * 32), max(32, int(round(h * scale / 32)) * 32)
    resized = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    x = (resized.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
    prob = models.session(model).run(None, {"x": x})[0][0, 0]
    return _lines_from_map(prob, w / nw, h / nh, (w, h), tuning, top, size or (w, h))


def _lines_from_map(prob: np.ndarray, sx: float, sy: float, size: tuple[int, int],
                    tuning: DetectorTuning, top: int = 0, picture: tuple[int, int] | None = None) -> list[Detection]:
    import cv2

    bitmap = (prob > tuning.threshold).astype(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out: list[Detection] = []
    for contour in contours[:tuning.max_lines]:
        (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
        if min(rw, rh) < tuning.min_side:
            continue
        score = _mean_inside(prob, contour)
        if score < tuning.box_threshold:
            continue
        # Unclip: DB's targets were shrunk by D = A * (1 - r^2) / L; growing each side
        # by A * ratio / L restores the line (PaddleOCR's offset, for a rectangle).
        grow = rw * rh * tuning.unclip_ratio / (2 * (rw + rh))
        rect = ((cx, cy), (rw + 2 * grow, rh + 2 * grow), angle)
        quad = ordered_corners(cv2.boxPoints(rect))
        quad[:, 0] = np.clip(quad[:, 0] * sx, 0, size[0])
        quad[:, 1] = np.clip(quad[:, 1] * sy, 0, size[1]) + top
        x0, y0 = np.floor(quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        long_side, short_side = max(rw, rh) * sx, min(rw, rh) * sy
        if short_side > tuning.max_blob * min(picture or size) and long_side < 3 * short_side:
            continue
        out.append(Detection(tuple(map(tuple, quad.tolist())), (int(x0), int(y0), int(x1 - x0), int(y1 - y0)),
                             round(score, 3)))
    out.sort(key=lambda d: (d.box[1], d.box[0]))
    return out


def _mean_inside(prob: np.ndarray, contour: np.ndarray) -> float:
    import cv2

    x, y, w, h = cv2.boundingRect(contour)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [contour.reshape(-1, 2) - (x, y)], 1)
    return float(cv2.mean(prob[y:y + h, x:x + w], mask)[0])
