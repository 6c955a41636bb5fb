"""Light-theme EHR screens: a desktop chart with a patient banner, and a phone app."""

from __future__ import annotations

import random

import numpy as np
from PIL import Image

import identifiers as ids
from render import (FINDINGS, Page, font, id_segment, dob_segment, phone_segment, address_segments,
                    physician_segment, hospital_segment, nrng_thumb)

VITALS = ["HR 72 bpm", "BP 128/84 mmHg", "SpO2 97%", "Temp 37.2 °C", "RR 16/min", "GCS 15", "Pain 2/10",
          "Weight 74 kg", "BMI 24.1"]
LABS = ["Hb 13.2 g/dL", "WBC 7.1 x10^9/L", "Plt 245", "CRP <5 mg/L", "Na 139 mmol/L", "K 4.2 mmol/L",
        "Creat 84 umol/L", "eGFR >90", "ALT 22 U/L", "INR 1.0"]
NAV = {"en": ["Summary", "Results", "Notes", "Orders", "Imaging", "Medications", "Letters"],
       "nl": ["Overzicht", "Uitslagen", "Notities", "Orders", "Beeldvorming", "Medicatie", "Brieven"],
       "de": ["Übersicht", "Befunde", "Notizen", "Aufträge", "Bildgebung", "Medikation", "Briefe"],
       "fr": ["Synthèse", "Résultats", "Notes", "Prescriptions", "Imagerie", "Traitements", "Courriers"]}
ALLERGY = {"en": "Allergies: NKDA", "nl": "Allergieën: geen", "de": "Allergien: keine", "fr": "Allergies: aucune"}


def _face_slot(pg: Page, rng: random.Random, x: int, y: int, s: int, with_face: bool):
    """A patient photo in the banner: a synthetic face when asked, else a grey silhouette."""
    if with_face:
        import faces

        img, box = faces.face_tile(rng, s)
        pg.img.paste(img, (x, y))
        pg.identifiers.append({"kind": "face", "text": "", "box": [x + box[0], y + box[1], box[2], box[3]]})
    else:
        pg.draw.rectangle([x, y, x + s, y + s], fill=(205, 210, 218))
        pg.draw.ellipse([x + s * 0.3, y + s * 0.15, x + s * 0.7, y + s * 0.55], fill=(160, 166, 176))
        pg.draw.ellipse([x + s * 0.15, y + s * 0.6, x + s * 0.85, y + s * 1.2], fill=(160, 166, 176))
        pg.draw.rectangle([x, y + s, x + s, y + s + 20], fill=pg.img.getpixel((max(0, x - 2), y)))


def ehr_desktop(rng: random.Random, nrng: np.random.Generator, p: ids.Patient, with_face: bool = False):
    w, h = rng.choice([(1366, 768), (1440, 900), (1920, 1080), (1280, 800), (1600, 900)])
    accent = rng.choice([(0, 94, 184), (38, 110, 90), (120, 40, 110), (40, 60, 90), (200, 90, 20)])
    pg = Page(Image.new("RGB", (w, h), (250, 251, 253)))
    d = pg.draw
    size = max(11, min(18, int(w / rng.uniform(95, 120))))
    f = font(rng, "sans", size)
    fb = font(rng, "sans_bold", int(size * 1.35))
    fs = font(rng, "sans", max(10, size - 2))
    # window title bar and app header
    tb = int(size * 2.0)
    d.rectangle([0, 0, w, tb], fill=(232, 234, 238))
    for i, c in enumerate([(237, 106, 94), (245, 191, 79), (98, 197, 84)]):
        d.ellipse([10 + i * 20, tb / 2 - 6, 22 + i * 20, tb / 2 + 6], fill=c)
    title = {"en": "Patient Chart", "nl": "Dossier", "de": "Patientenakte", "fr": "Dossier patient"}[p.lang]
    pg.line(w / 2, (tb - size) / 2, [(title, "ctx"), ("-", "ctx")] + hospital_segment(rng, p), fs, (60, 60, 60),
            anchor="c")
    # patient banner
    bh = int(size * 6.2)
    y0 = tb
    d.rectangle([0, y0, w, y0 + bh], fill=accent)
    white, pale = (255, 255, 255), (215, 228, 245)
    photo = int(bh * 0.8)
    x = 12
    has_photo = with_face or rng.random() < 0.3
    if has_photo:
        _face_slot(pg, rng, x, y0 + (bh - photo) // 2, photo, with_face)
        x += photo + 14
    name = p.name_form(rng.choice(["comma_upper", "comma", "given_family", "family_given_upper"]))
    pg.line(x, y0 + int(size * 0.6), [(name, "id", {"kind": "person_name", "name_source": p.name_source})], fb, white)
    row2 = dob_segment(rng, p)[:2] + [("(" + str(p.study.year - p.dob.year) + "y)", "ctx")]
    pg.line(x, y0 + int(size * 2.6), row2 + [("", "ctx")] + id_segment(rng, p, "national"), f, pale)
    pg.line(x, y0 + int(size * 4.2), id_segment(rng, p, "mrn") + phone_segment(rng, p), f, pale)
    rx = int(w * 0.62)
    pg.line(rx, y0 + int(size * 1.0), [(ids.label("address", p.lang, rng), "ctx")] + address_segments(rng, p)[:2],
            f, pale)
    pg.line(rx, y0 + int(size * 2.6), physician_segment(rng, p, 1.0), f, pale)
    pg.line(rx, y0 + int(size * 4.2), [(ALLERGY[p.lang], "clin")], f, (255, 220, 150))
    # navigation
    nav_w = int(w * 0.14)
    top = y0 + bh
    d.rectangle([0, top, nav_w, h], fill=(240, 242, 246))
    for i, item in enumerate(NAV[p.lang]):
        yy = top + 14 + i * int(size * 2.3)
        if i == 1:
            d.rectangle([0, yy - 6, nav_w, yy + size + 6], fill=(220, 230, 245))
        pg.line(14, yy, [(item, "ctx")], f, (40, 40, 50))
    # content: vitals and labs as cards, then a note
    x0 = nav_w + 20
    y = top + 16
    cards = rng.sample(VITALS, rng.randint(3, 5))
    cw = int((w - x0 - 20) / len(cards)) - 10
    for i, v in enumerate(cards):
        cx = x0 + i * (cw + 10)
        d.rounded_rectangle([cx, y, cx + cw, y + int(size * 3.2)], 6, fill=(255, 255, 255), outline=(220, 224, 230))
        pg.line(cx + 10, y + int(size * 1.0), [(v, "clin")], f, (30, 30, 30))
    y += int(size * 4.4)
    labs = rng.sample(LABS, rng.randint(4, 8))
    head = {"en": "Latest results", "nl": "Laatste uitslagen", "de": "Letzte Befunde", "fr": "Derniers résultats"}
    pg.line(x0, y, [(head[p.lang], "ctx")], font(rng, "sans_bold", size), (30, 30, 30))
    y += int(size * 1.9)
    for i, lab in enumerate(labs):
        if i % 2:
            d.rectangle([x0, y - 4, w - 20, y + size + 6], fill=(244, 246, 250))
        pg.line(x0 + 8, y, [(lab, "clin")], f, (30, 30, 30))
        y += int(size * 1.8)
    y += size
    note = rng.sample(FINDINGS[p.lang], 2)
    for s in note:
        if y > h - 2 * size:
            break
        pg.line(x0, y, [(s, "clin")], f, (50, 50, 60))
        y += int(size * 1.7)
    if rng.random() < 0.5 and y < h - 200:
        th = min(180, h - y - 20)
        pg.img.paste(nrng_thumb(rng, th), (w - th - 30, top + int(size * 5)))
    return pg, {"layout": "ehr_desktop", "font_px": size, "photo": has_photo}


def ehr_mobile(rng: random.Random, nrng: np.random.Generator, p: ids.Patient, with_face: bool = False):
    scale = rng.choice([2, 3])
    w, h = 390 * scale // 1, 844 * scale // 1
    if scale == 3:  # keep pixels sane: 1170x2532 -> 3/4
        w, h, scale = 878, 1900, 2.25
    pg = Page(Image.new("RGB", (w, h), (255, 255, 255)))
    d = pg.draw
    s = lambda v: int(v * scale)  # noqa: E731
    f = font(rng, "sans", s(15))
    fb = font(rng, "sans_bold", s(20))
    fs = font(rng, "sans", s(12))
    accent = rng.choice([(0, 122, 255), (52, 120, 90), (90, 60, 160)])
    pg.line(s(24), s(14), [(f"{rng.randint(7, 22)}:{rng.randint(0, 59):02d}", "ctx")], font(rng, "sans_bold", s(15)),
            (0, 0, 0))
    d.rounded_rectangle([w - s(50), s(16), w - s(22), s(28)], s(3), outline=(0, 0, 0), width=max(1, s(1)))
    d.rectangle([0, s(50), w, s(100)], fill=(248, 248, 250))
    pg.line(w / 2, s(64), [({"en": "Patient", "nl": "Patiënt", "de": "Patient", "fr": "Patient"}[p.lang], "ctx")],
            font(rng, "sans_bold", s(17)), (0, 0, 0), anchor="c")
    y = s(116)
    x = s(16)
    if with_face or rng.random() < 0.3:
        ph = s(72)
        _face_slot(pg, rng, x, y, ph, with_face)
        x += ph + s(12)
    pg.line(x, y + s(4), [(p.name_form(rng.choice(["given_family", "comma"])), "id",
                            {"kind": "person_name", "name_source": p.name_source})], fb, (0, 0, 0))
    pg.line(x, y + s(34), dob_segment(rng, p)[:2], fs, (90, 90, 95))
    pg.line(x, y + s(54), id_segment(rng, p, rng.choice(["mrn", "national"])), fs, (90, 90, 95))
    y += s(104)
    d.line([0, y, w, y], fill=(225, 225, 230), width=max(1, s(1)))
    y += s(12)
    rows = [[(v, "clin")] for v in rng.sample(VITALS, 3)] + [[(v, "clin")] for v in rng.sample(LABS, 4)]
    rows.insert(rng.randint(0, 3), phone_segment(rng, p))
    rows.insert(rng.randint(0, 5), [(ids.label("ref", p.lang, rng), "ctx"),
                                    (p.physician, "id", {"kind": "physician_name",
                                                         "name_source": p.physician_source})])
    for r in rows:
        pg.line(s(20), y + s(12), r, f, (20, 20, 25))
        y += s(48)
        d.line([s(20), y, w, y], fill=(232, 232, 236), width=max(1, s(1)))
    # tab bar
    d.rectangle([0, h - s(84), w, h], fill=(248, 248, 250))
    for i in range(4):
        cx = w * (i + 0.5) / 4
        d.rounded_rectangle([cx - s(12), h - s(70), cx + s(12), h - s(46)], s(5), fill=accent if i == 0 else
                            (170, 170, 175))
    return pg, {"layout": "ehr_mobile", "font_px": s(15), "photo": with_face}


def screenshot(rng: random.Random, nrng: np.random.Generator, with_face: bool = False):
    p = ids.make_patient(rng)
    fn = ehr_desktop if rng.random() < 0.65 else ehr_mobile
    pg, meta = fn(rng, nrng, p, with_face)
    meta.update(site=p.site, lang=p.lang)
    return pg, meta, p
