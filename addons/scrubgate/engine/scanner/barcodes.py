"""Barcodes, QR codes and DataMatrix: always an identifier.

A wristband's Code128 or DataMatrix holds the MRN or NHS number; a QR code on
a letter holds a link with a patient token. We never read what they say (the
decoded text is dropped on the spot); we only need where they are.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..boxes import Box, Polygon, grow_quad, ordered_corners, polygon_box

# Above this, scanning the full-resolution picture costs more than it finds:
# a barcode that small in a 12 MP photo is not legible to anyone else either.
_MAX_SCAN_SIDE = 2400


def find(image: Image.Image) -> list[tuple[Box, str]]:
    """[(box, symbology family)] for every barcode zxing-cpp can decode.

    Candidates that fail their checksum are not taken: on photo noise the
    DataMatrix detector "finds" codes everywhere, and a code zxing cannot
    decode is one a phone camera app will not read either."""
    import zxingcpp

    gray = image.convert("L")
    scale = 1.0
    if max(gray.size) > _MAX_SCAN_SIDE:
        scale = _MAX_SCAN_SIDE / max(gray.size)
        gray = gray.resize((round(gray.width * scale), round(gray.height * scale)), Image.Resampling.BILINEAR)
    found = []
    for code in zxingcpp.read_barcodes(gray):
        p = code.position
        xs = [p.top_left.x, p.top_right.x, p.bottom_left.x, p.bottom_right.x]
        ys = [p.top_left.y, p.top_right.y, p.bottom_left.y, p.bottom_right.y]
        x0, y0, x1, y1 = min(xs) / scale, min(ys) / scale, max(xs) / scale, max(ys) / scale
        # Linear codes report a thin scan line; the bars span far more height (`tighten`
        # measures it).
        if y1 - y0 < 0.25 * (x1 - x0):
            extra = 0.4 * (x1 - x0)
            y0, y1 = y0 - extra, y1 + extra
        found.append(((int(x0), int(y0), int(x1 - x0) + 1, int(y1 - y0) + 1), _family(code)))
    return found


def _family(code) -> str:
    name = str(code.format).split(".")[-1].lower()
    if "qr" in name:
        return "qr"
    if "matrix" in name:
        return "datamatrix"
    if "pdf417" in name or "aztec" in name or "maxi" in name:
        return "2d"
    return "linear"


# A linear code's bars, measured: energy of the intensity's derivative along the scan
# line, smoothed along it, above this share of its level on the scan line.
_BAR_ENERGY = 0.35
_BAR_MARGIN = 0.04  # of the code's length, around the bars found


def tighten(image: Image.Image, codes: list[tuple[Box, str]]) -> list[tuple[Box, Polygon | None]]:
    """Per code, (box, polygon to paint): a linear code's bars as their own rotated
    rectangle, when that is smaller than `find`'s generous box (which allows bars 0.8 times
    as tall as the code is long: on a tilted wristband a third of the picture) and a
    second look finds no code left once it is painted; else (box, None), the box.
    Never less than the whole code: a linear code reads from any line across its bars."""
    linear = [k for k, (_, family) in enumerate(codes) if family == "linear"]
    out: list[tuple[Box, Polygon | None]] = [(box, None) for box, _ in codes]
    if not linear:
        return out
    gray = np.asarray(image.convert("L"))
    for k in linear:
        quad = _bars(gray, codes[k][0])
        if quad is not None:
            out[k] = (polygon_box(quad, image.size), quad)
    tried = [k for k in linear if out[k][1] is not None]
    if tried:
        from PIL import ImageDraw

        painted = image.convert("L")
        draw = ImageDraw.Draw(painted)
        for k in tried:
            draw.polygon([(round(x), round(y)) for x, y in out[k][1]], fill=0)
        for box, _ in find(painted):
            for k in tried:
                if _centre_in(box, codes[k][0]):
                    out[k] = (codes[k][0], None)  # still decodes: the generous box after all
    return out


def _bars(gray: np.ndarray, box: Box) -> Polygon | None:
    """The rotated rectangle around the bars of the linear code whose generous box is
    `box` (its scan line runs through the box's middle, horizontally or vertically)."""
    import cv2

    x, y, w, h = box
    horizontal = w >= h
    region = gray[max(0, y):y + h, max(0, x):x + w].astype(np.float32)
    if region.size == 0 or min(region.shape) < 8:
        return None
    length = region.shape[1] if horizontal else region.shape[0]
    derivative = cv2.Sobel(region, cv2.CV_32F, 1, 0, ksize=3) if horizontal else \
        cv2.Sobel(region, cv2.CV_32F, 0, 1, ksize=3)
    k = max(3, length // 30) | 1
    energy = cv2.blur(np.abs(derivative), (k, 1) if horizontal else (1, k))
    middle = energy[energy.shape[0] // 2, :] if horizontal else energy[:, energy.shape[1] // 2]
    level = float(np.median(middle))
    if level <= 0:
        return None
    mask = (energy > _BAR_ENERGY * level).astype(np.uint8)
    _, labels = cv2.connectedComponents(mask)
    centre = labels[labels.shape[0] // 2, :] if horizontal else labels[:, labels.shape[1] // 2]
    ids, votes = np.unique(centre[centre > 0], return_counts=True)
    if len(ids) == 0:
        return None
    points = np.argwhere(labels == ids[np.argmax(votes)])[:, ::-1].astype(np.float32)
    (cx, cy), (rw, rh), angle = cv2.minAreaRect(points)
    corners = cv2.boxPoints(((cx + max(0, x), cy + max(0, y)), (rw, rh), angle))
    if rw * rh >= 0.9 * w * h:
        return None  # no smaller than the box: nothing won
    return grow_quad(tuple(map(tuple, ordered_corners(corners).tolist())), max(4.0, _BAR_MARGIN * length))


def _centre_in(inner: Box, outer: Box) -> bool:
    cx, cy = inner[0] + inner[2] / 2, inner[1] + inner[3] / 2
    return outer[0] <= cx <= outer[0] + outer[2] and outer[1] <= cy <= outer[1] + outer[3]
