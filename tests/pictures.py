"""Pictures with identifiers planted in the pixels, for the pixel tests.

Small and deterministic; the broad corpus (fonts, layouts, distortions,
languages) lives in bench/quality/generate.py.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONTS = "/usr/share/fonts/truetype/dejavu/"

# Valid checksums: 943 476 5919 passes NHS mod 11; 111222333 passes the BSN 11-test.
IDENTIFIERS = ["KOWALSKI^ANNA", "NHS 943 476 5919", "DOB: 04-Mar-1962", "MRN: RX0042113",
               "St Mary's Hospital", "Study 2018-03-04 14:32"]
TECHNICAL = ["kVp 120 mAs 250", "W 400 L 40", "Se: 3 Im: 12/240", "Zoom 150%"]


def font(size: int, mono: bool = False) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONTS + ("DejaVuSansMono.ttf" if mono else "DejaVuSans.ttf"), size)


def viewer_screen(identifiers=IDENTIFIERS, technical=TECHNICAL, size=(1280, 960), text_px=16,
                  dark=True) -> Image.Image:
    """A PACS-like screen: identifiers top-left, technical text top- and bottom-right."""
    w, h = size
    bg, fg, fg2 = ((0, 0, 0), (235, 235, 235), (230, 230, 140)) if dark else \
        ((245, 245, 240), (20, 20, 20), (40, 40, 120))
    im = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(im)
    d.ellipse((w * 0.3, h * 0.22, w * 0.72, h * 0.82), fill=(70, 70, 70) if dark else (200, 200, 200))
    d.ellipse((w * 0.4, h * 0.36, w * 0.62, h * 0.66), fill=(125, 125, 125))
    f, fm = font(text_px), font(text_px - 2, mono=True)
    step = int(text_px * 1.45)
    for i, t in enumerate(identifiers):
        d.text((12, 10 + i * step), t, fill=fg, font=f)
    for i, t in enumerate(technical):
        d.text((w - 14 * text_px, 10 + i * step), t, fill=fg2, font=fm)
    return im


def photograph(im: Image.Image, seed: int = 1) -> Image.Image:
    """The screen as a phone sees it: bezel, perspective, moire, vignetting, blur, noise."""
    import cv2

    rng = np.random.default_rng(seed)
    a = np.asarray(im.convert("RGB")).astype(np.float32)
    h, w = a.shape[:2]
    ow, oh = int(w * 1.55), int(h * 1.65)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    j = rng.uniform(-0.03, 0.03, (4, 2)) * [w, h]
    dst = np.float32([[0.13 * ow, 0.14 * oh], [0.88 * ow, 0.11 * oh], [0.9 * ow, 0.86 * oh],
                      [0.115 * ow, 0.83 * oh]]) + j.astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(a, m, (ow, oh))
    mask = cv2.warpPerspective(np.ones((h, w), np.float32), m, (ow, oh))[..., None]
    out = np.full((oh, ow, 3), (62, 56, 50), np.float32) * (1 - mask) + warped * mask
    yy, xx = np.mgrid[0:oh, 0:ow]
    out += 10 * np.sin(xx * 0.9 + yy * 0.35)[..., None]
    out *= (0.7 + 0.4 * np.exp(-((xx - ow / 2) ** 2 + (yy - oh / 2) ** 2) / (2 * (0.45 * ow) ** 2)))[..., None]
    out = cv2.GaussianBlur(out, (0, 0), 1.1) + rng.normal(0, 5, out.shape)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def wristband(codes: list[str] = ("QRCode", "Code128", "DataMatrix")) -> Image.Image:
    """A hospital wristband: printed identifiers and machine-readable codes of the MRN."""
    import zxingcpp

    im = Image.new("RGB", (1400, 700), (196, 170, 150))  # skin-ish background
    d = ImageDraw.Draw(im)
    d.rounded_rectangle((40, 140, 1360, 560), 40, fill=(250, 250, 250))
    f = font(30)
    d.text((80, 170), "KOWALSKI, Anna", fill=(0, 0, 0), font=f)
    d.text((80, 215), "DOB: 04/03/1962", fill=(0, 0, 0), font=f)
    d.text((80, 260), "MRN: RX0042113", fill=(0, 0, 0), font=f)
    x = 80
    for kind in codes:
        fmt = getattr(zxingcpp.BarcodeFormat, kind)
        code = zxingcpp.create_barcode("RX0042113", fmt)
        scale = 3 if kind == "Code128" else 6
        pic = Image.fromarray(np.asarray(code.to_image(scale=scale)))
        if kind == "Code128":
            pic = pic.resize((pic.width, 110))
        im.paste(pic.convert("RGB"), (x, 320 if kind == "Code128" else 300))
        x += pic.width + 60
    return im
