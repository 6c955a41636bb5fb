"""Photograph paper: a sheet (letter, form, sheet of labels) with a curl, lying on a surface; a
specimen tube with a label wrapped round it; a sticker stuck on a page, a little crooked.

As in camera.py, every pixel goes through point functions that are also applied to the
label boxes (the corners and edge points of a box are mapped and the bounding box of the
result is the new label), so boxes stay on the text through curl, cylinder and perspective.
"""

from __future__ import annotations

import random

import cv2
import numpy as np
from PIL import Image, ImageDraw

from .camera import background, map_box, map_points, photometric
from .render import Page
from .wristband import wrap

PORTRAIT_SIZES = [(1200, 1600), (1080, 1440), (1500, 2000), (1440, 1920), (1152, 1536)]
LANDSCAPE_SIZES = [(w, h) for h, w in PORTRAIT_SIZES]


# --------------------------------------------------------------------------- stickers on a page

def place(dst: Page, src: Page, x: int, y: int, angle: float = 0.0, shadow: bool = True) -> None:
    """Stick `src` onto `dst` at (x, y), rotated by `angle` degrees; carry its labels along."""
    a = np.asarray(src.img.convert("RGB"))
    h, w = a.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(M[0, 0]), abs(M[0, 1])
    nw, nh = int(w * cos + h * sin) + 2, int(w * sin + h * cos) + 2
    M[0, 2] += nw / 2 - w / 2
    M[1, 2] += nh / 2 - h / 2
    rgba = np.dstack([a, np.full((h, w), 255, np.uint8)])
    rot = cv2.warpAffine(rgba, M, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))
    W, H = dst.img.size
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + nw), min(H, y + nh)
    if x1 <= x0 or y1 <= y0:
        return
    base = np.asarray(dst.img.crop((x0, y0, x1, y1)).convert("RGB")).astype(np.float32)
    sub = rot[y0 - y:y1 - y, x0 - x:x1 - x].astype(np.float32)
    al = sub[..., 3:4] / 255
    if shadow:  # the sticker's edge casts a faint line of shadow
        sh = cv2.GaussianBlur(al[..., 0], (0, 0), 1.5)
        sh = np.roll(sh, (1, 1), (0, 1))[..., None]
        base *= 1 - 0.12 * sh * (1 - al)
    base = base * (1 - al) + sub[..., :3] * al
    dst.img.paste(Image.fromarray(base.clip(0, 255).astype(np.uint8)), (x0, y0))
    dst.draw = ImageDraw.Draw(dst.img)

    def fn(pts):
        return np.asarray(pts, np.float64) @ M[:, :2].T + M[:, 2] + [x, y]

    for key in ("identifiers", "technical", "context"):
        for rec in getattr(src, key):
            box = map_box(rec["box"], fn, (W, H))
            if box:
                getattr(dst, key).append({**rec, "box": box})
    for b in src.identifier_lines:
        box = map_box(b, fn, (W, H))
        if box:
            dst.identifier_lines.append(box)


# --------------------------------------------------------------------------- a curled sheet

def _curl(rng: random.Random, sw: int, sh: int):
    """A smooth displacement of the flat sheet: one coordinate shifts as a function of the other."""
    axis = rng.choice(["x", "y"])  # "x": y shifts as a function of x (the page bows across)
    other = sh if axis == "x" else sw
    shape = rng.choice(["bow", "bow", "edge", "wave"])
    amp = rng.uniform(0.006, 0.03) * other * rng.choice([-1, 1])
    ph = rng.uniform(0, 2 * np.pi)
    start = rng.random() < 0.5

    def d(t):
        t = np.asarray(t, np.float64)
        if shape == "bow":
            return amp * np.sin(np.pi * t)
        if shape == "edge":  # one end lifts (a page out of a folder, the corner of a letter)
            u = (1 - t) if start else t
            return 2 * amp * np.clip((u - 0.6) / 0.4, 0, None) ** 2
        return 0.5 * amp * np.sin(2 * np.pi * t + ph)

    n = sw if axis == "x" else sh

    def fwd(pts):
        pts = np.asarray(pts, np.float64).copy()
        if axis == "x":
            pts[:, 1] += d(pts[:, 0] / sw)
        else:
            pts[:, 0] += d(pts[:, 1] / sh)
        return pts

    t = np.linspace(0, 1, n)
    slope = np.gradient(d(t), t)
    shade = 1 + rng.uniform(0.05, 0.14) * slope / max(1e-6, np.abs(slope).max()) * rng.choice([-1, 1])
    return fwd, d, axis, shade.astype(np.float32), {"curl": shape, "curl_px": round(abs(amp), 1)}


def photograph_sheet(sheet: Image.Image, rng: random.Random, size: tuple[int, int] | None = None,
                     max_rot: float = 10.0, strength: float = 1.0, condition: str | None = None,
                     surface: str | None = None, crop_chance: float = 0.2, glossy: bool | None = None,
                     fill: tuple[float, float] = (0.62, 0.93)):
    """Photograph a printed sheet lying on a surface. Returns (photo, forward point function, applied)."""
    nrng = np.random.default_rng(rng.randrange(2**31))
    a = np.asarray(sheet.convert("RGB")).astype(np.float32)
    sh, sw = a.shape[:2]
    if size is None:
        portrait = (sh >= sw) == (rng.random() < 0.9)
        size = rng.choice(PORTRAIT_SIZES if portrait else LANDSCAPE_SIZES)
    W, H = size
    fwd_curl, d, axis, shade, applied = _curl(rng, sw, sh)
    a *= shade[None, :, None] if axis == "x" else shade[:, None, None]
    rgba = np.dstack([a.clip(0, 255), np.full((sh, sw), 255, np.float32)]).astype(np.uint8)
    corners = np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], np.float64)
    t = np.linspace(0, 1, 25)
    border = np.concatenate([np.stack([t * sw, np.zeros_like(t)], 1), np.stack([t * sw, np.full_like(t, sh)], 1),
                             np.stack([np.zeros_like(t), t * sh], 1), np.stack([np.full_like(t, sw), t * sh], 1)])
    border = fwd_curl(border)
    cropped = rng.random() < crop_chance
    fill_range = fill
    for _attempt in range(60):
        fill = rng.uniform(1.0, 1.3) if cropped else rng.uniform(*fill_range)
        s = fill * min(W / sw, H / sh)
        rot = np.deg2rad(rng.uniform(-max_rot, max_rot))
        cx, cy = W / 2 + rng.uniform(-0.05, 0.05) * W, H / 2 + rng.uniform(-0.05, 0.05) * H
        R = np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
        dst = ((corners - [sw / 2, sh / 2]) * s) @ R.T + [cx, cy]
        dst = dst + np.array([rng.uniform(-1, 1) for _ in range(8)]).reshape(4, 2) * 0.05 * min(W, H)
        F = cv2.getPerspectiveTransform(corners.astype(np.float32), dst.astype(np.float32)).astype(np.float64)
        b = map_points(border, F)
        if cropped or (b[:, 0].min() >= 4 and b[:, 1].min() >= 4 and b[:, 0].max() <= W - 4
                       and b[:, 1].max() <= H - 4):
            break
    # inverse: photo pixel -> curled sheet -> flat sheet
    Fi = np.linalg.inv(F)
    vv, uu = np.mgrid[0:H, 0:W].astype(np.float64)
    den = Fi[2, 0] * uu + Fi[2, 1] * vv + Fi[2, 2]
    xs = (Fi[0, 0] * uu + Fi[0, 1] * vv + Fi[0, 2]) / den
    ys = (Fi[1, 0] * uu + Fi[1, 1] * vv + Fi[1, 2]) / den
    if axis == "x":
        ys = ys - d(xs / sw)
    else:
        xs = xs - d(ys / sh)
    warped = cv2.remap(rgba, xs.astype(np.float32), ys.astype(np.float32), cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    alpha = warped[..., 3:4].astype(np.float32) / 255
    surface = surface or rng.choice(["desk", "desk", "wall", "fabric", "office"])
    bg = background(nrng, W, H, surface).astype(np.float32)
    shadow = cv2.GaussianBlur(alpha[..., 0], (0, 0), max(3, 0.006 * max(W, H)))
    off = int(0.006 * max(W, H)) + 1
    bg *= (1 - 0.4 * np.roll(shadow, (off, off), (0, 1)))[..., None]
    img = bg * (1 - alpha) + warped[..., :3].astype(np.float32) * alpha
    if rng.random() < 0.3:  # the shadow of the phone and hand over part of the page
        m = np.zeros((H, W), np.float32)
        centre = (int(rng.uniform(0, W)), int(rng.uniform(-0.2, 0.2) * H + (H if rng.random() < 0.5 else 0)))
        axes = (int(W * rng.uniform(0.3, 0.6)), int(H * rng.uniform(0.2, 0.4)))
        cv2.ellipse(m, centre, axes, rng.uniform(0, 180), 0, 360, 1, -1)
        m = cv2.GaussianBlur(m, (0, 0), 0.05 * max(W, H))
        depth = rng.uniform(0.15, 0.35)
        img *= (1 - depth * m)[..., None]
        applied["hand_shadow"] = round(depth, 2)
    if glossy is None:
        glossy = rng.random() < 0.3
    photo, ph = photometric(img.clip(0, 255).astype(np.uint8), nrng, None, strength, condition,
                            glare_mask=alpha[..., 0] if glossy or condition == "glare_bands" else None)
    applied.update(ph, surface=surface, cropped=cropped, fill=round(fill, 2),
                   rotation_deg=round(float(np.rad2deg(rot)), 2))

    def fwd(pts):
        return map_points(fwd_curl(pts), F)

    return Image.fromarray(photo), fwd, applied


# --------------------------------------------------------------------------- a specimen tube

CAPS = [(150, 60, 170), (220, 180, 40), (110, 170, 230), (150, 150, 150), (200, 40, 40), (60, 160, 80),
        (240, 240, 240)]


def photograph_tube(label: Image.Image, rng: random.Random, size: tuple[int, int] | None = None,
                    strength: float = 0.9, condition: str | None = None):
    """A blood tube lying on a bench, the label wrapped round it (text along the tube's axis).
    Returns (photo, forward point function for label coordinates, applied)."""
    nrng = np.random.default_rng(rng.randrange(2**31))
    lab = np.asarray(label.convert("RGB"))
    lh, lw = lab.shape[:2]
    half = rng.uniform(0.7, 1.1)
    band, fwd_w = wrap(np.ascontiguousarray(lab.transpose(1, 0, 2)), rng, half=half, droop=0.0)
    wrapped = np.ascontiguousarray(band.transpose(1, 0, 2))  # height ~ 2R sin(half), width ~ lw
    R = (lh / 2) / half
    Rt = R * 1.04
    cap_h = Rt * 1.15
    body_len = lw * rng.uniform(1.1, 1.35) + 1.3 * Rt
    cap_len = 2 * Rt * rng.uniform(0.7, 1.0)
    TH = int(2 * cap_h) + 6
    TW = int(body_len + cap_len + 6)
    cy = TH / 2
    x0 = 3.0
    yy, xx = np.mgrid[0:TH, 0:TW].astype(np.float32)
    v = (yy - cy) / Rt
    inside_v = np.abs(v) < 1
    body = inside_v & (xx >= x0 + Rt) & (xx <= x0 + body_len)
    body |= ((xx - (x0 + Rt)) ** 2 + (yy - cy) ** 2 < Rt ** 2) & (xx < x0 + Rt)
    shade = np.sqrt(np.clip(1 - v ** 2, 0, 1))
    fill_to = x0 + body_len * rng.uniform(0.45, 0.8)
    blood = np.array(rng.choice([(110, 12, 18), (140, 20, 25), (190, 160, 60), (90, 8, 12)]), np.float32)
    clear = np.array([205, 210, 215], np.float32)
    col = np.where((xx < fill_to)[..., None], blood, clear)
    tube = np.zeros((TH, TW, 4), np.float32)
    tube[..., :3] = col * (0.5 + 0.5 * shade)[..., None]
    tube[..., :3] += (np.exp(-((v + 0.45) ** 2) / 0.01) * 70)[..., None]  # specular line on the plastic
    tube[..., 3] = np.where(body, np.where(xx < fill_to, 255, 150), 0)
    cap = (np.abs(yy - cy) < cap_h) & (xx > x0 + body_len) & (xx < x0 + body_len + cap_len)
    capc = np.array(rng.choice(CAPS), np.float32)
    vc = (yy - cy) / cap_h
    ridges = 0.85 + 0.15 * (np.sin(xx / max(2.0, Rt * 0.08)) > 0)
    tube[cap, :3] = (capc * (0.45 + 0.55 * np.sqrt(np.clip(1 - vc ** 2, 0, 1)))[..., None] * ridges[..., None])[cap]
    tube[cap, 3] = 255
    ox = x0 + Rt + (body_len - Rt - lw) * rng.uniform(0.2, 0.8)
    oy = cy - wrapped.shape[0] / 2
    ix, iy = int(round(ox)), int(round(oy))
    lab_a = wrapped[..., 3:4].astype(np.float32) / 255
    hh, ww = wrapped.shape[:2]
    reg = tube[iy:iy + hh, ix:ix + ww]
    reg[..., :3] = reg[..., :3] * (1 - lab_a) + wrapped[..., :3].astype(np.float32) * lab_a
    reg[..., 3:4] = np.maximum(reg[..., 3:4], lab_a * 255)
    tube = tube.clip(0, 255).astype(np.uint8)
    if size is None:
        size = rng.choice([(1600, 1200), (1440, 1080), (2000, 1500), (1920, 1440)])
    W, H = size
    angle = rng.uniform(-12, 12)
    scale = rng.uniform(0.85, 1.1) * W / TW  # close up: the cap may leave the frame, the label does not
    lcx, lcy = ox + lw / 2, cy  # the label's centre in the tube image goes near the middle of the photo
    A = cv2.getRotationMatrix2D((lcx, lcy), -angle, scale)
    A[0, 2] += W / 2 + rng.uniform(-0.06, 0.06) * W - lcx
    A[1, 2] += H / 2 + rng.uniform(-0.1, 0.1) * H - lcy
    warped = cv2.warpAffine(tube, A, (W, H), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))
    alpha = warped[..., 3:4].astype(np.float32) / 255
    surface = rng.choice(["desk", "fabric", "wall", "office"])
    bg = background(nrng, W, H, surface).astype(np.float32)
    shadow = cv2.GaussianBlur(alpha[..., 0], (0, 0), 8)
    bg *= (1 - 0.45 * np.roll(shadow, (10, 6), (0, 1)))[..., None]
    img = bg * (1 - alpha) + warped[..., :3].astype(np.float32) * alpha
    photo, applied = photometric(img.clip(0, 255).astype(np.uint8), nrng, None, strength, condition,
                                 glare_mask=alpha[..., 0])
    applied.update(surface=surface, tube_angle=round(angle, 1), wrap_half_deg=round(float(np.rad2deg(half)), 1))

    def fwd(pts):
        pts = np.asarray(pts, np.float64)
        q = fwd_w(pts[:, ::-1])[:, ::-1] + [ox, oy]
        return np.c_[q, np.ones(len(q))] @ A.T

    return Image.fromarray(photo), fwd, applied


def map_page(pg: Page, fn, size) -> dict:
    """Labels of `pg` mapped through point function `fn` into an image of `size`; lost boxes dropped."""
    out = {}
    dropped = 0
    for key in ("identifiers", "technical", "context"):
        out[key] = []
        for rec in getattr(pg, key):
            box = map_box(rec["box"], fn, size)
            if box is None:
                dropped += key == "identifiers"
                continue
            out[key].append({**rec, "box": box})
    out["identifier_lines"] = [b for b in (map_box(b, fn, size) for b in pg.identifier_lines) if b]
    out["_dropped"] = dropped
    return out
