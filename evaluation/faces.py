"""Synthetic cartoon faces that OpenCV's Haar frontal-face cascade detects.

No real person's face is used. The drawing is crude (skin ellipse, hair, brows,
eyes, nose, mouth, then a blur) but it has the light/dark structure the
cascade keys on; the generator keeps only renderings the cascade detects, so
`kind: face` labels are faces by the same yardstick the scorer uses.
"""

from __future__ import annotations

import random

from PIL import Image, ImageDraw, ImageFilter

SKIN = [(233, 196, 170), (214, 170, 140), (190, 140, 105), (150, 100, 70), (105, 70, 50), (240, 210, 190)]
HAIR = [(40, 30, 20), (90, 60, 30), (20, 20, 20), (150, 110, 60), (120, 120, 120), (200, 170, 110)]


def draw_face(rng: random.Random, size: int, bg) -> tuple[Image.Image, list[int]]:
    """A face `size` px wide on `bg`; returns the tile and the face box (forehead to chin)."""
    W = size
    H = int(size * rng.uniform(1.2, 1.35))
    pad = int(size * 0.35)
    img = Image.new("RGB", (W + 2 * pad, H + 2 * pad), bg)
    d = ImageDraw.Draw(img)
    ox, oy = pad, pad
    skin = rng.choice(SKIN)
    hair = rng.choice(HAIR)
    # shoulders
    d.ellipse([ox - W * 0.4, oy + H * 0.95, ox + W * 1.4, oy + H * 2.0], fill=rng.choice(
        [(60, 90, 140), (200, 200, 205), (120, 40, 40), (40, 110, 90)]))
    d.rectangle([ox + W * 0.35, oy + H * 0.8, ox + W * 0.65, oy + H * 1.05], fill=skin)
    if rng.random() < 0.85:
        d.ellipse([ox - W * 0.05, oy - H * 0.12, ox + W * 1.05, oy + H * rng.uniform(0.5, 0.75)], fill=hair)
    d.ellipse([ox, oy, ox + W, oy + H], fill=skin)
    ey = oy + H * rng.uniform(0.36, 0.42)
    sep = rng.uniform(0.18, 0.22)
    brow = tuple(int(c * 0.6) for c in hair)
    for cx in (ox + W * (0.5 - sep), ox + W * (0.5 + sep)):
        d.rectangle([cx - W * 0.13, ey - W * 0.12, cx + W * 0.13, ey - W * 0.08], fill=brow)
        d.ellipse([cx - W * 0.11, ey - W * 0.045, cx + W * 0.11, ey + W * 0.045], fill=(240, 240, 240))
        d.ellipse([cx - W * 0.045, ey - W * 0.045, cx + W * 0.045, ey + W * 0.045],
                  fill=rng.choice([(40, 30, 20), (60, 90, 120), (70, 100, 60)]))
    if rng.random() < 0.25:  # glasses
        for cx in (ox + W * (0.5 - sep), ox + W * (0.5 + sep)):
            d.ellipse([cx - W * 0.15, ey - W * 0.1, cx + W * 0.15, ey + W * 0.1], outline=(30, 30, 30),
                      width=max(1, W // 60))
    shade = tuple(int(c * 0.82) for c in skin)
    d.polygon([(ox + W * 0.5, ey), (ox + W * 0.42, oy + H * 0.62), (ox + W * 0.58, oy + H * 0.62)], fill=shade)
    my = oy + H * rng.uniform(0.72, 0.76)
    d.ellipse([ox + W * 0.33, my, ox + W * 0.67, my + H * 0.07], fill=(150, 60, 60))
    img = img.filter(ImageFilter.GaussianBlur(max(0.8, size / 70)))
    return img, [ox, oy, W, H]


def face_tile(rng: random.Random, tile: int) -> tuple[Image.Image, list[int]]:
    """A square passport-style photo of `tile` px with a detectable face; returns (img, face box)."""
    from .common import face_visible

    bg = rng.choice([(200, 210, 225), (235, 235, 235), (170, 190, 210), (215, 205, 190)])
    for _ in range(12):
        face, box = draw_face(rng, int(tile * rng.uniform(0.45, 0.55)), bg)
        fw, fh = face.size
        sc = tile / max(fw, fh) * 1.25
        face = face.resize((int(fw * sc), int(fh * sc)), Image.LANCZOS)
        box = [int(v * sc) for v in box]
        canvas = Image.new("RGB", (tile, tile), bg)
        ox = (tile - face.size[0]) // 2
        oy = int(tile * 0.06) - box[1] + int(tile * 0.05)
        canvas.paste(face, (ox, oy))
        fbox = [box[0] + ox, max(0, box[1] + oy), box[2], min(tile, box[1] + oy + box[3]) - max(0, box[1] + oy)]
        if face_visible(canvas, fbox):
            return canvas, fbox
    return canvas, fbox
