"""Printed patient labels, photographed: specimen tube labels, addressograph stickers on a request
form, and sheets of stickers, on curved paper or round a tube.

The label text is what printers put there: name, DOB, hospital number or national number,
address, a Code 128 (hospital number or lab number); specimen labels add the sample type,
tube and collection time. Boxes go through paper.py's point functions.
"""

from __future__ import annotations

import random

import cv2
import numpy as np
from PIL import Image, ImageDraw

from . import identifiers as ids
from . import paper
from . import prose
from .render import Page, barcode_array, font, same_family, styled

INKS = [(10, 10, 12), (25, 25, 30), (20, 20, 60), (40, 40, 40)]
STOCKS = [(252, 252, 250), (255, 255, 255), (250, 246, 232), (255, 250, 205), (246, 250, 255)]

SPECIMENS = [("FBC", "EDTA 4 mL"), ("U&E", "SST 5 mL"), ("CRP", "SST 5 mL"), ("Coag", "Citrate 2.7 mL"),
             ("Glucose", "Fluoride 2 mL"), ("Group & Save", "EDTA 6 mL"), ("HbA1c", "EDTA 2 mL"),
             ("LFT", "Li-Hep 4 mL"), ("Troponin", "Li-Hep 4 mL"), ("Blood culture", "Aerobic")]
WARD = {"en": "Ward", "nl": "Afd.", "de": "Stat.", "fr": "Serv."}
COLL = {"en": ["Coll:", "Collected:"], "nl": ["Afname:"], "de": ["Entn.:", "Abnahme:"], "fr": ["Prél.:", "Prélevé:"]}
LABNO = {"en": ["Lab No:", "Spec No:"], "nl": ["Labnr:"], "de": ["Labor-Nr.:", "Auftrag:"], "fr": ["N° labo:"]}


def _name(rng, p: ids.Patient):
    form = rng.choice(["comma_upper", "comma_upper", "comma", "family_given_upper", "caret"])
    return (p.name_form(form), "id", {"kind": "person_name", "name_source": p.name_source, "form": form})


def _code(pg: Page, rng, content: str, x: int, y: int, w: int, h: int) -> bool:
    """A Code 128 of `content` fitted into (x, y, w, h) when its modules stay >= 2 px; else nothing."""
    for module in (4, 3, 2):
        arr = barcode_array(content, "Code128", module)
        if arr.shape[1] <= w:
            arr = cv2.resize(arr, (arr.shape[1], max(20, h)), interpolation=cv2.INTER_NEAREST)
            pg.paste_barcode(arr, x + (w - arr.shape[1]) // 2 if rng.random() < 0.5 else x, y, content, "Code128")
            return True
    return False


def specimen_label(rng: random.Random, p: ids.Patient) -> Page:
    """A lab label as printed at the bedside: about 50 x 25 mm at 16-18 px/mm."""
    W = rng.randint(780, 920)
    H = int(W * rng.uniform(0.44, 0.52))
    pg = Page(Image.new("RGB", (W, H), rng.choice(STOCKS[:3])))
    d = pg.draw
    ink = rng.choice(INKS)
    if rng.random() < 0.4:  # a coloured stripe along one edge, as some label stocks have
        d.rectangle([0, 0, int(W * 0.025), H], fill=rng.choice([(200, 40, 40), (40, 90, 200), (240, 180, 20)]))
    size = int(H * rng.uniform(0.085, 0.105))
    f = font(rng, rng.choice(["sans", "condensed", "mono", "sans"]), size)
    fb = styled(f, "bold", int(size * 1.18))
    m = int(W * 0.05)
    lh = int(size * 1.3)
    y = int(H * 0.05)
    pg.line(m, y, [_name(rng, p)], fb, ink)
    y += int(fb.size * 1.3)
    segs = [(ids.label("dob", p.lang, rng), "ctx"), (p.date(p.dob, rng), "id", {"kind": "date_of_birth"}),
            (rng.choice(["M", "F"]), "ctx")]
    pg.line(m, y, segs, f, ink)
    y += lh
    which = rng.choice(["mrn", "mrn", "national", "both"])
    if which in ("mrn", "both"):
        pg.line(m, y, [(ids.label("mrn", p.lang, rng), "ctx"), (p.mrn, "id", {"kind": "mrn", "style": p.mrn_style})],
                f, ink)
        y += lh
    if which in ("national", "both"):
        pg.line(m, y, [(ids.NATIONAL_LABELS[p.national_kind][0], "ctx"),
                       (p.national_formatted(rng), "id", {"kind": "national_id", "scheme": p.national_kind})], f, ink)
        y += lh
    test, tube = rng.choice(SPECIMENS)
    coll = [(rng.choice(COLL[p.lang]), "ctx"), (p.date(p.study, rng), "id", {"kind": "study_date"}),
            (p.study.strftime("%H:%M"), "ctx")]
    pg.line(m, y, coll, f, ink)
    y += lh
    pg.line(m, y, [(test, "tech"), (tube, "tech"), (f"{WARD[p.lang]} {rng.choice(['7B', '4', 'A3', 'ICU', '12'])}",
                                                       "ctx")], f, ink)
    y += lh
    bh = H - y - int(H * 0.05)
    if bh >= int(H * 0.12):
        lab = [(rng.choice(LABNO[p.lang]), "ctx"), (p.accession, "id", {"kind": "accession"})]
        small = same_family(f, max(12, int(size * 0.8)))
        if rng.random() < 0.6:
            _code(pg, rng, p.accession, m, y, int(W * 0.55), bh)
            pg.line(m + int(W * 0.58), y + bh // 3, lab, small, ink)
        else:
            pg.line(m, y + 2, lab, small, ink)
    return pg


def addressograph(rng: random.Random, p: ids.Patient, W: int | None = None, barcode: bool | None = None) -> Page:
    """A patient identification sticker: name, DOB, numbers, address, often a barcode."""
    W = W or rng.randint(700, 920)
    H = int(W * rng.uniform(0.4, 0.52))
    pg = Page(Image.new("RGB", (W, H), rng.choice(STOCKS)))
    ink = rng.choice(INKS)
    size = max(11, int(H * rng.uniform(0.1, 0.125)))
    f = font(rng, rng.choice(["mono", "sans", "condensed", "mono"]), size)
    fb = styled(f, "bold", size + 2) if rng.random() < 0.7 else f
    m = int(W * 0.045)
    lh = int(size * 1.28)
    y = int(H * 0.06)
    right = rng.random() < 0.55 and W >= 500  # numbers in a right-hand column
    pg.line(m, y, [_name(rng, p)] + ([(rng.choice(["Mrs", "Mr", "Ms"]), "ctx")] if p.lang == "en" and
                                     rng.random() < 0.3 else []), fb, ink)
    nums = [[(ids.label("mrn", p.lang, rng), "ctx"), (p.mrn, "id", {"kind": "mrn", "style": p.mrn_style})],
            [(ids.label("dob", p.lang, rng), "ctx"), (p.date(p.dob, rng), "id", {"kind": "date_of_birth"}),
             (rng.choice(["M", "F", "(M)", "(F)"]), "ctx")],
            [(ids.NATIONAL_LABELS[p.national_kind][0], "ctx"),
             (p.national_formatted(rng), "id", {"kind": "national_id", "scheme": p.national_kind})]]
    if rng.random() < 0.3:
        nums.pop(2)
    addr = [[(p.street, "id", {"kind": "address"})],
            [(p.city, "ctx"), (p.postcode, "id", {"kind": "postcode"})] if p.site == "uk" else
            [(p.postcode, "id", {"kind": "postcode"}), (p.city, "ctx")]]
    if rng.random() < 0.25:
        addr.append([(ids.label("phone", p.lang, rng), "ctx"), (p.phone, "id", {"kind": "phone"})])
    y += int(fb.size * 1.35)
    if right:
        yl = yr = y
        for segs in addr:
            pg.line(m, yl, segs, f, ink)
            yl += lh
        for segs in nums:
            pg.line(W - m, yr, segs, f, ink, anchor="r")
            yr += lh
        y = max(yl, yr)
    else:
        for segs in nums + addr:
            if y + lh > H * 0.97:
                break
            pg.line(m, y, segs, f, ink)
            y += lh
    if barcode is None:
        barcode = rng.random() < 0.6
    bh = H - y - int(H * 0.06)
    if barcode and bh >= max(20, int(H * 0.12)):
        _code(pg, rng, p.mrn, m, y + 2, W - 2 * m, bh)
    return pg


# --------------------------------------------------------------------------- a request form

FORM_TITLE = {"en": ["PATHOLOGY REQUEST", "Blood Sciences Request Form", "Radiology Request"],
              "nl": ["Aanvraagformulier laboratorium", "Aanvraag radiologie"],
              "de": ["Anforderungsschein Labor", "Röntgenanforderung"],
              "fr": ["Demande d'examens biologiques", "Demande d'imagerie"]}
FORM_FIELDS = {
    "en": {"label": "Affix patient label here", "clinical": "Clinical details:", "tests": "Tests requested:",
           "requester": "Requesting clinician:", "bleep": "Bleep", "collected": "Date/time collected:",
           "sign": "Signature:", "urgent": "Urgent", "routine": "Routine"},
    "nl": {"label": "Patiëntsticker", "clinical": "Klinische gegevens:", "tests": "Gevraagde bepalingen:",
           "requester": "Aanvrager:", "bleep": "Pieper", "collected": "Afnamedatum/tijd:", "sign": "Paraaf:",
           "urgent": "Spoed", "routine": "Routine"},
    "de": {"label": "Patientenetikett", "clinical": "Klinische Angaben:", "tests": "Angeforderte Untersuchungen:",
           "requester": "Anfordernder Arzt:", "bleep": "Piepser", "collected": "Entnahme (Datum/Zeit):",
           "sign": "Unterschrift:", "urgent": "Notfall", "routine": "Routine"},
    "fr": {"label": "Étiquette patient", "clinical": "Renseignements cliniques :", "tests": "Examens demandés :",
           "requester": "Médecin prescripteur :", "bleep": "Bip", "collected": "Date/heure de prélèvement :",
           "sign": "Signature :", "urgent": "Urgent", "routine": "Routine"}}
CLINICAL = {"en": ["<Fever 38.9, productive cough, ?LRTI>", "<Chest pain since 06:00, ?ACS>",
                   "<Pre-op assessment, on warfarin>", "<Abdominal pain, raised WCC>"],
            "nl": ["<Koorts 38,9, productieve hoest>", "<Pijn op de borst sinds 06:00>",
                   "<Pre-operatief, gebruikt acenocoumarol>"],
            "de": ["<Fieber 38,9, produktiver Husten>", "<Thoraxschmerz seit 06:00, V. a. ACS>",
                   "<Präoperativ, Marcumar>"],
            "fr": ["<Fièvre 38,9, toux productive>", "<Douleur thoracique depuis 06h00>", "<Bilan préopératoire>"]}
TESTS = ["FBC", "U&E", "LFT", "CRP", "Coag", "HbA1c", "TFT", "Lipids", "Troponin", "Ferritin", "B12/Folate", "Mg"]


def request_form(rng: random.Random, p: ids.Patient) -> Page:
    """A printed request form (tinted stock, coloured rules) with an addressograph sticker stuck on it."""
    portrait = rng.random() < 0.6
    W, H = (rng.choice([1100, 1240]), 0) if portrait else (rng.choice([1400, 1600]), 0)
    H = int(W * (1.414 if portrait else 0.707))
    stock = rng.choice([(255, 255, 255), (255, 244, 246), (244, 252, 244), (244, 248, 255), (255, 253, 240)])
    rule = rng.choice([(200, 40, 60), (30, 80, 170), (30, 130, 80), (60, 60, 60)])
    pg = Page(Image.new("RGB", (W, H), stock))
    d = pg.draw
    m = int(W * 0.05)
    size = int(W / rng.uniform(52, 66))
    f = font(rng, rng.choice(["sans", "serif", "sans", "condensed"]), size)
    fb = styled(f, "bold", int(size * 1.5))
    fl = FORM_FIELDS[p.lang]
    y = m
    pg.line(m, y, [(p.hospital, "id", {"kind": "institution"})], fb, rule)
    pg.line(W - m, y, [(rng.choice(FORM_TITLE[p.lang]), "ctx")], styled(f, "bold", int(size * 1.2)), rule, anchor="r")
    y += int(fb.size * 1.8)
    # the label box, and the sticker in it
    bw, bh = int(W * rng.uniform(0.48, 0.56)), 0
    sticker = addressograph(rng, p, W=int(bw * 0.92))
    bh = int(sticker.img.height * 1.25) + size
    d.rectangle([m, y, m + bw, y + bh], outline=rule, width=2)
    pg.line(m + 8, y + 6, [(fl["label"], "ctx")], same_family(f, max(10, int(size * 0.8))), rule)
    sx = m + int(bw * 0.04) + rng.randint(-8, 8)
    sy = y + size + int(bh * 0.06) + rng.randint(-6, 6)
    paper.place(pg, sticker, sx, sy, angle=rng.uniform(-4, 4))
    # to the right: priority tick boxes and the collection time
    rx = m + bw + int(W * 0.04)
    yy = y + 6
    ticked = int(rng.random() < 0.7)
    for i, lab in enumerate([fl["urgent"], fl["routine"]]):
        d.rectangle([rx, yy, rx + size, yy + size], outline=rule, width=2)
        if i == ticked:
            d.line([rx + 3, yy + size // 2, rx + size // 2, yy + size - 3, rx + size + 4, yy - 4], fill=(20, 20, 80),
                   width=3)
        pg.line(rx + int(size * 1.6), yy, [(lab, "ctx")], f, (30, 30, 30))
        yy += int(size * 1.8)
    yy += size // 2
    pg.line(rx, yy, [(fl["collected"], "ctx")], f, rule)
    yy += int(size * 1.5)
    pg.line(rx, yy, [(p.date(p.study, rng), "id", {"kind": "study_date"}), (p.study.strftime("%H:%M"), "ctx")],
            f, (20, 20, 60))
    y += bh + int(size * 1.2)
    # clinical details
    d.line([m, y, W - m, y], fill=rule, width=2)
    y += size // 2
    pg.line(m, y, [(fl["clinical"], "ctx")], f, rule)
    y += int(size * 1.6)
    y = prose.flow(pg, m + 10, y, W - 2 * m - 20, prose.segments(rng.choice(CLINICAL[p.lang]), {}), f,
                   (20, 20, 60), int(size * 1.5))
    y += size
    d.line([m, y, W - m, y], fill=rule, width=2)
    y += size // 2
    pg.line(m, y, [(fl["tests"], "ctx")], f, rule)
    y += int(size * 1.7)
    cols = 4 if W > 1300 else 3
    tests = rng.sample(TESTS, cols * 2)
    for i, t in enumerate(tests):
        cx = m + (i % cols) * (W - 2 * m) // cols
        cy = y + (i // cols) * int(size * 1.9)
        d.rectangle([cx, cy, cx + size, cy + size], outline=rule, width=2)
        if rng.random() < 0.5:
            d.line([cx + 2, cy + 2, cx + size - 2, cy + size - 2], fill=(20, 20, 80), width=3)
            d.line([cx + size - 2, cy + 2, cx + 2, cy + size - 2], fill=(20, 20, 80), width=3)
        pg.line(cx + int(size * 1.6), cy, [(t, "tech")], f, (30, 30, 30))
    y += 2 * int(size * 1.9) + size
    d.line([m, y, W - m, y], fill=rule, width=2)
    y += size // 2
    if y + 3 * size < H:
        pg.line(m, y, [(fl["requester"], "ctx"),
                       (p.physician, "id", {"kind": "physician_name", "name_source": p.physician_source}),
                       (fl["bleep"], "ctx"), (str(rng.randint(1000, 9999)), "ctx")], f, (30, 30, 30))
        y += int(size * 2)
    if y + 3 * size < H:
        pg.line(m, y, [(fl["sign"], "ctx")], f, rule)
        sx0 = m + f.getlength(fl["sign"]) + 20
        pts = [(sx0 + k * 9, y + size * 0.6 + 9 * np.sin(k * 0.9 + rng.uniform(0, 3)))
               for k in range(rng.randint(8, 16))]
        d.line(pts, fill=(20, 20, 90), width=3)
        y += int(size * 2)
    bottom = min(H, max(y + m, int(H * 0.6)))
    pg.img = pg.img.crop((0, 0, W, bottom))
    pg.draw = ImageDraw.Draw(pg.img)
    return pg


def label_sheet(rng: random.Random, p: ids.Patient) -> Page:
    """A backing sheet of identical patient stickers, a few already used."""
    cols = 2
    W = rng.choice([1100, 1240])
    rows = rng.choice([2, 3, 4])  # a strip torn off the sheet: up to 8 stickers
    gap = int(W * 0.02)
    m = int(W * 0.04)
    sw = (W - 2 * m - (cols - 1) * gap) // cols
    sticker = addressograph(rng, p, W=sw, barcode=rng.random() < 0.5 and cols == 2)
    sh = sticker.img.height
    H = 2 * m + rows * sh + (rows - 1) * gap
    pg = Page(Image.new("RGB", (W, H), rng.choice([(236, 236, 232), (245, 240, 225), (230, 236, 245)])))
    used = set(rng.sample(range(rows * cols), rng.randint(1, cols + 1)))
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        x, y = m + c * (sw + gap), m + r * (sh + gap)
        if k in used:  # the die-cut outline of a peeled sticker
            pg.draw.rounded_rectangle([x, y, x + sw, y + sh], 10, outline=(200, 200, 196), width=2)
            continue
        paper.place(pg, sticker, x, y, 0.0, shadow=True)
    return pg
