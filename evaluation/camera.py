"""Photograph a screen (or anything): bezel, background, perspective, blur, moiré, noise.

Geometry goes through one homography so that every labelled box can be mapped
into the photo: the corners (and edge points) of a box are transformed and the
bounding box of the result is the label. Then the photometric damage a phone
does: defocus or motion blur, exposure and gamma, colour cast, moiré from the
screen's pixel grid beating against the sensor's, vignetting, sensor noise.
"""

from __future__ import annotations

import random

import cv2
import numpy as np
from PIL import Image

from .render import smooth_noise


def map_points(pts: np.ndarray, H: np.ndarray) -> np.ndarray:
    p = np.asarray(pts, np.float64).reshape(-1, 1, 2)
    return cv2.perspectiveTransform(p, H).reshape(-1, 2)


def box_points(box, n: int = 5) -> np.ndarray:
    x, y, w, h = box
    t = np.linspace(0, 1, n)
    top = np.stack([x + t * w, np.full(n, y)], 1)
    bot = np.stack([x + t * w, np.full(n, y + h)], 1)
    left = np.stack([np.full(n, x), y + t * h], 1)
    right = np.stack([np.full(n, x + w), y + t * h], 1)
    return np.concatenate([top, bot, left, right])


def map_box(box, fn, size) -> list[int] | None:
    """Map a box through point function `fn`; None when it falls mostly outside `size`."""
    pts = fn(box_points(box))
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    W, H = size
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    if cx1 <= cx0 or cy1 <= cy0 or (cx1 - cx0) * (cy1 - cy0) < 0.6 * (x1 - x0) * (y1 - y0):
        return None
    return [int(np.floor(cx0)), int(np.floor(cy0)), int(np.ceil(cx1 - cx0)), int(np.ceil(cy1 - cy0))]


def background(rng: np.random.Generator, w: int, h: int, kind: str | None = None) -> np.ndarray:
    """Desk, wall or bed-sheet-like texture."""
    kind = kind or rng.choice(["wall", "desk", "fabric", "office"])
    base = {"wall": (200, 196, 186), "desk": (120, 92, 64), "fabric": (215, 222, 232),
            "office": (90, 96, 104)}[kind]
    base = np.array(base, np.float32) * rng.uniform(0.75, 1.15)
    low = smooth_noise(rng, h, w, max(w, h) / 4)[..., None]
    mid = smooth_noise(rng, h, w, 25)[..., None]
    a = base * (0.8 + 0.3 * low) + (mid - 0.5) * 18
    if kind == "desk":  # wood grain
        yy = np.arange(h, dtype=np.float32)[:, None, None]
        a += 10 * np.sin(yy / rng.uniform(3, 9) + 3 * smooth_noise(rng, h, w, 60)[..., None] * 6)
    if kind == "fabric":  # folds
        xx = np.arange(w, dtype=np.float32)[None, :, None]
        a *= 0.9 + 0.1 * np.sin(xx / rng.uniform(40, 90) + 4 * low)
    a += rng.normal(0, 3, a.shape)
    return a.clip(0, 255).astype(np.uint8)


def add_bezel(screen: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int]]:
    """Put the screen in a monitor frame; return the framed image and the screen's offset in it."""
    h, w = screen.shape[:2]
    b = int(max(w, h) * rng.uniform(0.015, 0.05))
    colour = np.array(rng.choice([(22, 22, 24), (35, 35, 38), (60, 62, 66), (190, 192, 195)]), np.uint8)
    out = np.empty((h + 2 * b, w + 2 * b + 0, 3), np.uint8)
    out[:] = colour
    # a screen is never truly black: backlight bleed, and a little glare
    lifted = screen.astype(np.float32) * rng.uniform(0.85, 0.98) + rng.uniform(8, 30)
    out[b:b + h, b:b + w] = lifted.clip(0, 255).astype(np.uint8)
    return out, (b, b)


def moire(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Interference of two close gratings: low-frequency bands plus a fine carrier, in [-1, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t1, t2 = rng.uniform(0, np.pi), rng.uniform(0, np.pi)
    f1 = rng.uniform(0.25, 0.45)
    f2 = f1 * rng.uniform(0.93, 1.07)
    g1 = np.sin(f1 * (xx * np.cos(t1) + yy * np.sin(t1)))
    g2 = np.sin(f2 * (xx * np.cos(t2) + yy * np.sin(t2)))
    return g1 * g2


# Hard photo conditions, each forced on a share of the photos (see generate.condition_for). The
# ordinary damage (mild blur, exposure, noise, an occasional motion blur or glare blob) is on every photo;
# a condition pushes one kind of damage well past it. "jpeg60" is applied when the photo is saved.
CONDITIONS = ["low_light", "heavy_noise", "glare_bands", "motion_blur", "jpeg60"]


def motion_kernel(rng: np.random.Generator, length: int | None = None) -> np.ndarray:
    n = int(length or rng.integers(3, 10))
    n += 1 - n % 2
    k = np.zeros((n, n), np.float32)
    k[n // 2, :] = 1
    M = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), rng.uniform(0, 180), 1)
    k = cv2.warpAffine(k, M, (n, n))
    return k / max(k.sum(), 1e-6)


def glare_bands(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """One to three soft straight bands of reflected light (a ceiling tube on glass or glossy paper), 0..1."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros((h, w), np.float32)
    theta = rng.uniform(0, np.pi)
    for _ in range(int(rng.integers(1, 4))):
        theta_k = theta + rng.normal(0, 0.08)
        d = (xx - w / 2) * np.cos(theta_k) + (yy - h / 2) * np.sin(theta_k)
        c = rng.uniform(-0.35, 0.35) * max(w, h)
        half = rng.uniform(0.015, 0.06) * max(w, h)
        soft = half * rng.uniform(0.3, 1.0)
        band = np.clip((half + soft - np.abs(d - c)) / soft, 0, 1)  # flat top, soft edges
        along = (xx - w / 2) * -np.sin(theta_k) + (yy - h / 2) * np.cos(theta_k)
        fade = 0.6 + 0.4 * np.cos(along / max(w, h) * rng.uniform(1.5, 3.5) + rng.uniform(0, 6))
        out = np.maximum(out, band * fade * rng.uniform(0.6, 1.0))
    return out


def photometric(a: np.ndarray, rng: np.random.Generator, screen_mask: np.ndarray | None,
                strength: float = 1.0, condition: str | None = None,
                glare_mask: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Blur, exposure, moiré, vignetting, noise; returns the image and what was applied.

    `condition` (one of CONDITIONS) forces one hard kind of damage; `glare_mask` says where glare
    bands may fall (default: the screen, else everywhere).
    """
    h, w = a.shape[:2]
    f = a.astype(np.float32)
    applied = {}
    if condition:
        applied["condition"] = condition
    if condition == "motion_blur":  # hand shake at a slow shutter: a long streak
        k = motion_kernel(rng, int(max(w, h) * rng.uniform(0.005, 0.011)))
        f = cv2.filter2D(f, -1, k)
        applied["motion_blur_px"] = int(k.shape[0])
    elif rng.random() < 0.25 * strength and not condition:  # a condition is the only hard damage
        k = motion_kernel(rng)
        f = cv2.filter2D(f, -1, k)
        applied["motion_blur_px"] = int(k.shape[0])
    sigma = float(rng.uniform(0.3, 1.6) * strength)
    if condition:  # the condition is the hard part, not defocus on top of it
        sigma = min(sigma, 0.8 if condition in ("motion_blur", "low_light") else 1.0)
    f = cv2.GaussianBlur(f, (0, 0), sigma)
    applied["blur_sigma"] = round(sigma, 2)
    if screen_mask is not None and rng.random() < 0.6:
        amp = float(rng.uniform(0.03, 0.12) * strength)
        pat = moire(rng, h, w)[..., None]
        f = f * (1 + amp * pat * screen_mask[..., None])
        applied["moire_amp"] = round(amp, 3)
    if screen_mask is not None and rng.random() < 0.35:  # glare blob on the glass
        gx, gy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r = rng.uniform(0.1, 0.3) * max(w, h)
        glare = np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * r * r)) * rng.uniform(20, 60)
        f += (glare * screen_mask)[..., None]
        applied["glare"] = True
    if condition == "glare_bands":
        g = glare_bands(rng, h, w)
        m = glare_mask if glare_mask is not None else screen_mask
        if m is not None:
            g = g * m
        peak = float(rng.uniform(80, 160))
        # reflected light adds to what is under it and washes out its contrast
        f = f * (1 - 0.4 * g[..., None]) + (g * peak)[..., None]
        applied["glare_peak"] = round(peak)
    if condition == "low_light":  # underexposed, warm light, pushed by the phone: noise and smear
        gain = float(rng.uniform(0.22, 0.4))
        gamma = float(rng.uniform(1.0, 1.25))
        cast = np.array([rng.uniform(1.05, 1.18), 1.0, rng.uniform(0.7, 0.85)], np.float32)
    else:
        gain = float(rng.uniform(0.75, 1.25))
        gamma = float(rng.uniform(0.8, 1.25))
        cast = rng.uniform(0.92, 1.08, 3).astype(np.float32)
    f = 255 * ((f * gain).clip(0, 255) / 255) ** gamma
    f *= cast
    applied.update(gain=round(gain, 2), gamma=round(gamma, 2))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rr = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    vig = float(rng.uniform(0.1, 0.35))
    if condition == "low_light":
        vig = float(rng.uniform(0.3, 0.55))
    f *= (1 - vig * rr / 2)[..., None]
    noise = float(rng.uniform(2, 7) * strength)
    if condition == "low_light":
        noise = float(rng.uniform(4, 8))
    elif condition == "heavy_noise":
        noise = float(rng.uniform(10, 18))
    f += rng.normal(0, noise, f.shape).astype(np.float32)
    if condition in ("low_light", "heavy_noise"):  # chroma blotches and shot noise
        chroma = np.stack([cv2.resize(rng.normal(0, 1, (h // 4 + 1, w // 4 + 1)).astype(np.float32), (w, h))
                           for _ in range(3)], -1)
        f += chroma * noise * 0.5
        f += rng.normal(0, 1, f.shape).astype(np.float32) * np.sqrt(f.clip(0, 255)) * 0.4
    if condition == "heavy_noise":  # dead and hot pixels
        speck = rng.random((h, w)) < 0.002
        f[speck] = rng.choice([0.0, 255.0], size=(int(speck.sum()), 1))
    if condition == "low_light":  # the phone brightens it back up, noise and all, then denoises a little
        lift = float(rng.uniform(1.8, 2.6))
        f = cv2.GaussianBlur(f * lift, (0, 0), 0.7)
        applied["lift"] = round(lift, 2)
    applied.update(vignette=round(vig, 2), noise_sigma=round(noise, 1))
    return f.clip(0, 255).astype(np.uint8), applied


PHOTO_SIZES = [(1600, 1200), (1440, 1080), (2000, 1500), (1280, 960), (1200, 1600), (1080, 1440)]


def photograph_screen(screen: Image.Image, boxes_by_key: dict, rng: random.Random,
                      size: tuple[int, int] | None = None, max_rot: float = 8.0,
                      strength: float = 1.0, condition: str | None = None) -> tuple[Image.Image, dict, dict]:
    """Photograph `screen`; map every box in `boxes_by_key` {key: [box, ...]} into the photo.

    Boxes that end up mostly outside the frame map to None.
    """
    nrng = np.random.default_rng(rng.randrange(2**31))
    scr = np.asarray(screen.convert("RGB"))
    if size is None:  # hold the phone the way the screen is oriented, mostly
        landscape = (scr.shape[1] >= scr.shape[0]) == (rng.random() < 0.85)
        size = rng.choice([s for s in PHOTO_SIZES if (s[0] >= s[1]) == landscape])
    W, Hh = size
    framed, (ox, oy) = add_bezel(scr, nrng)
    fh, fw = framed.shape[:2]
    sh, sw = scr.shape[:2]
    scr_corners = np.array([[ox, oy], [ox + sw, oy], [ox + sw, oy + sh], [ox, oy + sh]], np.float64)
    for _attempt in range(60):
        # where the monitor lands: it fills 60-95% of the frame's width or height
        fill = rng.uniform(0.6, 0.95)
        s = fill * min(W / fw, Hh / fh)
        rot = np.deg2rad(rng.uniform(-max_rot, max_rot))
        ccx, ccy = W / 2 + rng.uniform(-0.06, 0.06) * W, Hh / 2 + rng.uniform(-0.06, 0.06) * Hh
        R = np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
        fr = np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], np.float64)
        dst = ((fr - [fw / 2, fh / 2]) * s) @ R.T + [ccx, ccy]
        # keystone: the phone is rarely square to the screen
        dst = dst + np.array([rng.uniform(-1, 1) for _ in range(8)]).reshape(4, 2) * 0.04 * min(W, Hh)
        F = cv2.getPerspectiveTransform(fr.astype(np.float32), dst.astype(np.float32)).astype(np.float64)
        sc = map_points(scr_corners, F)
        if sc[:, 0].min() >= 4 and sc[:, 1].min() >= 4 and sc[:, 0].max() <= W - 4 and sc[:, 1].max() <= Hh - 4:
            break
    # the canvas: background around the monitor, wide enough that it covers the
    # whole photo once warped (no replicated or mirrored borders)
    back = map_points(np.array([[0, 0], [W, 0], [W, Hh], [0, Hh]], np.float64), np.linalg.inv(F))
    mx = int(max(0, -back[:, 0].min(), back[:, 0].max() - fw)) + 8
    my = int(max(0, -back[:, 1].min(), back[:, 1].max() - fh)) + 8
    cw, ch = fw + 2 * mx, fh + 2 * my
    canvas = background(nrng, cw, ch)
    canvas[my:my + fh, mx:mx + fw] = framed
    P = F @ np.array([[1, 0, -mx], [0, 1, -my], [0, 0, 1]], np.float64)  # canvas -> photo
    M = F @ np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]], np.float64)  # screen -> photo
    sc = map_points(scr_corners - [ox, oy], M)
    photo = cv2.warpPerspective(canvas, P, (W, Hh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = np.zeros((Hh, W), np.float32)
    cv2.fillConvexPoly(mask, sc.astype(np.int32), 1.0)
    photo, applied = photometric(photo, nrng, mask, strength, condition)
    fn = lambda pts: map_points(pts, M)  # noqa: E731
    mapped = {k: [map_box(b, fn, (W, Hh)) for b in boxes] for k, boxes in boxes_by_key.items()}
    applied.update(rotation_deg=round(float(np.rad2deg(rot)), 2), screen_quad=sc.round(1).tolist())
    return Image.fromarray(photo), mapped, applied
