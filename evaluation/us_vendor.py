"""Vendor ultrasound screens: yellow or green type on black, the patient on the same line as the settings.

Consoles pack the title bar: "SMITH^JANE   C5-1  12Hz  Gen  MI 0.9" -- a name, then probe,
frame rate, preset and index values, on one line in one font. A sanitiser that blacks out
the whole line loses the technical values, which the scorer counts, so this family tells
a line-level redaction from a word-level one. Several vendor arrangements, fonts drawn
with or without anti-aliasing, some photographed off the console's monitor.
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image

from . import identifiers as ids
from .render import Page, doppler_overlay, font, same_family, us_image

YELLOW = [(255, 255, 0), (240, 220, 40), (255, 204, 0), (230, 230, 90)]
GREEN = [(0, 255, 0), (80, 230, 80), (0, 210, 120), (150, 255, 150)]
PROBES = ["C5-1", "C1-6", "L12-5", "L15-7io", "S5-1", "C9-2", "L4-12t", "4C-RS", "9L-D", "C2-9", "EV9-4"]
PRESETS = ["Gen", "Abd", "Abdomen", "Renal", "Thyroid", "OB", "Vasc", "MSK", "Liver", "Cardiac", "Carotid"]


def _tech(rng: random.Random) -> list[str]:
    pool = [f"{rng.choice([8, 12, 15, 18, 24, 30, 41])}Hz", f"MI {rng.uniform(0.2, 1.4):.1f}",
            f"TIS {rng.uniform(0.1, 1.2):.1f}", f"TIB {rng.uniform(0.1, 1.0):.1f}", rng.choice(PRESETS),
            f"{rng.choice([3.5, 5.0, 6.0, 7.5, 10.0, 12.0])} MHz", f"{rng.randint(-6, 0)}dB",
            f"FR {rng.randint(10, 60)}", f"D {rng.randint(4, 24)}cm", f"G{rng.randint(30, 80)}",
            f"DR{rng.choice([45, 60, 66, 72])}", "THI", "HPRF", f"P {rng.randint(40, 100)}%"]
    return rng.sample(pool, len(pool))


def _left_params(rng: random.Random) -> list[str]:
    return rng.sample(["2D", "B", f"Frq {rng.choice(['Gen', 'Res', 'Pen', 'H4.0', 'H5.0'])}",
                       f"Gn {rng.randint(30, 80)}", f"D {rng.randint(4, 24)}.{rng.randint(0, 9)}cm",
                       f"DR {rng.choice([60, 66, 72])}", f"FA {rng.randint(1, 6)}", f"P {rng.randint(60, 100)}%",
                       f"E/A {rng.randint(1, 4)}/{rng.randint(1, 4)}", "SRI II 2", "CRI 3",
                       f"AO {rng.randint(50, 100)}%",
                       f"Map {rng.choice('ABCDEFG')}/{rng.randint(0, 4)}", "Persist Med", f"Fr {rng.randint(15, 45)}Hz",
                       "CF", f"WF {rng.randint(50, 300)}Hz", f"PRF {rng.uniform(1, 6):.1f}kHz"], rng.randint(6, 11))


def vendor_screen(rng: random.Random, nrng: np.random.Generator, p: ids.Patient) -> tuple[Page, dict]:
    w, h = rng.choice([(1024, 768), (800, 600), (1280, 1024), (1920, 1080), (640, 480), (1280, 720)])
    colour = rng.choice(YELLOW if rng.random() < 0.55 else GREEN)
    palette = "yellow" if colour in YELLOW else "green"
    second = rng.choice([colour, (230, 230, 230), (120, 220, 255)]) if rng.random() < 0.5 else colour
    img = np.zeros((h, w, 3), np.uint8)
    size = int(max(11, min(26, h / rng.uniform(28, 42))))
    top = int(size * rng.uniform(2.6, 3.4))
    cw, ch = int(w * rng.uniform(0.55, 0.68)), int((h - top) * rng.uniform(0.78, 0.9))
    cx0, cy0 = int(w * rng.uniform(0.17, 0.25)), top + int((h - top - ch) * 0.3)
    img[cy0:cy0 + ch, cx0:cx0 + cw] = us_image(nrng, cw, ch, linear=rng.random() < 0.35)[..., None]
    if rng.random() < 0.3:
        doppler_overlay(img[cy0:cy0 + ch, cx0:cx0 + cw], nrng)
    pg = Page(Image.fromarray(img))
    d = pg.draw
    aliased = rng.random() < 0.5
    if aliased:
        d.fontmode = "1"
    f = font(rng, rng.choice(["mono", "mono", "condensed", "sans", "mono_bold"]), size)
    gap = f.getlength(" " * rng.randint(2, 5))
    form = rng.choice(["caret", "caret", "comma_upper", "family_given_upper", "comma_upper_nospace", "caret_mixed"])
    name = (p.name_form(form), "id", {"kind": "person_name", "name_source": p.name_source, "form": form,
                                     "same_line_as_technical": True})
    mrn = (p.mrn, "id", {"kind": "mrn", "style": p.mrn_style})
    dob = (p.date(p.dob, rng), "id", {"kind": "date_of_birth"})
    sdate = (p.date(p.study, rng), "id", {"kind": "study_date"})
    clock = (p.study.strftime(rng.choice(["%H:%M:%S", "%H:%M", "%I:%M %p"])), "ctx")
    tech = _tech(rng)
    probe = (rng.choice(PROBES), "tech")
    y1, y2 = int(size * 0.35), int(size * 0.35) + int(size * 1.25)
    arrangement = rng.choice(["name_first", "institution_first", "split"])
    if arrangement == "name_first":
        # "SMITH^JANE   C5-1  12Hz  Gen  MI 0.9"
        pg.line(size // 2, y1, [name, probe] + [(t, "tech") for t in tech[:4]], f, colour, gap=gap)
        segs2 = [(ids.label("mrn", p.lang, rng), "ctx"), mrn, sdate, clock] + [(t, "tech") for t in tech[4:6]]
        pg.line(size // 2, y2, segs2, f, second, gap=gap)
    elif arrangement == "institution_first":
        # "ST MARY'S HOSPITAL  SMITH^JANE  DOB 12/03/1961     MI 0.9  TIS 0.4"  with a second line of settings
        inst = (p.hospital.upper() if rng.random() < 0.5 else p.hospital, "id", {"kind": "institution"})
        pg.line(size // 2, y1, [inst, name, (ids.label("dob", p.lang, rng), "ctx"), dob], f, colour, gap=gap)
        pg.line(w - size // 2, y1, [(t, "tech") for t in tech[:2]], f, colour, anchor="r", gap=gap)
        pg.line(size // 2, y2, [mrn, probe] + [(t, "tech") for t in tech[2:5]] + [sdate, clock], f, second, gap=gap)
    else:
        # name and settings share the left line; the date and institution sit on the right of it
        pg.line(size // 2, y1, [name, dob, probe, (tech[0], "tech"), (tech[1], "tech")], f, colour, gap=gap)
        pg.line(w - size // 2, y1, [sdate, clock], f, colour, anchor="r", gap=gap)
        pg.line(size // 2, y2, [mrn] + [(t, "tech") for t in tech[2:5]], f, second, gap=gap)
        pg.line(w - size // 2, y2, [(p.hospital, "id", {"kind": "institution"})], f, second, anchor="r", gap=gap)
    # settings column on the left, measurements bottom right, body mark and depth scale
    lf = same_family(f, max(10, int(size * rng.uniform(0.85, 1.05))))
    yy = cy0
    for t in _left_params(rng):
        if yy > h - lf.size * 2:
            break
        pg.line(size // 2, yy, [(t, "tech")], lf, colour)
        yy += int(lf.size * 1.35)
    if rng.random() < 0.7:
        meas = [f"Dist {rng.uniform(0.5, 9.9):.2f} cm", f"Vol {rng.uniform(1, 80):.1f} ml",
                f"Area {rng.uniform(0.5, 20):.2f} cm2", f"RI {rng.uniform(0.5, 0.8):.2f}",
                f"PSV {rng.uniform(20, 140):.1f} cm/s"]
        yy = h - int(lf.size * 1.4) * 3 - size
        for t in rng.sample(meas, 3):
            pg.line(w - size // 2, yy, [(t, "tech")], lf, second, anchor="r")
            yy += int(lf.size * 1.4)
    step = rng.choice([2, 3, 4])
    for k in range(6):  # depth ticks and numbers
        ty = cy0 + k * (ch - lf.size) / 5
        d.line([cx0 + cw + 6, ty, cx0 + cw + 14, ty], fill=colour, width=2)
        if rng.random() < 0.8:
            pg.line(cx0 + cw + 18, ty - lf.size / 2, [(str(k * step), "tech")], lf, colour)
    bx, by = cx0 - lf.size * 5, h - lf.size * 7
    if bx > 0:
        d.rectangle([bx, by, bx + lf.size * 3.5, by + lf.size * 3.5], outline=colour, width=1)
        d.line([bx + lf.size * 0.8, by + lf.size * 2.6, bx + lf.size * 2.8, by + lf.size * 0.9], fill=colour, width=3)
    pg.line(cx0 + cw // 2, cy0 + ch + 4 if cy0 + ch + lf.size * 1.5 < h else cy0 + ch - lf.size * 1.5,
            [(rng.choice(["LIVER", "Liver", "RT KIDNEY", "Thyroid L", "GB", "CBD", "AORTA"]), "tech")], lf, colour,
            anchor="c")
    return pg, {"layout": f"us_vendor_{arrangement}", "palette": palette, "font_px": size, "aliased": aliased,
                "modality": "US"}


def screen(rng: random.Random, nrng: np.random.Generator, p: ids.Patient | None = None):
    p = p or ids.make_patient(rng)
    pg, meta = vendor_screen(rng, nrng, p)
    meta.update(site=p.site, lang=p.lang)
    return pg, meta, p
