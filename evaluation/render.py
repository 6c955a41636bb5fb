"""Render synthetic medical screens with Pillow, recording a box for every string.

A `Page` draws text segment by segment. Each segment has a role:
  "id"    an identifier (kind, text, box are recorded),
  "tech"  technical text that must survive (kVp, W/L, probe, depth...),
  "clin"  clinical text that must survive too (findings, vitals),
  "ctx"   labels and clutter that are neither ("Name:", "M", times).
A line that carries an identifier is recorded in `identifier_lines`, since the
sanitiser may legitimately redact a whole banner line.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import identifiers as ids

# --------------------------------------------------------------------------- fonts

_FONT_DIRS = [Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts/opentype/urw-base35")]
FONT_SETS = {
    "sans": ["dejavu/DejaVuSans.ttf", "liberation2/LiberationSans-Regular.ttf", "freefont/FreeSans.ttf",
             "NimbusSans-Regular.otf", "URWGothic-Book.otf"],
    "sans_bold": ["dejavu/DejaVuSans-Bold.ttf", "liberation2/LiberationSans-Bold.ttf", "freefont/FreeSansBold.ttf",
                  "NimbusSans-Bold.otf", "URWGothic-Demi.otf"],
    "condensed": ["dejavu/DejaVuSansCondensed.ttf", "NimbusSansNarrow-Regular.otf",
                  "dejavu/DejaVuSansCondensed-Bold.ttf", "NimbusSansNarrow-Bold.otf"],
    "mono": ["dejavu/DejaVuSansMono.ttf", "liberation2/LiberationMono-Regular.ttf", "freefont/FreeMono.ttf",
             "NimbusMonoPS-Regular.otf", "dejavu/DejaVuSansMono-Bold.ttf"],
    "mono_bold": ["dejavu/DejaVuSansMono-Bold.ttf", "liberation2/LiberationMono-Bold.ttf", "freefont/FreeMonoBold.ttf",
                  "NimbusMonoPS-Bold.otf"],
    "serif": ["dejavu/DejaVuSerif.ttf", "liberation2/LiberationSerif-Regular.ttf", "freefont/FreeSerif.ttf",
              "NimbusRoman-Regular.otf", "P052-Roman.otf", "C059-Roman.otf", "URWBookman-Light.otf",
              "dejavu/DejaVuSerifCondensed.ttf"],
    "serif_bold": ["dejavu/DejaVuSerif-Bold.ttf", "liberation2/LiberationSerif-Bold.ttf", "freefont/FreeSerifBold.ttf",
                   "NimbusRoman-Bold.otf", "P052-Bold.otf", "C059-Bold.otf", "URWBookman-Demi.otf"],
    "serif_italic": ["dejavu/DejaVuSerif-Italic.ttf", "liberation2/LiberationSerif-Italic.ttf",
                     "freefont/FreeSerifItalic.ttf", "NimbusRoman-Italic.otf", "P052-Italic.otf", "C059-Italic.otf"],
    "sans_italic": ["dejavu/DejaVuSans-Oblique.ttf", "liberation2/LiberationSans-Italic.ttf",
                    "freefont/FreeSansOblique.ttf", "NimbusSans-Italic.otf"],
}

# Bold (italic) partner of a regular face, so a page keeps one family.
_BOLD = {"DejaVuSans.ttf": "DejaVuSans-Bold.ttf", "LiberationSans-Regular.ttf": "LiberationSans-Bold.ttf",
         "FreeSans.ttf": "FreeSansBold.ttf", "NimbusSans-Regular.otf": "NimbusSans-Bold.otf",
         "URWGothic-Book.otf": "URWGothic-Demi.otf", "DejaVuSerif.ttf": "DejaVuSerif-Bold.ttf",
         "LiberationSerif-Regular.ttf": "LiberationSerif-Bold.ttf", "FreeSerif.ttf": "FreeSerifBold.ttf",
         "NimbusRoman-Regular.otf": "NimbusRoman-Bold.otf", "P052-Roman.otf": "P052-Bold.otf",
         "C059-Roman.otf": "C059-Bold.otf", "URWBookman-Light.otf": "URWBookman-Demi.otf",
         "DejaVuSerifCondensed.ttf": "DejaVuSerifCondensed-Bold.ttf",
         "DejaVuSansCondensed.ttf": "DejaVuSansCondensed-Bold.ttf",
         "NimbusSansNarrow-Regular.otf": "NimbusSansNarrow-Bold.otf", "DejaVuSansMono.ttf": "DejaVuSansMono-Bold.ttf",
         "LiberationMono-Regular.ttf": "LiberationMono-Bold.ttf", "FreeMono.ttf": "FreeMonoBold.ttf",
         "NimbusMonoPS-Regular.otf": "NimbusMonoPS-Bold.otf"}
_ITALIC = {"DejaVuSerif.ttf": "DejaVuSerif-Italic.ttf", "LiberationSerif-Regular.ttf": "LiberationSerif-Italic.ttf",
           "FreeSerif.ttf": "FreeSerifItalic.ttf", "NimbusRoman-Regular.otf": "NimbusRoman-Italic.otf",
           "P052-Roman.otf": "P052-Italic.otf", "C059-Roman.otf": "C059-Italic.otf",
           "URWBookman-Light.otf": "URWBookman-LightItalic.otf",
           "DejaVuSerifCondensed.ttf": "DejaVuSerifCondensed-Italic.ttf"}


@lru_cache(maxsize=None)
def _font_paths(kind: str) -> tuple[str, ...]:
    found = []
    for rel in FONT_SETS[kind]:
        for d in _FONT_DIRS:
            if (d / rel).is_file():
                found.append(str(d / rel))
                break
    return tuple(found)


@lru_cache(maxsize=None)
def _load(path: str, size: int):
    return ImageFont.truetype(path, size)


def font(rng: random.Random, kind: str, size: int):
    paths = _font_paths(kind) or _font_paths("sans")
    if not paths:
        return ImageFont.load_default(size)
    return _load(rng.choice(paths), int(size))


def same_family(f, size: int):
    """The font `f` at another size."""
    if isinstance(f, ImageFont.FreeTypeFont):
        return _load(f.path, int(size))
    return ImageFont.load_default(size)


def styled(f, style: str, size: int | None = None):
    """The bold or italic face of `f`'s family (or `f` itself when there is none), at `size`."""
    size = int(size or f.size)
    if not isinstance(f, ImageFont.FreeTypeFont):
        return ImageFont.load_default(size)
    p = Path(f.path)
    other = (_BOLD if style == "bold" else _ITALIC).get(p.name)
    if other and (p.parent / other).is_file():
        return _load(str(p.parent / other), size)
    return _load(f.path, size)


# --------------------------------------------------------------------------- the page

@dataclass
class Page:
    img: Image.Image
    identifiers: list = field(default_factory=list)
    technical: list = field(default_factory=list)
    context: list = field(default_factory=list)
    identifier_lines: list = field(default_factory=list)

    def __post_init__(self):
        self.draw = ImageDraw.Draw(self.img)

    @property
    def size(self):
        return self.img.size

    def width_of(self, segments, fnt, gap: float) -> float:
        return sum(fnt.getlength(s[0]) for s in segments) + gap * (len(segments) - 1)

    def line(self, x: float, y: float, segments, fnt, fill, anchor: str = "l", gap: float | None = None,
             fills=None) -> list[int]:
        """Draw `segments` [(text, role, meta?)] on one baseline-free line; return its box."""
        segments = [s for s in segments if s and s[0]]
        if not segments:
            return [int(x), int(y), 0, 0]
        gap = fnt.getlength("  ") if gap is None else gap
        total = self.width_of(segments, fnt, gap)
        if anchor == "r":
            x -= total
        elif anchor == "c":
            x -= total / 2
        boxes, has_id = [], False
        for i, seg in enumerate(segments):
            text, role = seg[0], seg[1]
            meta = seg[2] if len(seg) > 2 else {}
            colour = (fills[i] if fills else None) or meta.get("fill") or fill
            self.draw.text((x, y), text, font=fnt, fill=colour)
            l, t, r, b = self.draw.textbbox((x, y), text, font=fnt)
            box = [int(l), int(t), int(r - l), int(b - t)]
            boxes.append(box)
            rec = {"text": text, "box": box}
            if role == "id":
                has_id = True
                self.identifiers.append({"kind": meta["kind"], **rec,
                                         **{k: v for k, v in meta.items() if k not in ("kind", "fill")}})
            elif role in ("tech", "clin"):
                self.technical.append({**rec, "role": "technical" if role == "tech" else "clinical"})
            else:
                self.context.append(rec)
            x += fnt.getlength(text) + gap
        x0 = min(b[0] for b in boxes)
        y0 = min(b[1] for b in boxes)
        x1 = max(b[0] + b[2] for b in boxes)
        y1 = max(b[1] + b[3] for b in boxes)
        lbox = [x0, y0, x1 - x0, y1 - y0]
        if has_id:
            self.identifier_lines.append(lbox)
        return lbox

    def paste_barcode(self, arr: np.ndarray, x: int, y: int, content: str, symbology: str):
        """Paste a rendered symbol (white background) and label its dark extent as a 'barcode'."""
        tile = Image.fromarray(arr).convert("RGB")
        self.img.paste(tile, (x, y))
        dark = np.argwhere(arr < 128)
        (r0, c0), (r1, c1) = dark.min(axis=0), dark.max(axis=0)
        box = [int(x + c0), int(y + r0), int(c1 - c0 + 1), int(r1 - r0 + 1)]
        self.identifiers.append({"kind": "barcode", "text": content, "symbology": symbology, "box": box})
        return box


# --------------------------------------------------------------------------- barcodes

def barcode_array(content: str, symbology: str, module: int) -> np.ndarray:
    import zxingcpp

    fmt = {"Code128": zxingcpp.BarcodeFormat.Code128, "QRCode": zxingcpp.BarcodeFormat.QRCode,
           "DataMatrix": zxingcpp.BarcodeFormat.DataMatrix}[symbology]
    bc = zxingcpp.create_barcode(content, fmt)
    a = np.array(zxingcpp.write_barcode_to_image(bc, scale=module, add_hrt=False, add_quiet_zones=True))
    if symbology == "Code128":  # zxing's default bar height is short for a wristband; stretch it
        a = cv2.resize(a, (a.shape[1], int(a.shape[0] * 0.8)), interpolation=cv2.INTER_NEAREST)
    return a


# --------------------------------------------------------------------------- image content

def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Value noise in [0,1] with features about `cell` px wide."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    g = rng.random((gh, gw)).astype(np.float32)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def _ellipse(a, c, axes, val, angle=0.0):
    cv2.ellipse(a, (int(c[0]), int(c[1])), (max(1, int(axes[0])), max(1, int(axes[1]))), angle, 0, 360,
                float(val), -1, cv2.LINE_AA)


def ct_slice(rng: np.random.Generator, w: int, h: int, region: str = "abdomen") -> np.ndarray:
    a = np.zeros((h, w), np.float32)
    cx, cy = w / 2 + rng.normal(0, w * 0.02), h / 2 + rng.normal(0, h * 0.02)
    ax, ay = w * rng.uniform(0.36, 0.45), h * rng.uniform(0.28, 0.36)
    _ellipse(a, (cx, cy), (ax, ay), 75)  # subcutaneous fat
    _ellipse(a, (cx, cy), (ax * 0.9, ay * 0.86), 110)  # muscle wall
    _ellipse(a, (cx, cy), (ax * 0.82, ay * 0.76), 100)
    if region == "thorax":
        for s in (-1, 1):
            _ellipse(a, (cx + s * ax * 0.42, cy - ay * 0.05), (ax * 0.3, ay * 0.55), 18, rng.uniform(-15, 15))
        _ellipse(a, (cx + ax * 0.08, cy + ay * 0.1), (ax * 0.22, ay * 0.3), 135)  # heart
    else:
        _ellipse(a, (cx - ax * 0.38, cy - ay * 0.1), (ax * 0.35, ay * 0.45), 140, rng.uniform(-20, 20))  # liver
        _ellipse(a, (cx + ax * 0.5, cy - ay * 0.25), (ax * 0.15, ay * 0.22), 135)  # spleen
        for s in (-1, 1):
            _ellipse(a, (cx + s * ax * 0.32, cy + ay * 0.35), (ax * 0.09, ay * 0.16), 150, s * 20)  # kidneys
        for _ in range(rng.integers(5, 12)):  # bowel loops
            _ellipse(a, (cx + rng.normal(0, ax * 0.25), cy + rng.normal(0, ay * 0.15)),
                     (rng.uniform(3, max(4, ax * 0.12)), rng.uniform(3, max(4, ay * 0.12))), rng.uniform(40, 170))
    _ellipse(a, (cx, cy + ay * 0.55), (ax * 0.09, ay * 0.12), 235)  # vertebra
    _ellipse(a, (cx, cy + ay * 0.55), (ax * 0.05, ay * 0.07), 170)
    _ellipse(a, (cx + ax * 0.06, cy + ay * 0.3), (ax * 0.04, ax * 0.04), 175)  # aorta
    cv2.ellipse(a, (int(cx), int(cy + ay * 1.35)), (int(ax * 1.1), int(ay * 0.3)), 0, 200, 340, 160, 3)  # table
    a += (smooth_noise(rng, h, w, 12) - 0.5) * 25 * (a > 0)
    a = cv2.GaussianBlur(a, (0, 0), 1.2)
    a += rng.normal(0, 6, a.shape).astype(np.float32) * (a > 5)
    return a.clip(0, 255).astype(np.uint8)


def mr_brain(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    a = np.zeros((h, w), np.float32)
    cx, cy = w / 2, h / 2
    ax, ay = min(w, h) * rng.uniform(0.3, 0.38), min(w, h) * rng.uniform(0.38, 0.45)
    _ellipse(a, (cx, cy), (ax, ay), 190)  # scalp
    _ellipse(a, (cx, cy), (ax * 0.93, ay * 0.94), 40)  # skull
    _ellipse(a, (cx, cy), (ax * 0.88, ay * 0.9), 60)  # CSF
    brain = np.zeros_like(a)
    _ellipse(brain, (cx, cy), (ax * 0.85, ay * 0.87), 1)
    folds = smooth_noise(rng, h, w, 9)
    a = np.where(brain > 0, 95 + 60 * (folds > 0.5) + 20 * folds, a)
    for s in (-1, 1):  # ventricles
        _ellipse(a, (cx + s * ax * 0.12, cy - ay * 0.05), (ax * 0.07, ay * 0.22), 35, s * 12)
    if rng.random() < 0.4:  # a lesion
        _ellipse(a, (cx + rng.normal(0, ax * 0.3), cy + rng.normal(0, ay * 0.3)), (ax * 0.08, ax * 0.06), 230)
    a = cv2.GaussianBlur(a, (0, 0), 1.0) + rng.normal(0, 4, a.shape).astype(np.float32)
    return a.clip(0, 255).astype(np.uint8)


def us_image(rng: np.random.Generator, w: int, h: int, linear: bool = False) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    speck = rng.rayleigh(1.0, (h, w)).astype(np.float32)
    speck = cv2.GaussianBlur(speck, (0, 0), 1.1)
    tissue = 0.55 + 0.45 * smooth_noise(rng, h, w, 40)
    depth = yy / h
    a = 70 * speck * tissue * (1.1 - 0.6 * depth)
    for _ in range(rng.integers(1, 4)):  # fascia lines
        y0 = rng.uniform(0.15, 0.7) * h
        a += 90 * np.exp(-((yy - y0 - 0.05 * h * np.sin(xx / w * 6 + rng.uniform(0, 6))) ** 2) / 18)
    for _ in range(rng.integers(1, 3)):  # cysts / vessels
        m = np.zeros((h, w), np.float32)
        _ellipse(m, (rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.8) * h), (rng.uniform(0.04, 0.12) * w,
                 rng.uniform(0.03, 0.08) * h), 1, rng.uniform(0, 180))
        a = a * (1 - 0.85 * cv2.GaussianBlur(m, (0, 0), 3))
    mask = np.zeros((h, w), np.uint8)
    if linear:
        mask[int(0.02 * h):, int(0.1 * w):int(0.9 * w)] = 1
    else:
        apex = (w / 2, -0.12 * h)
        half = np.deg2rad(rng.uniform(30, 42))
        ang = np.arctan2(xx - apex[0], yy - apex[1])
        r = np.hypot(xx - apex[0], yy - apex[1])
        mask = ((np.abs(ang) < half) & (r > 0.18 * h) & (r < 1.08 * h)).astype(np.uint8)
    return (a * mask).clip(0, 255).astype(np.uint8)


def xray_chest(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    a = np.full((h, w), 25, np.float32)
    cx = w / 2
    _ellipse(a, (cx, h * 0.62), (w * 0.42, h * 0.62), 175)
    for s in (-1, 1):
        _ellipse(a, (cx + s * w * 0.18, h * 0.5), (w * 0.14, h * 0.3), 70, s * -6)
    for i in range(9):  # ribs
        y = h * (0.26 + i * 0.055)
        for s in (-1, 1):
            cv2.ellipse(a, (int(cx + s * w * 0.05), int(y)), (int(w * 0.2), int(h * 0.06)), 0,
                        180 if s < 0 else 270, 270 if s < 0 else 360, 150, max(2, int(h * 0.012)), cv2.LINE_AA)
    cv2.rectangle(a, (int(cx - w * 0.025), 0), (int(cx + w * 0.025), h), 200, -1)
    _ellipse(a, (cx + w * 0.05, h * 0.62), (w * 0.12, h * 0.13), 185)  # heart
    a = cv2.GaussianBlur(a, (0, 0), 2.0) + rng.normal(0, 5, a.shape).astype(np.float32)
    return a.clip(0, 255).astype(np.uint8)


def anatomy(rng: np.random.Generator, modality: str, w: int, h: int) -> np.ndarray:
    if modality == "CT":
        return ct_slice(rng, w, h, "thorax" if rng.random() < 0.35 else "abdomen")
    if modality == "MR":
        return mr_brain(rng, w, h)
    if modality == "US":
        return us_image(rng, w, h, linear=rng.random() < 0.3)
    return xray_chest(rng, w, h)


def doppler_overlay(rgb: np.ndarray, rng: np.random.Generator) -> None:
    h, w = rgb.shape[:2]
    x0, y0 = int(rng.uniform(0.3, 0.5) * w), int(rng.uniform(0.3, 0.5) * h)
    bw, bh = int(0.16 * w), int(0.14 * h)
    blob = cv2.GaussianBlur(smooth_noise(rng, bh, bw, 20), (0, 0), 3)
    red = blob > 0.62
    blue = blob < 0.3
    sub = rgb[y0:y0 + bh, x0:x0 + bw]
    sub[red] = (180, 20, 20)
    sub[blue] = (30, 60, 200)
    cv2.rectangle(rgb, (x0, y0), (x0 + bw, y0 + bh), (220, 220, 220), 1)


# --------------------------------------------------------------------------- text pools

TECH = {
    "CT": ["kVp 120", "mAs 250", "ST 5.0mm", "Se: 3 Im: 12/240", "Tilt 0.0", "FOV 350mm", "Pitch 0.984",
           "Rot 0.5s", "Kernel B30f", "CTDIvol 8.2 mGy", "DLP 412 mGy*cm", "Ax 2.5mm", "Std", "120 kV",
           "Se 4 / Im 87", "Zoom 150%", "Thk 1.25 mm"],
    "MR": ["Ax T2 FLAIR", "TR 9000", "TE 120", "TI 2500", "ST 5.0mm", "FOV 230x230", "Se: 4 Im: 18/24", "3.0T",
           "Sag T1 MPRAGE", "DWI b1000", "NEX 1", "ETL 16", "Cor T2 TSE", "Matrix 320x256", "1.5T"],
    "US": ["5.0 MHz", "Gain 50", "Depth 16 cm", "FR 30Hz", "C5-1", "TIS 0.4 MI 1.1", "DR 60", "2D 62%",
           "PRF 3.5kHz", "L12-5", "Gn 55", "THI", "Focus 8cm", "Res", "Pwr 100%", "MI 0.9", "TIB 0.3"],
    "XR": ["kVp 70", "mAs 4.0", "SID 180cm", "EI 1450", "DAP 0.05 dGy*cm2", "AP ERECT", "PA", "Grid",
           "Zoom 100%", "S 210", "REX 512"],
    "any": ["W 400 L 40", "WL: 40 WW: 400", "Zoom 150%", "Im 12/240", "HR 72 bpm"],
}
REGIONS = {"CT": ["ABDOMEN", "THORAX", "CT ABDOMEN", "PELVIS", "HEAD"], "MR": ["BRAIN", "HEAD", "Ax T2 FLAIR"],
           "US": ["LIVER", "ABDOMEN", "KIDNEY R", "THYROID", "GALLBLADDER", "Sag Liver"],
           "XR": ["CHEST", "THORAX PA", "L"]}
FINDINGS = {
    "en": ["Findings: The liver is normal in size and echotexture.", "No focal lesion is seen.",
           "The gallbladder is unremarkable.", "Impression: Normal study.", "No free fluid.",
           "Kidneys measure 10.8 cm and 11.2 cm.", "Lungs are clear. Heart size normal."],
    "nl": ["Bevindingen: lever normaal van grootte.", "Geen focale afwijkingen.", "Conclusie: normaal onderzoek.",
           "Galblaas zonder afwijkingen.", "Geen vrij vocht."],
    "de": ["Befund: Leber normal groß, homogen.", "Keine fokalen Läsionen.", "Beurteilung: Unauffälliger Befund.",
           "Gallenblase unauffällig.", "Kein freies Fluid."],
    "fr": ["Résultats: foie de taille normale.", "Pas de lésion focale.", "Conclusion: examen normal.",
           "Vésicule biliaire sans particularité.", "Pas d'épanchement."],
}
EXAM_TITLES = {"en": ["ULTRASOUND ABDOMEN", "CT CHEST", "MRI BRAIN", "XR CHEST PA"],
               "nl": ["ECHO ABDOMEN", "CT THORAX", "MRI HERSENEN", "X-THORAX"],
               "de": ["SONOGRAPHIE ABDOMEN", "CT THORAX", "MRT SCHÄDEL", "RÖNTGEN THORAX"],
               "fr": ["ÉCHOGRAPHIE ABDOMINALE", "SCANNER THORAX", "IRM CÉRÉBRALE", "RADIO THORAX"]}

DARK_COLOURS = [(235, 235, 235), (200, 200, 200), (170, 170, 170), (235, 220, 90), (120, 230, 120),
                (140, 220, 235), (240, 170, 60)]


def pick_tech(rng: random.Random, modality: str, k: int) -> list[str]:
    pool = TECH[modality] + TECH["any"]
    return rng.sample(pool, min(k, len(pool)))


# --------------------------------------------------------------------------- identifier segments

def name_segment(rng, p: ids.Patient, labelled: float = 0.5):
    form = rng.choice(ids.NAME_FORMS)
    meta = {"kind": "person_name", "name_source": p.name_source, "form": form}
    segs = []
    if rng.random() < labelled:
        segs.append((ids.label("name", p.lang, rng), "ctx"))
        meta["labelled"] = True
    segs.append((p.name_form(form), "id", meta))
    return segs


def id_segment(rng, p: ids.Patient, which: str | None = None):
    which = which or rng.choice(["mrn", "mrn", "national"])
    if which == "national":
        lab = rng.choice(ids.NATIONAL_LABELS[p.national_kind])
        return [(lab, "ctx"), (p.national_formatted(rng), "id", {"kind": "national_id", "scheme": p.national_kind})]
    segs = [(ids.label("mrn", p.lang, rng), "ctx")] if rng.random() < 0.85 else []
    return segs + [(p.mrn, "id", {"kind": "mrn", "style": p.mrn_style})]


def dob_segment(rng, p: ids.Patient):
    segs = [(ids.label("dob", p.lang, rng), "ctx"), (p.date(p.dob, rng), "id", {"kind": "date_of_birth"})]
    if rng.random() < 0.5:
        segs.append((rng.choice(["M", "F"]) if rng.random() < 0.5 else f"{rng.randint(1, 95)}Y", "ctx"))
    return segs


def study_segment(rng, p: ids.Patient, labelled: float = 0.5):
    segs = [(ids.label("study_date", p.lang, rng), "ctx")] if rng.random() < labelled else []
    segs.append((p.date(p.study, rng), "id", {"kind": "study_date"}))
    if rng.random() < 0.6:
        segs.append((p.study.strftime(rng.choice(["%H:%M:%S", "%H:%M", "%I:%M:%S %p"])), "ctx"))
    return segs


def hospital_segment(rng, p: ids.Patient):
    return [(p.hospital, "id", {"kind": "institution"})]


def accession_segment(rng, p: ids.Patient):
    return [(ids.label("accession", p.lang, rng), "ctx"), (p.accession, "id", {"kind": "accession"})]


def physician_segment(rng, p: ids.Patient, labelled: float = 0.8):
    segs = [(ids.label("ref", p.lang, rng), "ctx")] if rng.random() < labelled else []
    return segs + [(p.physician, "id", {"kind": "physician_name", "name_source": p.physician_source})]


def phone_segment(rng, p: ids.Patient):
    return [(ids.label("phone", p.lang, rng), "ctx"), (p.phone, "id", {"kind": "phone"})]


def address_segments(rng, p: ids.Patient):
    return [(p.street, "id", {"kind": "address"}), (p.postcode, "id", {"kind": "postcode"}),
            (p.city, "ctx")]


# --------------------------------------------------------------------------- layouts

VIEWER_SIZES = [(1024, 768), (1280, 1024), (1366, 768), (1600, 900), (1920, 1080), (800, 600), (1440, 900)]


def _size_for(rng, w: int, lo: int = 10, hi: int = 28) -> int:
    base = w / 1024 * rng.uniform(11, 20)
    return int(min(hi, max(lo, base)))


def viewer_dark(rng: random.Random, nrng: np.random.Generator, p: ids.Patient, size: tuple[int, int] | None = None,
                ui: float = 1.0) -> tuple[Page, dict]:
    """PACS / modality viewer: image in the middle, overlays in the four corners.

    `size` forces the screen size (4K), `ui` scales the type as a desktop's scaling setting does."""
    w, h = size or rng.choice(VIEWER_SIZES)
    modality = rng.choice(["CT", "CT", "MR", "XR", "US"])
    img = np.zeros((h, w, 3), np.uint8)
    toolbar = int(h * 0.05) if rng.random() < 0.5 else 0
    side = int(w * rng.uniform(0.12, 0.18)) if rng.random() < 0.3 and w >= 1200 else 0
    vx0, vy0, vw, vh = side, toolbar, w - side, h - toolbar
    content_w, content_h = int(vw * rng.uniform(0.55, 0.75)), int(vh * rng.uniform(0.7, 0.9))
    content = anatomy(nrng, modality, content_w, content_h)
    cx0 = vx0 + (vw - content_w) // 2
    cy0 = vy0 + (vh - content_h) // 2
    img[cy0:cy0 + content_h, cx0:cx0 + content_w] = content[..., None]
    if modality == "US" and rng.random() < 0.4:
        doppler_overlay(img[cy0:cy0 + content_h, cx0:cx0 + content_w], nrng)
    pg = Page(Image.fromarray(img))
    d = pg.draw
    if rng.random() < 0.3:
        pg.draw.fontmode = "1"  # some viewers draw without anti-aliasing
    if toolbar:
        d.rectangle([0, 0, w, toolbar], fill=(45, 48, 52))
        for i in range(rng.randint(6, 14)):  # icon squares, no text
            x = 8 + i * (toolbar + 6)
            d.rounded_rectangle([x, 6, x + toolbar - 12, toolbar - 6], 3, fill=(90, 95, 100))
    size = _size_for(rng, w) if ui == 1.0 else int(rng.uniform(12, 20) * ui)
    fnt = font(rng, rng.choice(["sans", "sans", "condensed", "mono"]), size)
    colour = rng.choice(DARK_COLOURS)
    lh = int(size * rng.uniform(1.2, 1.5))
    m = int(size * 0.6) + 2

    patient_lines = [name_segment(rng, p, 0.3), id_segment(rng, p), dob_segment(rng, p)]
    if rng.random() < 0.4:
        patient_lines.append(id_segment(rng, p, "national"))
    inst_lines = [hospital_segment(rng, p), study_segment(rng, p)]
    if rng.random() < 0.6:
        inst_lines.append(accession_segment(rng, p))
    if rng.random() < 0.5:
        inst_lines.append(physician_segment(rng, p))
    rng.shuffle(inst_lines)
    na, nb = rng.randint(2, 5), rng.randint(2, 4)
    tech = pick_tech(rng, modality, na + nb)
    tech_a = [[(t, "tech")] for t in tech[:na]]
    tech_b = [[(t, "tech")] for t in tech[na:]]
    if rng.random() < 0.6:
        tech_b.append([(rng.choice(REGIONS[modality]), "tech")])

    corners = ["tl", "tr", "bl", "br"]
    if rng.random() < 0.25:
        rng.shuffle(corners)
    blocks = dict(zip(corners, [patient_lines, inst_lines, tech_a, tech_b]))
    for corner, lines in blocks.items():
        n = len(lines)
        for i, segs in enumerate(lines):
            y = (vy0 + m + i * lh) if corner[0] == "t" else (vy0 + vh - m - (n - i) * lh)
            x, anchor = (vx0 + m, "l") if corner[1] == "l" else (w - m, "r")
            pg.line(x, y, segs, fnt, colour, anchor=anchor)
    if side:
        _side_panel(pg, rng, p, 0, toolbar, side, h - toolbar, dark=rng.random() < 0.6)
    if rng.random() < 0.5:  # scale bar with ticks
        sx = cx0 + content_w + 12
        if sx + 20 < w:
            y0, y1 = cy0 + content_h * 0.2, cy0 + content_h * 0.8
            d.line([sx, y0, sx, y1], fill=colour, width=1)
            for k in range(6):
                yy = y0 + k * (y1 - y0) / 5
                d.line([sx, yy, sx + 6, yy], fill=colour, width=1)
            if rng.random() < 0.6:
                small = same_family(fnt, max(10, size - 2))
                pg.line(sx + 10, y1 - size, [(f"{rng.choice([5, 10])} cm", "tech")], small, colour)
    return pg, {"layout": "viewer_dark", "modality": modality, "font_px": size, "ui_scale": ui}


def _side_panel(pg: Page, rng, p: ids.Patient, x0, y0, w, h, dark: bool):
    bg, fg, lab = ((32, 34, 38), (225, 225, 225), (150, 150, 150)) if dark else ((242, 243, 245), (20, 20, 20),
                                                                                   (110, 110, 110))
    pg.draw.rectangle([x0, y0, x0 + w, y0 + h], fill=bg)
    size = max(10, min(16, int(w / 16)))
    f = font(rng, "sans", size)
    fb = font(rng, "sans_bold", size + 2)
    y = y0 + 10
    pg.line(x0 + 8, y, [(p.name_form(rng.choice(["comma", "given_family", "caret"])), "id",
                         {"kind": "person_name", "name_source": p.name_source})], fb, fg)
    y += int(size * 2)
    for segs in (id_segment(rng, p, "mrn"), dob_segment(rng, p)[:2], study_segment(rng, p, 1.0)[:2]):
        pg.line(x0 + 8, y, segs[:1], f, lab)
        y += int(size * 1.3)
        pg.line(x0 + 8, y, segs[1:], f, fg)
        y += int(size * 1.8)
    for k in range(rng.randint(2, 4)):  # series thumbnails
        th = int(w * 0.6)
        if y + th + size * 2 > y0 + h:
            break
        thumb = nrng_thumb(rng, th)
        pg.img.paste(thumb, (x0 + 8, int(y)))
        y += th + 4
        pg.line(x0 + 8, y, [(f"Se {k + 1}", "tech")], f, lab)
        y += int(size * 1.8)


def nrng_thumb(rng: random.Random, size: int) -> Image.Image:
    nrng = np.random.default_rng(rng.randrange(2**31))
    return Image.fromarray(anatomy(nrng, rng.choice(["CT", "MR", "US"]), size, size)).convert("RGB")


def ultrasound_screen(rng: random.Random, nrng: np.random.Generator, p: ids.Patient) -> tuple[Page, dict]:
    """An ultrasound console: one banner line on top, settings down the side."""
    w, h = rng.choice([(1024, 768), (800, 600), (1280, 960), (1016, 672)])
    img = np.zeros((h, w, 3), np.uint8)
    bar = int(h * rng.uniform(0.045, 0.08))
    cw, ch = int(w * 0.62), int((h - bar) * 0.88)
    cx0, cy0 = int(w * 0.16), bar + int((h - bar - ch) * 0.4)
    img[cy0:cy0 + ch, cx0:cx0 + cw] = us_image(nrng, cw, ch, linear=rng.random() < 0.35)[..., None]
    if rng.random() < 0.35:
        doppler_overlay(img[cy0:cy0 + ch, cx0:cx0 + cw], nrng)
    pg = Page(Image.fromarray(img))
    d = pg.draw
    if rng.random() < 0.5:
        d.rectangle([0, 0, w, bar], fill=rng.choice([(40, 40, 40), (25, 30, 45), (0, 0, 0)]))
    size = max(10, min(22, int(bar * rng.uniform(0.45, 0.62))))
    fnt = font(rng, rng.choice(["sans", "condensed"]), size)
    colour = rng.choice(DARK_COLOURS[:4])
    # The banner: one or two lines mixing identifiers; vendors pack it tightly.
    segs = name_segment(rng, p, 0.2) + [(p.mrn, "id", {"kind": "mrn", "style": p.mrn_style})]
    segs2 = dob_segment(rng, p) + hospital_segment(rng, p)
    segs3 = study_segment(rng, p, 0.0)
    gap = fnt.getlength("    ")
    if rng.random() < 0.5 or w < 900:
        y = 2
        pg.line(6, y, segs, fnt, colour, gap=gap)
        pg.line(w - 6, y, segs3, fnt, colour, anchor="r", gap=gap)
        pg.line(w * 0.38, y + size * 1.15, segs2, fnt, colour, gap=gap)
    else:
        pg.line(6, 3, segs + segs2, fnt, colour, gap=gap)
        pg.line(w - 6, 3, segs3, fnt, colour, anchor="r", gap=gap)
    tf = same_family(fnt, max(10, int(size * rng.uniform(1.0, 1.35))))
    lh = int(tf.size * 1.3)
    na, nb = rng.randint(4, 8), rng.randint(2, 5)
    tech = pick_tech(rng, "US", na + nb)
    y = cy0 + 4
    for t in tech[:na]:
        pg.line(8, y, [(t, "tech")], tf, colour)
        y += lh
    y = cy0 + 4
    for t in tech[na:]:
        pg.line(w - 8, y, [(t, "tech")], tf, colour, anchor="r")
        y += lh
    pg.line(cx0 + cw // 2, cy0 + ch - tf.size - 8, [(rng.choice(REGIONS["US"]), "tech")], tf, (230, 220, 150),
            anchor="c")
    # depth ticks
    for k in range(8):
        yy = cy0 + k * ch / 7
        d.line([cx0 + cw + 8, yy, cx0 + cw + 16, yy], fill=(200, 200, 200), width=2)
    if rng.random() < 0.5:
        pg.line(cx0 + cw + 20, cy0 + ch - tf.size, [(f"{rng.choice([4, 6, 12, 16, 18])} cm", "tech")], tf, colour)
    return pg, {"layout": "ultrasound_screen", "modality": "US", "font_px": size}


def report_light(rng: random.Random, nrng: np.random.Generator, p: ids.Patient) -> tuple[Page, dict]:
    """A radiology report / EHR document page: letterhead, patient table, findings."""
    w, h = rng.choice([(1024, 1100), (900, 1000), (1240, 1000), (1280, 900), (1100, 1300)])
    bg = rng.choice([(255, 255, 255), (250, 250, 246), (246, 248, 252)])
    pg = Page(Image.new("RGB", (w, h), bg))
    d = pg.draw
    serif = rng.random() < 0.4
    size = max(11, min(20, int(w / rng.uniform(60, 80))))
    f = font(rng, "serif" if serif else "sans", size)
    fb = font(rng, "sans_bold", int(size * 1.15))
    fh = font(rng, "sans_bold" if not serif else "serif", int(size * rng.uniform(1.5, 1.9)))
    fg, lab = (20, 20, 25), (90, 95, 105)
    m = int(w * 0.06)
    y = m
    pg.line(m, y, hospital_segment(rng, p), fh, (20, 50, 110))
    y += int(fh.size * 1.5)
    addr = [(ids.label("phone", p.lang, rng), "ctx"), (p.phone, "id", {"kind": "phone"})]
    pg.line(m, y, addr, f, lab)
    y += int(size * 1.8)
    if rng.random() < 0.45:  # a patient barcode in the header, as on printed reports
        arr = barcode_array(p.mrn, "Code128", 2)
        bx = w - m - arr.shape[1]
        if bx > w * 0.5:
            pg.paste_barcode(arr, bx, m - 10, p.mrn, "Code128")
    d.line([m, y, w - m, y], fill=(180, 185, 195), width=2)
    y += int(size * 1.2)
    rows = [name_segment(rng, p, 1.0), dob_segment(rng, p)[:2], id_segment(rng, p, "mrn"),
            id_segment(rng, p, "national"), study_segment(rng, p, 1.0)[:2], accession_segment(rng, p),
            physician_segment(rng, p, 1.0)]
    if rng.random() < 0.5:
        rows.append([(ids.label("address", p.lang, rng), "ctx")] + address_segments(rng, p))
    rows = [r if r[0][1] == "ctx" else [(ids.label("name", p.lang, rng), "ctx")] + r for r in rows]
    table = rng.random() < 0.5
    col = m + int(w * rng.uniform(0.16, 0.24))
    two_col = rng.random() < 0.4 and w > 1000
    half = (len(rows) + 1) // 2
    y_table = y
    for i, segs in enumerate(rows):
        ox = 0
        yy = y
        if two_col and i >= half:
            ox = (w - 2 * m) // 2
            yy = y_table + (i - half) * int(size * 1.9)
        elif two_col:
            yy = y_table + i * int(size * 1.9)
        if table:
            d.rectangle([m + ox, yy - 3, col + ox + (w - 2 * m) // (2 if two_col else 1) - (col - m), yy + size + 5],
                        outline=(210, 214, 220), fill=(244, 246, 250) if i % 2 else None)
        pg.line(m + ox + 4, yy, segs[:1], f, lab)
        pg.line(col + ox, yy, segs[1:], f, fg)
        if not two_col:
            y += int(size * 1.9)
    if two_col:
        y = y_table + half * int(size * 1.9)
    y += int(size * 1.2)
    pg.line(m, y, [(rng.choice(EXAM_TITLES[p.lang]), "clin")], fb, fg)
    y += int(size * 2.2)
    if rng.random() < 0.4:  # key image thumbnail
        th = int(w * 0.22)
        thumb = Image.fromarray(anatomy(nrng, rng.choice(["CT", "US", "MR"]), th, th)).convert("RGB")
        pg.img.paste(thumb, (w - m - th, y))
    for s in rng.sample(FINDINGS[p.lang], min(len(FINDINGS[p.lang]), rng.randint(3, 5))):
        if y > h - 4 * size:
            break
        pg.line(m, y, [(s, "clin")], f, fg)
        y += int(size * 1.6)
    y += size
    if y < h - 2 * size:
        pg.line(m, y, [({"en": "Reported by:", "nl": "Verslag:", "de": "Befundet von:", "fr": "Compte rendu:"}[p.lang],
                        "ctx"), (p.physician, "id", {"kind": "physician_name", "name_source": p.physician_source})],
                f, fg)
        y += int(size * 1.6)
    bottom = max(y + m, min(h, int(h * 0.55)))
    if bottom < h:  # documents end where their text ends
        pg.img = pg.img.crop((0, 0, w, bottom))
        pg.draw = ImageDraw.Draw(pg.img)
    return pg, {"layout": "report_light", "font_px": size}


WORKLIST_HEAD = {"en": ["Patient name", "Patient ID", "DOB", "Study date", "Mod", "Description", "Accession"],
                 "nl": ["Naam", "Patiënt-ID", "Geb.datum", "Datum", "Mod", "Beschrijving", "Accessienr"],
                 "de": ["Name", "Pat.-ID", "Geb.-Datum", "Datum", "Mod", "Beschreibung", "Auftrag"],
                 "fr": ["Nom", "IPP", "DDN", "Date", "Mod", "Description", "N° examen"]}


def worklist(rng: random.Random, nrng: np.random.Generator, p: ids.Patient, size: tuple[int, int] | None = None,
             ui: float = 1.0) -> tuple[Page, dict]:
    """A PACS worklist: a table with one patient per row."""
    w, h = size or rng.choice([(1280, 720), (1366, 768), (1600, 900), (1920, 1080), (1024, 768)])
    dark = rng.random() < 0.5
    bg, fg, head_bg, alt, sel = (((28, 30, 34), (220, 222, 225), (50, 54, 60), (36, 38, 43), (40, 70, 110)) if dark
                                 else ((255, 255, 255), (25, 25, 30), (225, 229, 236), (246, 247, 250),
                                       (200, 220, 245)))
    pg = Page(Image.new("RGB", (w, h), bg))
    d = pg.draw
    size = max(10, min(20, int(w / rng.uniform(85, 115)))) if ui == 1.0 else int(rng.uniform(12, 20) * ui)
    f = font(rng, rng.choice(["sans", "condensed"]), size)
    fb = font(rng, "sans_bold", size)
    m = 16
    top = int(h * 0.08)
    d.rectangle([0, 0, w, top - 8], fill=head_bg)
    title = {"en": ["Worklist", "Study List"], "nl": ["Werklijst"], "de": ["Arbeitsliste", "Studienliste"],
             "fr": ["Liste de travail"]}[p.lang]
    pg.line(m, (top - 8 - size) // 2, [(rng.choice(title), "ctx")], fb, fg)
    cols = WORKLIST_HEAD[p.lang]
    widths = [0.2, 0.12, 0.11, 0.14, 0.06, 0.22, 0.15]
    xs = [m]
    for wd in widths[:-1]:
        xs.append(xs[-1] + int((w - 2 * m) * wd))
    rh = int(size * 2.0)
    y = top
    d.rectangle([0, y - 4, w, y + rh - 4], fill=head_bg)
    for x, c in zip(xs, cols):
        pg.line(x, y, [(c, "ctx")], fb, fg)
    y += rh
    preview = rng.random() < 0.6
    room = (h - y - m - (int(h * 0.3) if preview else 0)) // rh
    nrows = max(3, min(rng.randint(5, 10) if size is None else rng.randint(8, 22), room))
    selected = rng.randrange(nrows)
    for i in range(nrows):
        q = p if i == selected else ids.make_patient(rng, p.site)
        if i == selected:
            d.rectangle([0, y - 4, w, y + rh - 4], fill=sel)
        elif i % 2:
            d.rectangle([0, y - 4, w, y + rh - 4], fill=alt)
        mod = rng.choice(["CT", "MR", "US", "CR", "DX"])
        desc = rng.choice(REGIONS.get(mod, ["CHEST"]) + ["CT ABDOMEN", "MR BRAIN", "US LIVER", "XR CHEST PA"])
        form = rng.choice(["caret", "comma", "comma_upper"])
        cells = [(q.name_form(form), "id", {"kind": "person_name", "name_source": q.name_source, "form": form}),
                 (q.mrn, "id", {"kind": "mrn", "style": q.mrn_style}),
                 (q.date(q.dob, rng), "id", {"kind": "date_of_birth"}),
                 (q.date(q.study, rng), "id", {"kind": "study_date"}),
                 (mod, "tech"), (desc, "tech"), (q.accession, "id", {"kind": "accession"})]
        for x, cell in zip(xs, cells):
            pg.line(x, y, [cell], f, fg)
        pg.identifier_lines.append([0, y - 4, w, rh])
        y += rh
    if preview:  # series preview strip under the list
        y = max(y + m, h - int(h * 0.28))
        d.rectangle([0, y - 6, w, h], fill=head_bg)
        th = int(h * 0.2)
        for k in range(min(8, (w - m) // (th + m))):
            pg.img.paste(nrng_thumb(rng, th), (m + k * (th + m), y))
            pg.line(m + k * (th + m), y + th + 2, [(f"Se {k + 1}", "tech")], f, fg)
    return pg, {"layout": "worklist", "font_px": size, "rows": nrows, "ui_scale": ui}


SCREEN_LAYOUTS = {"viewer_dark": (viewer_dark, 4), "ultrasound_screen": (ultrasound_screen, 2),
                  "report_light": (report_light, 2), "worklist": (worklist, 1)}


def screen(rng: random.Random, nrng: np.random.Generator, layout: str | None = None) -> tuple[Page, dict]:
    names = list(SCREEN_LAYOUTS)
    layout = layout or rng.choices(names, weights=[SCREEN_LAYOUTS[n][1] for n in names])[0]
    p = ids.make_patient(rng)
    pg, meta = SCREEN_LAYOUTS[layout][0](rng, nrng, p)
    meta["site"] = p.site
    meta["lang"] = p.lang
    return pg, meta
