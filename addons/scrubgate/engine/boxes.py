"""Box geometry shared by the OCR, the pixel scanner and the face finder.

A box is (x, y, w, h) in pixels, as every finding carries it.
"""

from __future__ import annotations

Box = tuple[int, int, int, int]


def union(boxes: list[Box]) -> Box:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return x0, y0, x1 - x0, y1 - y0


def grow(box: Box, size: tuple[int, int], p: int) -> Box:
    """Grow a box by p pixels on every side, kept inside a picture of `size`."""
    x, y, w, h = box
    x0, y0 = max(0, x - p), max(0, y - p)
    x1, y1 = min(size[0], x + w + p), min(size[1], y + h + p)
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def _intersection(a: Box, b: Box) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return max(0, x1 - x0) * max(0, y1 - y0)


def intersects(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box: 1.0 when one lies inside the other."""
    return _intersection(a, b) / max(1, min(a[2] * a[3], b[2] * b[3]))


def iou(a: Box, b: Box) -> float:
    inter = _intersection(a, b)
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def gap(a: Box, b: Box) -> float:
    """Distance between two boxes (0 when they touch or overlap)."""
    dx = max(0, max(a[0], b[0]) - min(a[0] + a[2], b[0] + b[2]))
    dy = max(0, max(a[1], b[1]) - min(a[1] + a[3], b[1] + b[3]))
    return max(dx, dy)
