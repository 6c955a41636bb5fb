"""Full-face photographs: an identifier under HIPAA Safe Harbor.

OpenCV's Haar cascade ships inside opencv-python-headless (no download) and
runs in a few tens of milliseconds on a downscaled picture. A single cascade
finds "faces" in rib cages and textures; two differently trained frontal
cascades that agree on the same place almost never do, so a face must be
found by both. Profiles are missed (Safe Harbor names full-face photographs).
Blurring, not blocking, is the default, and it only runs on photographs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter

from ..boxes import Box, iou

_DETECT_SIDE = 1024  # faces worth hiding are large; detection is cheap at this size


@lru_cache(maxsize=1)
def _cascades():
    import cv2

    root = cv2.data.haarcascades
    return [cv2.CascadeClassifier(root + name) for name in
            ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")]


def find(image: Image.Image) -> list[Box]:
    gray = image.convert("L")
    scale = min(1.0, _DETECT_SIDE / max(gray.size))
    if scale < 1.0:
        gray = gray.resize((round(gray.width * scale), round(gray.height * scale)), Image.Resampling.BILINEAR)
    a = np.asarray(gray)
    # A chart's patient thumbnail is small: look down to 1/30 of the short side.
    min_side = max(20, min(a.shape) // 30)
    default, alt2 = _cascades()
    found = default.detectMultiScale(a, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    if len(found) == 0:
        return []  # the second cascade only confirms: most pictures need half the work
    confirmed = alt2.detectMultiScale(a, scaleFactor=1.1, minNeighbors=3, minSize=(min_side, min_side))
    boxes = []
    for (x, y, w, h) in found:
        if any(iou((x, y, w, h), other) > 0.3 for other in confirmed):
            boxes.append((int(x / scale), int(y / scale), int(w / scale), int(h / scale)))
    return boxes


def blur(image: Image.Image, box: Box) -> None:
    """Pixelate then blur in place: coarse enough that no detail is left to recover."""
    x, y, w, h = box
    pad = max(w, h) // 6
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(image.width, x + w + pad), min(image.height, y + h + pad)
    region = image.crop((x0, y0, x1, y1))
    small = region.resize((max(1, (x1 - x0) // 16), max(1, (y1 - y0) // 16)), Image.Resampling.BOX)
    region = small.resize(region.size, Image.Resampling.NEAREST).filter(
        ImageFilter.GaussianBlur(max(2, (x1 - x0) // 24)))
    image.paste(region, (x0, y0))
