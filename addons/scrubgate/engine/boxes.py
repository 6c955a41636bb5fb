"""Box geometry shared by the OCR, the pixel scanner and the face finder.

A box is (x, y, w, h) in pixels, as every finding carries it. A quad is a rotated
rectangle's four corners, clockwise from its top-left: a tilted line of text in a
photo, painted as itself rather than as its far larger upright box.
"""

from __future__ import annotations

import math

Box = tuple[int, int, int, int]
Quad = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]
Polygon = tuple[tuple[float, float], ...]  # convex, what a fill on a tilted line is


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


def grow_quad(quad: Quad, p: float) -> Quad:
    """A rotated rectangle grown by p pixels on every side, along its own axes."""
    (x0, y0), (x1, y1), _, (x3, y3) = quad
    along, down = (x1 - x0, y1 - y0), (x3 - x0, y3 - y0)
    la, ld = math.hypot(*along) or 1.0, math.hypot(*down) or 1.0
    ax, ay = along[0] / la * p, along[1] / la * p
    dx, dy = down[0] / ld * p, down[1] / ld * p
    signs = ((-1, -1), (1, -1), (1, 1), (-1, 1))  # (along, down) per corner
    return tuple((x + sa * ax + sd * dx, y + sa * ay + sd * dy)
                 for (x, y), (sa, sd) in zip(quad, signs))  # type: ignore[return-value]


def clip_to_quad(box: Box, quad: Quad) -> Polygon:
    """The part of `box` inside `quad`: a word's upright box cut down to its tilted line."""
    import cv2
    import numpy as np

    x, y, w, h = box
    upright = np.array([(x, y), (x + w, y), (x + w, y + h), (x, y + h)], np.float32)
    area, points = cv2.intersectConvexConvex(upright, np.array(quad, np.float32))
    if area <= 0 or points is None:
        return tuple(map(tuple, upright.tolist()))  # type: ignore[return-value]
    return tuple((float(px), float(py)) for px, py in points.reshape(-1, 2))


def polygon_box(polygon: Polygon, size: tuple[int, int]) -> Box:
    """The upright box around a polygon, inside a picture of `size`."""
    xs, ys = [x for x, _ in polygon], [y for _, y in polygon]
    x0, y0 = max(0, math.floor(min(xs))), max(0, math.floor(min(ys)))
    x1, y1 = min(size[0], math.ceil(max(xs))), min(size[1], math.ceil(max(ys)))
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def ordered_corners(points):
    """Order a rectangle's corners top-left, top-right, bottom-right, bottom-left, with
    the long side as the 'top': a line of text is wider than it is tall. `points`: a
    4x2 numpy array (cv2.boxPoints); the result is one too, float64."""
    import numpy as np

    pts = points[np.argsort(points[:, 0])]
    left, right = pts[:2], pts[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    quad = np.array([tl, tr, br, bl], dtype=np.float64)
    width = np.hypot(*(quad[1] - quad[0]))
    height = np.hypot(*(quad[3] - quad[0]))
    if height > 1.5 * width:  # a vertical line (a label turned 90 degrees): read it bottom-up
        quad = np.array([bl, tl, tr, br], dtype=np.float64)
    return quad
