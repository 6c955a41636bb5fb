"""Light-theme EHR screens: a desktop chart with a patient banner, and a phone app."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
from PIL import Image

from . import identifiers as ids
from .render import (FINDINGS, Page, font, id_segment, dob_segment, phone_segment, address_segments,
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
        from . import faces

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


# --------------------------------------------------------------------------- a coloured patient banner

BAND_DARK = [(0, 48, 135), (0, 94, 184), (0, 110, 120), (90, 40, 120), (128, 24, 48), (30, 90, 50), (45, 55, 70),
             (190, 75, 15), (20, 20, 24)]
BAND_LIGHT = [(255, 236, 150), (205, 228, 250), (210, 240, 220), (232, 234, 238), (255, 214, 160), (240, 220, 245),
              (250, 250, 250)]
APP = ["Clinical Portal", "ePatient", "EPR", "MedChart", "CareView", "Dossier", "KIS", "DPI"]
MENU = {"en": ["File", "Edit", "View", "Patient", "Tools", "Help"],
        "nl": ["Bestand", "Bewerken", "Beeld", "Patiënt", "Help"],
        "de": ["Datei", "Bearbeiten", "Ansicht", "Patient", "Extras", "Hilfe"],
        "fr": ["Fichier", "Édition", "Affichage", "Patient", "Outils", "Aide"]}
AGE = {"en": "Age:", "nl": "Leeftijd:", "de": "Alter:", "fr": "Âge :"}
LOCATION = {"en": ["Ward 7B, Bed 12", "AMU Bay 3", "ED Majors 14", "ICU Bed 4"],
            "nl": ["Afd. Longziekten, kamer 12", "SEH box 3", "IC bed 4"],
            "de": ["Station 4B, Zimmer 12", "ZNA Box 3", "Intensiv Bett 4"],
            "fr": ["Pneumologie, chambre 12", "Urgences box 3", "Réa lit 4"]}
ALLERGY_CHIP = {"en": ["ALLERGY: Penicillin", "Allergy: Latex", "NKDA"],
                "nl": ["ALLERGIE: penicilline", "Geen allergieën"],
                "de": ["ALLERGIE: Penicillin", "Keine Allergien"], "fr": ["ALLERGIE : pénicilline", "Pas d'allergie"]}
TABS = {"en": ["Summary", "Results", "Notes", "Imaging", "Orders", "Meds"],
        "nl": ["Overzicht", "Uitslagen", "Decursus", "Beelden", "Orders", "Medicatie"],
        "de": ["Übersicht", "Befunde", "Verlauf", "Bildgebung", "Anordnungen", "Medikation"],
        "fr": ["Synthèse", "Résultats", "Observations", "Imagerie", "Prescriptions", "Traitements"]}
NOTE_HEAD = {"en": "Progress note", "nl": "Decursus", "de": "Verlaufsnotiz", "fr": "Observation médicale"}
RESULTS_HEAD = {"en": ["Test", "Result", "Units", "Ref"], "nl": ["Bepaling", "Uitslag", "Eenheid", "Ref"],
                "de": ["Parameter", "Wert", "Einheit", "Norm"], "fr": ["Examen", "Résultat", "Unité", "Norme"]}
RESULT_ROWS = [("Hb", "132", "g/L", "120-160"), ("WBC", "7.2", "10^9/L", "4.0-11.0"),
               ("Plt", "245", "10^9/L", "150-400"), ("Na", "139", "mmol/L", "135-145"),
               ("K", "4.2", "mmol/L", "3.5-5.0"), ("Creat", "84", "umol/L", "60-110"),
               ("CRP", "12", "mg/L", "<5"), ("ALT", "22", "U/L", "<40"), ("INR", "1.0", "", "0.8-1.2"),
               ("Trop T", "9", "ng/L", "<14"), ("eGFR", "88", "mL/min", ">60"), ("Lactate", "1.1", "mmol/L", "<2.0")]


def _band_fields(rng, p: ids.Patient) -> list[tuple[str, tuple]]:
    """(label, identifier segment) pairs for the banner, in a vendor's order."""
    out = [(ids.label("dob", p.lang, rng).rstrip(":").strip(), (p.date(p.dob, rng), "id", {"kind": "date_of_birth"})),
           (ids.label("mrn", p.lang, rng).rstrip(":").strip(), (p.mrn, "id", {"kind": "mrn", "style": p.mrn_style}))]
    if rng.random() < 0.75:
        out.append((ids.NATIONAL_LABELS[p.national_kind][0].rstrip(":"),
                    (p.national_formatted(rng), "id", {"kind": "national_id", "scheme": p.national_kind})))
    if rng.random() < 0.2:
        out.append((ids.label("phone", p.lang, rng).rstrip(":").strip(), (p.phone, "id", {"kind": "phone"})))
    return out


def ehr_banner(rng: random.Random, nrng: np.random.Generator, p: ids.Patient, size: tuple[int, int] | None = None,
               ui: float = 1.0):
    """An EHR window whose patient banner is a coloured bar: name, DOB, numbers across it."""
    from .render import same_family, styled
    from . import prose
    from . import letters

    w, h = size or rng.choice([(1280, 720), (1366, 768), (1440, 900), (1600, 900), (1920, 1080), (1920, 1200),
                               (2560, 1440)])
    dark = rng.random() < 0.65
    band = rng.choice(BAND_DARK if dark else BAND_LIGHT)
    txt = (rng.choice([(255, 255, 255), (240, 244, 250)]) if dark
           else rng.choice([(0, 0, 0), (20, 30, 60), (40, 40, 40)]))
    sub = tuple(int(c * 0.8 + (b * 0.2)) for c, b in zip(txt, band))
    page_bg = rng.choice([(255, 255, 255), (246, 247, 249), (238, 240, 243)])
    pg = Page(Image.new("RGB", (w, h), page_bg))
    d = pg.draw
    size_px = int(max(12, min(20, w / rng.uniform(90, 120))) * ui)
    kind = rng.choice(["sans", "sans", "condensed", "sans_bold"])
    f = font(rng, "sans" if kind == "sans_bold" else kind, size_px)
    fb = styled(f, "bold", int(size_px * rng.uniform(1.15, 1.6)))
    # window chrome: menu bar and toolbar (no identifiers)
    mh = int(size_px * 1.9)
    d.rectangle([0, 0, w, mh], fill=rng.choice([(236, 236, 236), (50, 54, 60), (225, 230, 238)]))
    chrome_fg = (30, 30, 30) if d.im.getpixel((2, 2))[0] > 128 else (230, 230, 230)
    x = size_px
    for item in [rng.choice(APP)] + MENU[p.lang]:
        pg.line(x, (mh - size_px) // 2, [(item, "ctx")], f, chrome_fg)
        x += f.getlength(item) + size_px * 1.6
    y = mh
    th = int(size_px * 2.4)
    d.rectangle([0, y, w, y + th], fill=(246, 246, 248) if page_bg != (246, 246, 248) else (236, 238, 241))
    for i in range(rng.randint(8, 16)):
        ix = size_px + i * int(th * 1.1)
        d.rounded_rectangle([ix, y + th * 0.2, ix + th * 0.6, y + th * 0.8], 3, fill=(170, 178, 190))
    y += th
    # the banner
    style = rng.choice(["single", "double", "fields"])
    name_form = rng.choice(["comma_upper", "comma", "given_family", "family_given_upper", "caret"])
    name = (p.name_form(name_form), "id", {"kind": "person_name", "name_source": p.name_source, "form": name_form})
    fields = _band_fields(rng, p)
    age = p.study.year - p.dob.year
    sep = rng.choice(["  |  ", "   ", "  •  ", "    "])
    bx = size_px
    photo = rng.random() < 0.3
    if style == "single":
        bh = int(fb.size * rng.uniform(1.8, 2.4))
        d.rectangle([0, y, w, y + bh], fill=band)
        if photo:
            _face_slot(pg, rng, bx, y + 3, bh - 6, False)
            bx += bh + size_px // 2
        segs = [name]
        for lab, seg in fields:
            segs += [(sep.strip() or " ", "ctx") if sep.strip() else None, (lab + ":", "ctx"), seg]
        segs += [(f"({age}y)" if p.lang == "en" else f"{age} J." if p.lang == "de" else f"{age} a", "ctx"),
                 (rng.choice(["M", "F"]), "ctx")]
        segs = [s for s in segs if s]
        # name in bold, the rest in the regular face: two calls on one baseline
        ny = y + (bh - fb.size) // 2
        nb = pg.line(bx, ny, [name], fb, txt)
        rest = segs[1:]
        rx = bx + nb[2] + size_px * 1.5
        ry = y + (bh - f.size) // 2
        fits = pg.width_of(rest, f, f.getlength("  ")) < w - rx - size_px
        if fits:
            pg.line(rx, ry, rest, f, sub)
        else:  # too long for one line: the band grows a second row
            d.rectangle([0, y + bh, w, y + bh + int(f.size * 1.8)], fill=band)
            pg.line(bx, y + bh + int(f.size * 0.3), rest, f, sub)
            bh += int(f.size * 1.8)
        y += bh
    elif style == "double":
        bh = int(fb.size * 1.6 + f.size * 2.4)
        d.rectangle([0, y, w, y + bh], fill=band)
        if photo:
            _face_slot(pg, rng, bx, y + 4, bh - 8, False)
            bx += bh + size_px // 2
        pg.line(bx, y + int(fb.size * 0.3), [name], fb, txt)
        segs = []
        for lab, seg in fields:
            segs += [(lab + ":", "ctx"), seg]
        segs += [(AGE[p.lang], "ctx"), (str(age), "ctx")]
        pg.line(bx, y + int(fb.size * 1.6), segs, f, sub, gap=f.getlength("   "))
        rx = w - size_px
        chip = rng.choice(ALLERGY_CHIP[p.lang])
        cw = f.getlength(chip) + size_px
        d.rounded_rectangle([rx - cw, y + 6, rx, y + 6 + f.size * 1.6], 4,
                            fill=(200, 30, 40) if "NKDA" not in chip and "Geen" not in chip else (90, 150, 90))
        pg.line(rx - size_px / 2, y + 6 + f.size * 0.3, [(chip, "clin")], f, (255, 255, 255), anchor="r")
        pg.line(rx, y + int(fb.size * 1.6), [(rng.choice(LOCATION[p.lang]), "ctx")], f, sub, anchor="r")
        y += bh
    else:  # label above value, in columns
        lab_f = same_family(f, max(10, int(size_px * 0.8)))
        bh = int(fb.size * 1.5 + f.size * 0.4 + lab_f.size * 1.3)
        d.rectangle([0, y, w, y + bh], fill=band)
        if photo:
            _face_slot(pg, rng, bx, y + 3, bh - 6, False)
            bx += bh + size_px // 2
        nb = pg.line(bx, y + (bh - fb.size) // 2, [name], fb, txt)
        cx = bx + nb[2] + size_px * 2.5
        for lab, seg in fields + [(AGE[p.lang].rstrip(": "), (str(age), "ctx"))]:
            colw = max(lab_f.getlength(lab), f.getlength(seg[0])) + size_px * 2
            if cx + colw > w:
                break
            pg.line(cx, y + int(bh * 0.12), [(lab, "ctx")], lab_f, sub)
            pg.line(cx, y + int(bh * 0.12) + int(lab_f.size * 1.3), [seg], styled(f, "bold", size_px), txt)
            cx += colw
        y += bh
    if rng.random() < 0.4:  # an alert stripe under the banner
        d.rectangle([0, y, w, y + max(3, size_px // 3)],
                    fill=rng.choice([(220, 40, 40), (250, 190, 0), (120, 60, 180)]))
        y += max(3, size_px // 3)
    # tabs
    tab_h = int(size_px * 2.2)
    d.rectangle([0, y, w, y + tab_h], fill=(250, 250, 252) if page_bg != (250, 250, 252) else (240, 240, 244))
    x = size_px
    sel = rng.randrange(len(TABS[p.lang]))
    for i, t in enumerate(TABS[p.lang]):
        tw = f.getlength(t) + size_px * 2
        if i == sel:
            d.rectangle([x - size_px * 0.6, y + tab_h - 4, x + tw - size_px * 1.4, y + tab_h], fill=band)
        pg.line(x, y + (tab_h - size_px) // 2, [(t, "ctx")], f, (40, 40, 50))
        x += tw
    y += tab_h + size_px
    # content: a results table on the left, a progress note naming the patient on the right
    m = size_px
    split = int(w * rng.uniform(0.42, 0.55))
    heads = RESULTS_HEAD[p.lang]
    cols = [m, m + (split - 2 * m) * 0.3, m + (split - 2 * m) * 0.5, m + (split - 2 * m) * 0.75]
    fbh = styled(f, "bold", size_px)
    for cxx, hd in zip(cols, heads):
        pg.line(cxx, y, [(hd, "ctx")], fbh, (60, 60, 70))
    y0 = y
    y += int(size_px * 1.8)
    d.line([m, y - size_px * 0.4, split - m, y - size_px * 0.4], fill=(200, 204, 210), width=1)
    for i, row in enumerate(rng.sample(RESULT_ROWS, rng.randint(5, min(12, len(RESULT_ROWS))))):
        if y > h - size_px * 3:
            break
        if i % 2:
            d.rectangle([m - 4, y - 4, split - m, y + size_px + 5], fill=tuple(max(0, c - 8) for c in page_bg))
        for cxx, cell in zip(cols, row):
            if cell:
                pg.line(cxx, y, [(cell, "clin")], f, (25, 25, 30))
        y += int(size_px * 1.7)
    y += size_px
    y = _imaging_list(pg, rng, p, m, split - m, y, h, f, fbh, page_bg)
    nx = split + m
    y = y0
    pg.line(nx, y, [(NOTE_HEAD[p.lang], "ctx"), (p.date(p.study, rng), "id", {"kind": "study_date"}),
                    (p.study.strftime("%H:%M"), "ctx")], fbh, (40, 40, 50))
    y += int(size_px * 2)
    sl = letters._slots(rng, p)
    for t in rng.sample(letters.BODY[p.lang], 3):
        if y > h - size_px * 4:
            break
        y = prose.flow(pg, nx, y, w - nx - m, prose.segments(t, sl), f, (30, 30, 35), int(size_px * 1.45))
        y += size_px // 2
    if y < h - size_px * 3:
        pg.line(nx, y + size_px // 2, [(p.physician, "id", {"kind": "physician_name",
                                                             "name_source": p.physician_source})], f, (60, 60, 70))
        y += size_px * 3
    _vitals_chart(pg, rng, nx, w - m, y, h - m, f)
    return pg, {"layout": f"ehr_banner_{style}", "font_px": size_px, "band": "dark" if dark else "light",
                "ui_scale": ui}


def banner_screen(rng: random.Random, nrng: np.random.Generator, size=None, ui: float = 1.0, p=None):
    p = p or ids.make_patient(rng)
    pg, meta = ehr_banner(rng, nrng, p, size, ui)
    meta.update(site=p.site, lang=p.lang)
    return pg, meta, p


IMAGING_HEAD = {"en": "Imaging", "nl": "Beeldvorming", "de": "Bildgebung", "fr": "Imagerie"}
STUDIES = ["XR CHEST PA", "CT THORAX C+", "US ABDOMEN", "MR BRAIN", "CT HEAD", "XR KNEE L", "CTPA", "US DOPPLER LEG"]
STATUS = {"en": ["Reported", "Verified", "Pending"], "nl": ["Verslagen", "Geautoriseerd"],
          "de": ["Befundet", "Freigegeben"], "fr": ["Interprété", "Validé"]}


def _imaging_list(pg: Page, rng, p: ids.Patient, x0, x1, y, h, f, fb, bg) -> float:
    """Imaging studies: date and accession (identifiers), description (technical), status."""
    if y > h - f.size * 6:
        return y
    pg.line(x0, y, [(IMAGING_HEAD[p.lang], "ctx")], fb, (40, 40, 50))
    y += int(f.size * 1.9)
    cols = [x0, x0 + (x1 - x0) * 0.28, x0 + (x1 - x0) * 0.62, x0 + (x1 - x0) * 0.85]
    for i in range(rng.randint(2, 5)):
        if y > h - f.size * 2.5:
            break
        when = p.study - dt.timedelta(days=rng.randint(0, 900))
        acc = "".join(str(rng.randint(0, 9)) if c.isdigit() else c for c in p.accession) if i else p.accession
        cells = [(p.date(when, rng), "id", {"kind": "study_date"}), (rng.choice(STUDIES), "tech"),
                 (acc, "id", {"kind": "accession"}), (rng.choice(STATUS[p.lang]), "ctx")]
        for cx, cell in zip(cols, cells):
            pg.line(cx, y, [cell], f, (25, 25, 30))
        y += int(f.size * 1.7)
    return y


def _vitals_chart(pg: Page, rng, x0, x1, y0, y1, f) -> None:
    """A small observations chart: axes, tick labels (technical), two traces."""
    if y1 - y0 < f.size * 8 or x1 - x0 < f.size * 15:
        return
    d = pg.draw
    lx = x0 + f.getlength("200") + 8
    d.rectangle([lx, y0, x1, y1 - f.size * 2], outline=(180, 184, 190))
    top, bot = y0, y1 - f.size * 2
    for k, v in enumerate([200, 150, 100, 50]):
        yy = top + (bot - top) * k / 4
        d.line([lx, yy, x1, yy], fill=(225, 228, 232))
        pg.line(x0, yy - f.size / 2, [(str(v), "tech")], f, (90, 90, 100))
    n = rng.randint(8, 16)
    for colour, base in [((200, 40, 40), rng.uniform(70, 110)), ((30, 90, 200), rng.uniform(110, 150))]:
        vals = base + np.cumsum(np.array([rng.uniform(-8, 8) for _ in range(n)]))
        pts = [(lx + (x1 - lx) * (i + 0.5) / n, bot - (bot - top) * (v / 250)) for i, v in enumerate(vals)]
        d.line(pts, fill=colour, width=2)
        for px, py in pts:
            d.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
    for i in range(0, n, max(1, n // 5)):
        pg.line(lx + (x1 - lx) * (i + 0.5) / n, bot + 4, [(f"{(6 + i * 2) % 24:02d}:00", "ctx")], f,
                (90, 90, 100), anchor="c")
