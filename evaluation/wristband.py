"""A photographed patient wristband: printed name, DOB, MRN/NHS number and a barcode.

The band is printed flat, wrapped around a cylinder (the wrist: x compresses
towards the edges, the band droops a little, the edges darken), laid on an arm
over a bed sheet, rotated, then given the phone camera treatment. Boxes are
mapped through the same point functions as the pixels.
"""

from __future__ import annotations

import random

import cv2
import numpy as np
from PIL import Image

from . import identifiers as ids
from .camera import background, map_box, photometric
from .render import Page, barcode_array, font

BANDS = [(250, 250, 250), (245, 245, 238), (255, 236, 120), (250, 180, 190), (190, 220, 250), (255, 255, 255)]


def print_band(rng: random.Random, p: ids.Patient) -> tuple[Page, dict]:
    W, H = rng.choice([(1100, 260), (1000, 240), (1200, 280), (900, 220)])
    colour = rng.choice(BANDS)
    pg = Page(Image.new("RGB", (W, H), colour))
    d = pg.draw
    size = int(H * rng.uniform(0.12, 0.16))
    fb = font(rng, "sans_bold", int(size * 1.2))
    f = font(rng, rng.choice(["sans", "condensed", "mono"]), size)
    ink = (15, 15, 20)
    # a white label strip where the text is printed (coloured bands carry a white insert)
    lx0, lx1 = int(W * 0.12), int(W * 0.88)
    d.rounded_rectangle([lx0, int(H * 0.06), lx1, int(H * 0.94)], 8, fill=(252, 252, 252))
    code_kind = rng.choice(["Code128", "Code128", "QRCode", "DataMatrix", "both"])
    content = p.mrn if rng.random() < 0.7 else p.national
    text_x = lx0 + int(W * 0.02)
    right = lx1 - int(W * 0.02)
    if code_kind in ("QRCode", "DataMatrix", "both"):
        sym = "QRCode" if code_kind in ("QRCode", "both") else "DataMatrix"
        c2 = content if sym == "DataMatrix" else f"MRN:{p.mrn};DOB:{p.dob.isoformat()}"
        module = max(2, int(H * 0.75 / (29 if sym == "QRCode" else 18)))
        arr = barcode_array(c2, sym, module)
        if arr.shape[0] > H * 0.86:
            arr = cv2.resize(arr, (int(H * 0.86), int(H * 0.86)), interpolation=cv2.INTER_NEAREST)
        if rng.random() < 0.5:
            pg.paste_barcode(arr, right - arr.shape[1], (H - arr.shape[0]) // 2, c2, sym)
            right -= arr.shape[1] + 10
        else:
            pg.paste_barcode(arr, text_x, (H - arr.shape[0]) // 2, c2, sym)
            text_x += arr.shape[1] + 10
    y = int(H * 0.12)
    lh = int(size * 1.35)
    name = p.name_form(rng.choice(["comma_upper", "comma", "caret", "family_given_upper"]))
    pg.line(text_x, y, [(name, "id", {"kind": "person_name", "name_source": p.name_source})], fb, ink)
    y += int(fb.size * 1.35)
    pg.line(text_x, y, [(ids.label("dob", p.lang, rng), "ctx"), (p.date(p.dob, rng), "id", {"kind": "date_of_birth"}),
                        (rng.choice(["M", "F"]), "ctx")], f, ink)
    y += lh
    which = rng.random()
    if which < 0.5:
        segs = [(ids.label("mrn", p.lang, rng), "ctx"), (p.mrn, "id", {"kind": "mrn", "style": p.mrn_style})]
    else:
        segs = [(ids.NATIONAL_LABELS[p.national_kind][0], "ctx"),
                (p.national_formatted(rng), "id", {"kind": "national_id", "scheme": p.national_kind})]
    pg.line(text_x, y, segs, f, ink)
    y += lh
    if code_kind not in ("Code128", "both") and y + lh <= H * 0.9:  # room for the hospital line
        pg.line(text_x, y, [(p.hospital, "id", {"kind": "institution"})], same_or_small(rng, f, size), ink)
    if code_kind in ("Code128", "both"):
        module = max(2, int(W / 420))
        arr = barcode_array(content, "Code128", module)
        bh = int(H * 0.26)
        arr = cv2.resize(arr, (arr.shape[1], bh), interpolation=cv2.INTER_NEAREST)
        bx = max(text_x, right - arr.shape[1])
        if bx + arr.shape[1] <= lx1:
            pg.paste_barcode(arr, bx, H - bh - int(H * 0.08), content, "Code128")
    # snap holes at the strap ends
    for x in (int(W * 0.04), int(W * 0.95)):
        d.ellipse([x - 8, H / 2 - 8, x + 8, H / 2 + 8], fill=tuple(int(c * 0.7) for c in colour))
    return pg, {"barcode": code_kind, "band_colour": list(colour)}


def same_or_small(rng, f, size):
    from .render import same_family

    return same_family(f, max(10, int(size * 0.8)))


def wrap(band: np.ndarray, rng: random.Random, half: float | None = None, droop: float | None = None):
    """Wrap the band around a cylinder. Returns (rgba, forward point function).

    `half`: half of the angle the visible band subtends, radians; `droop`: sag of the band's middle
    as a share of its height (a tube's label does not sag: 0).
    """
    H, W = band.shape[:2]
    half = rng.uniform(0.55, 1.0) if half is None else half
    R = (W / 2) / half
    droop = H * (rng.uniform(0.0, 0.25) if droop is None else droop)
    out_w = int(2 * R * np.sin(half)) + 2
    out_h = H + int(droop) + 2
    cx_out = out_w / 2
    yy, xx = np.mgrid[0:out_h, 0:out_w].astype(np.float32)
    s = ((xx - cx_out) / R).clip(-1, 1)
    theta = np.arcsin(s)
    src_x = W / 2 + R * theta
    sag = droop / (1 - np.cos(half)) if droop else 0.0
    src_y = yy - sag * (1 - np.cos(theta))
    rgba = np.dstack([band, np.full((H, W), 255, np.uint8)])
    out = cv2.remap(rgba, src_x.astype(np.float32), src_y.astype(np.float32), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    shade = (0.55 + 0.45 * np.cos(theta))[..., None]
    out[..., :3] = (out[..., :3] * shade).astype(np.uint8)

    def fwd(pts):
        pts = np.asarray(pts, np.float64)
        th = (pts[:, 0] - W / 2) / R
        x = cx_out + R * np.sin(th)
        y = pts[:, 1] + sag * (1 - np.cos(th))
        return np.stack([x, y], 1)

    return out, fwd


def arm_scene(rng: random.Random, nrng: np.random.Generator, W: int, H: int, angle: float, band_h: int):
    """Bed sheet with a forearm crossing it along `angle`."""
    scene = background(nrng, W, H, rng.choice(["fabric", "fabric", "desk"])).astype(np.float32)
    skin = np.array(rng.choice([(224, 180, 150), (198, 150, 118), (160, 112, 80), (110, 75, 55)]), np.float32)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    dist = -(xx - W / 2) * s + (yy - H / 2) * c  # distance across the arm
    half = band_h * rng.uniform(0.75, 0.95) * 1.6
    inside = np.abs(dist) < half
    shading = np.sqrt(np.clip(1 - (dist / half) ** 2, 0, 1))[..., None]
    arm = skin * (0.55 + 0.45 * shading) + (nrng.normal(0, 3, scene.shape))
    scene = np.where(inside[..., None], arm, scene)
    return scene.clip(0, 255).astype(np.uint8)


def photograph_band(rng: random.Random, p: ids.Patient, condition: str | None = None):
    nrng = np.random.default_rng(rng.randrange(2**31))
    pg, meta = print_band(rng, p)
    band = np.asarray(pg.img)
    wrapped, fwd_wrap = wrap(band, rng)
    W, Hh = rng.choice([(1600, 1200), (1280, 960), (1200, 1600), (1440, 1080)])
    angle = rng.uniform(-12, 12)
    scale = rng.uniform(0.75, 1.0) * min(W / wrapped.shape[1], Hh / wrapped.shape[0]) * 0.95
    bw, bh = wrapped.shape[1] * scale, wrapped.shape[0] * scale
    scene = arm_scene(rng, nrng, W, Hh, angle, int(bh))
    cx, cy = W / 2 + rng.uniform(-0.05, 0.05) * W, Hh / 2 + rng.uniform(-0.05, 0.05) * Hh
    A = cv2.getRotationMatrix2D((wrapped.shape[1] / 2, wrapped.shape[0] / 2), -angle, scale)
    A[0, 2] += cx - wrapped.shape[1] / 2
    A[1, 2] += cy - wrapped.shape[0] / 2
    warped = cv2.warpAffine(wrapped, A, (W, Hh), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))
    alpha = warped[..., 3:4].astype(np.float32) / 255
    # a soft shadow under the band
    shadow = cv2.GaussianBlur(alpha[..., 0], (0, 0), 6).reshape(Hh, W, 1)
    img = scene.astype(np.float32) * (1 - 0.35 * np.roll(shadow, (6, 6), (0, 1)))
    img = img * (1 - alpha) + warped[..., :3].astype(np.float32) * alpha
    photo, applied = photometric(img.clip(0, 255).astype(np.uint8), nrng, None, strength=0.8, condition=condition)

    def fwd(pts):
        q = fwd_wrap(pts)
        return np.c_[q, np.ones(len(q))] @ A.T

    for rec in pg.identifiers + pg.technical + pg.context:
        rec["box"] = map_box(rec["box"], fwd, (W, Hh))
    lines = [map_box(b, fwd, (W, Hh)) for b in pg.identifier_lines]
    meta.update(applied, angle=round(angle, 1), layout="wristband", site=p.site, lang=p.lang)
    return Image.fromarray(photo), pg, [b for b in lines if b], meta
