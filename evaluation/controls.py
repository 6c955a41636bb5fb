"""Images with no text and no identifiers: the sanitiser should leave their pixels alone."""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw

from .camera import photograph_screen, photometric
from .render import anatomy, smooth_noise


def texture(rng: random.Random, nrng: np.random.Generator, w: int, h: int) -> np.ndarray:
    layers = [smooth_noise(nrng, h, w, c) for c in (w / 3, w / 12, 12, 3)]
    weights = np.array([0.45, 0.3, 0.17, 0.08])
    base = sum(wt * ly for wt, ly in zip(weights, layers))
    c0, c1 = nrng.uniform(0, 255, 3), nrng.uniform(0, 255, 3)
    return (c0 + (c1 - c0) * base[..., None]).clip(0, 255).astype(np.uint8)


def gradient_shapes(rng: random.Random, nrng: np.random.Generator, w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xx * np.cos(rng.uniform(0, 6.3)) + yy * np.sin(rng.uniform(0, 6.3))) / max(w, h)
    t = (t - t.min()) / max(1e-6, t.max() - t.min())
    c0, c1 = nrng.uniform(0, 255, 3), nrng.uniform(0, 255, 3)
    img = Image.fromarray((c0 + (c1 - c0) * t[..., None]).clip(0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(rng.randint(4, 14)):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.03, 0.2) * min(w, h)
        col = tuple(int(v) for v in nrng.integers(0, 256, 3))
        kind = rng.choice(["ellipse", "rect", "poly"])
        if kind == "ellipse":
            d.ellipse([x - r, y - r * rng.uniform(0.5, 1.5), x + r, y + r], fill=col)
        elif kind == "rect":
            d.rounded_rectangle([x - r, y - r / 2, x + r, y + r / 2], int(r / 5), fill=col)
        else:
            d.polygon([(x + r * np.cos(a), y + r * np.sin(a)) for a in np.linspace(0, 6.28, rng.randint(3, 7),
                                                                                 endpoint=False)], fill=col)
    return np.asarray(img)


def landscape(rng: random.Random, nrng: np.random.Generator, w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sky_top, sky_bot = np.array([70, 120, 200]), np.array([190, 215, 240])
    a = sky_top + (sky_bot - sky_top) * (yy / h)[..., None]
    clouds = smooth_noise(nrng, h, w, w / 6)
    a = a + (clouds > 0.6)[..., None] * (255 - a) * ((clouds - 0.6) * 2.2)[..., None]
    for k, col in enumerate([(90, 110, 130), (70, 120, 60), (50, 95, 40)]):
        base = h * (0.45 + 0.15 * k)
        ridge = base + h * 0.06 * np.sin(xx[0] / w * rng.uniform(3, 9) + rng.uniform(0, 6)) + \
            h * 0.04 * (smooth_noise(nrng, 1, w, w / 8)[0] - 0.5)
        mask = yy > ridge[None, :]
        tex = (smooth_noise(nrng, h, w, 6) - 0.5) * 30
        a = np.where(mask[..., None], np.array(col) + tex[..., None], a)
    return a.clip(0, 255).astype(np.uint8)


def anatomy_rgb(rng: random.Random, nrng: np.random.Generator, w: int, h: int) -> np.ndarray:
    g = anatomy(nrng, rng.choice(["CT", "MR", "US", "XR"]), w, h)
    return np.repeat(g[..., None], 3, axis=2)


def control(rng: random.Random, kind: str | None = None) -> tuple[Image.Image, dict, bool]:
    """Returns (image, meta, photographic). Photographic ones get phone EXIF."""
    nrng = np.random.default_rng(rng.randrange(2**31))
    kind = kind or rng.choice(["texture", "gradient_shapes", "landscape", "anatomy", "screen_no_text"])
    w, h = rng.choice([(1024, 768), (1280, 960), (800, 800), (1600, 1200), (1200, 1600)])
    meta = {"layout": f"control_{kind}"}
    if kind == "texture":
        return Image.fromarray(texture(rng, nrng, w, h)), meta, False
    if kind == "gradient_shapes":
        return Image.fromarray(gradient_shapes(rng, nrng, w, h)), meta, False
    if kind == "landscape":
        a, applied = photometric(landscape(rng, nrng, w, h), nrng, None, 0.6)
        meta.update(applied)
        return Image.fromarray(a), meta, True
    if kind == "anatomy":
        return Image.fromarray(anatomy_rgb(rng, nrng, w, h)), meta, False
    # a monitor showing an image with no overlays at all, photographed
    sw, sh = rng.choice([(1024, 768), (1280, 1024)])
    scr = np.zeros((sh, sw, 3), np.uint8)
    cw, ch = int(sw * 0.7), int(sh * 0.85)
    scr[(sh - ch) // 2:(sh - ch) // 2 + ch, (sw - cw) // 2:(sw - cw) // 2 + cw] = anatomy_rgb(rng, nrng, cw, ch)
    photo, _, applied = photograph_screen(Image.fromarray(scr), {}, rng)
    meta.update({k: v for k, v in applied.items() if k != "screen_quad"})
    return photo, meta, True
