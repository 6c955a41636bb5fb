"""Printed clinic letters and referral forms in serif type, with the patient named inside the prose.

Rendered flat as an A4 page at about 150 dpi (the "Re:" block, the addressee, paragraphs
that say "I saw Mrs Okafor in clinic on ..."), sometimes with the creases of a letter
that was folded in three; generate.py photographs them with paper.py, mostly as portrait
phone photos stored sideways with EXIF Orientation 6 or 8.
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw

from . import identifiers as ids
from . import prose
from .render import Page, font, same_family, styled

# --------------------------------------------------------------------------- text, per language

DEPTS = {"en": ["Department of Respiratory Medicine", "Cardiology Outpatients", "Diabetes & Endocrinology",
                "Department of Gastroenterology"],
         "nl": ["Afdeling Longziekten", "Polikliniek Cardiologie", "Afdeling Interne Geneeskunde"],
         "de": ["Klinik für Pneumologie", "Medizinische Klinik II - Kardiologie", "Zentrum für Innere Medizin"],
         "fr": ["Service de Pneumologie", "Service de Cardiologie", "Service d'Endocrinologie"]}
OPEN = {"en": ["Dear {doctor},", "Dear Colleague,"], "nl": ["Geachte collega,", "Geachte {doctor},"],
        "de": ["Sehr geehrte Frau Kollegin, sehr geehrter Herr Kollege,", "Sehr geehrte(r) {doctor},"],
        "fr": ["Cher confrère,", "Chère consœur, cher confrère,"]}
RE = {"en": "Re:", "nl": "Betreft:", "de": "Betreff:", "fr": "Objet :"}
BODY = {
    "en": ["I saw {title} {family} in the clinic on {date}. {Pron} was referred with <breathlessness on exertion> "
           "and <a dry cough of three months' duration>.",
           "On examination <the chest was clear, SpO2 96% on air, BP 132/78 mmHg>. {title} {family} reports "
           "<no weight loss and no haemoptysis>.",
           "Investigations: <Hb 132 g/L, WCC 7.2, CRP 12 mg/L, eGFR 94>. <The CT thorax showed no mass.>",
           "I have explained the findings to {given}, who is happy with the plan. We will see {title} {family} "
           "again in <three months> with <repeat spirometry>.",
           "{title} {gname} lives alone at {street}, {city}, and remains independent; {pron} can be contacted on "
           "{phone}.",
           "Plan: <1. Start inhaled budesonide 200 mcg bd. 2. Spirometry. 3. Review in clinic.>"],
    "nl": ["Op {date} zag ik {title} {family} op de polikliniek. {Pron} werd verwezen wegens "
           "<kortademigheid bij inspanning> en <een droge hoest sinds drie maanden>.",
           "Bij lichamelijk onderzoek <vesiculair ademgeruis, saturatie 96%, RR 132/78 mmHg>. {title} {family} "
           "meldt <geen gewichtsverlies>.",
           "Aanvullend onderzoek: <Hb 8,2 mmol/l, CRP 12 mg/l, eGFR 94>. <CT-thorax zonder afwijkingen.>",
           "Ik heb de bevindingen met {gname} besproken. Wij zien {title} {family} over <drie maanden> terug "
           "op de polikliniek.",
           "{title} {gname} woont zelfstandig aan de {street} te {city} en is bereikbaar op {phone}.",
           "Beleid: <1. Start budesonide 200 mcg 2dd. 2. Longfunctie. 3. Controle polikliniek.>"],
    "de": ["wir berichten über {title} {family}, {rel} sich am {date} in unserer Ambulanz vorstellte. "
           "Die Zuweisung erfolgte wegen <Belastungsdyspnoe> und <trockenem Husten seit drei Monaten>.",
           "Befund: <Pulmo frei, SpO2 96 %, RR 132/78 mmHg>. {title} {family} berichtet <keinen Gewichtsverlust>.",
           "Labor: <Hb 13,2 g/dl, Leukozyten 7,2/nl, CRP 12 mg/l>. <CT-Thorax ohne Raumforderung.>",
           "Wir haben {title} {gname} über die Befunde aufgeklärt. Eine Wiedervorstellung ist in "
           "<drei Monaten> geplant.",
           "{title} {family} wohnt in der {street}, {postcode} {city}, und ist unter {phone} erreichbar.",
           "Procedere: <1. Budesonid 200 µg 1-0-1. 2. Lungenfunktion. 3. Wiedervorstellung.>"],
    "fr": ["J'ai revu en consultation le {date} {title} {family}, âgé{e} de {age} ans, adressé{e} pour "
           "<dyspnée d'effort> et <toux sèche depuis trois mois>.",
           "À l'examen : <auscultation pulmonaire normale, SpO2 96 %, TA 132/78 mmHg>. {title} {family} ne "
           "signale <pas d'amaigrissement>.",
           "Biologie : <Hb 13,2 g/dL, leucocytes 7,2 G/L, CRP 12 mg/L>. <Le scanner thoracique est normal.>",
           "J'ai expliqué les résultats à {title} {gname}. Nous reverrons {given} dans <trois mois>.",
           "{title} {family} demeure au {street}, {postcode} {city}, et reste joignable au {phone}.",
           "Conduite à tenir : <1. Budésonide 200 µg matin et soir. 2. EFR. 3. Consultation de contrôle.>"],
}
PRACTICE = {"en": ["The Surgery", "1 Church Lane"], "nl": ["Huisartsenpraktijk De Linde", "Dorpsstraat 4"],
            "de": ["Hausarztpraxis am Markt", "Hauptstraße 12"], "fr": ["Cabinet médical", "2 rue de la Gare"]}
CLOSE = {"en": ["Yours sincerely,", "Kind regards,"], "nl": ["Met vriendelijke groet,", "Met collegiale groet,"],
         "de": ["Mit freundlichen kollegialen Grüßen"], "fr": ["Bien confraternellement,", "Cordialement,"]}
ROLE = {"en": ["Consultant Respiratory Physician", "Specialty Registrar"], "nl": ["Longarts", "Internist"],
        "de": ["Oberarzt", "Chefarzt", "Fachärztin für Innere Medizin"],
        "fr": ["Praticien hospitalier", "Chef de clinique"]}
DATE_LBL = {"en": ["Date:", "Clinic date:", "Dictated:"], "nl": ["Datum:"], "de": ["Datum:"], "fr": ["Le", "Date :"]}
REF_LBL = {"en": ["Hospital No:", "Our ref:"], "nl": ["Patiëntnummer:", "Ons kenmerk:"],
           "de": ["Pat.-Nr.:", "Unser Zeichen:"], "fr": ["IPP :", "Nos réf. :"]}
FOOT = {"en": "Private and confidential", "nl": "Vertrouwelijk", "de": "Vertraulich", "fr": "Confidentiel"}

FORM = {
    "en": {"title": "REFERRAL FORM", "fields": ["Surname", "Forename(s)", "Date of birth", "Hospital number",
                                                 "Address", "Telephone"],
           "reason": "Reason for referral:", "referrer": "Referring clinician:", "date": "Date:"},
    "nl": {"title": "VERWIJSFORMULIER", "fields": ["Achternaam", "Voornaam", "Geboortedatum", "Patiëntnummer",
                                                   "Adres", "Telefoon"],
           "reason": "Reden van verwijzing:", "referrer": "Verwijzer:", "date": "Datum:"},
    "de": {"title": "ÜBERWEISUNG", "fields": ["Name", "Vorname", "Geburtsdatum", "Patienten-Nr.", "Anschrift",
                                              "Telefon"],
           "reason": "Überweisungsgrund:", "referrer": "Überweisende(r) Ärztin/Arzt:", "date": "Datum:"},
    "fr": {"title": "FICHE D'ADRESSAGE", "fields": ["Nom", "Prénom(s)", "Né(e) le", "IPP", "Adresse",
                                                    "Téléphone"],
           "reason": "Motif d'adressage :", "referrer": "Médecin adresseur :", "date": "Date :"},
}
REASON = {
    "en": ["Please see {title} {gname}, a {age}-year-old with <progressive breathlessness and a raised BNP>. "
           "{title} {family} has <a history of COPD and hypertension>.",
           "{given} {family} presented on {date} with <chest pain radiating to the left arm>. <ECG: sinus rhythm.>"],
    "nl": ["Graag zien wij {title} {gname}, {age} jaar, in verband met <toenemende dyspnoe en een verhoogd BNP>. "
           "{title} {family} is bekend met <COPD en hypertensie>."],
    "de": ["Bitte um Übernahme von {title} {gname}, {age} Jahre, wegen <zunehmender Dyspnoe und erhöhtem BNP>. "
           "Bei {title} {family} bestehen <COPD und arterielle Hypertonie>."],
    "fr": ["Merci de recevoir {title} {gname}, {age} ans, pour <dyspnée croissante et BNP élevé>. "
           "{title} {family} est suivi{e} pour <BPCO et HTA>."],
}


def _slots(rng: random.Random, p: ids.Patient) -> dict:
    s = prose.patient_slots(rng, p)
    pron = s["pron"][0]
    s["Pron"] = (pron[:1].upper() + pron[1:], None)
    s["rel"] = ("der" if p.male else "die", None)
    s["e"] = ("" if p.male else "e", None)
    return s


def _signature(pg: Page, rng: random.Random, x: float, y: float, w: float, h: float):
    pts = []
    for k in range(rng.randint(14, 28)):
        t = k / 20
        pts.append((x + t * w * rng.uniform(0.9, 1.1), y + h / 2 + np.sin(t * rng.uniform(8, 14)) * h / 2.2
                    * rng.uniform(0.5, 1.0)))
    pg.draw.line(pts, fill=rng.choice([(20, 30, 110), (20, 20, 20), (40, 40, 90)]), width=rng.randint(2, 3),
                 joint="curve")


def _creases(img: Image.Image, rng: random.Random) -> None:
    """Two folds, as a letter that came out of an envelope."""
    a = np.asarray(img).astype(np.float32)
    h = a.shape[0]
    rows = np.arange(h, dtype=np.float32)[:, None, None]
    for c in (h / 3 + rng.uniform(-10, 10), 2 * h / 3 + rng.uniform(-10, 10)):
        a *= 1 - 0.07 * np.exp(-((rows - c) ** 2) / 18) + 0.03 * np.exp(-((rows - c - 5) ** 2) / 60)
    img.paste(Image.fromarray(a.clip(0, 255).astype(np.uint8)))


def letter(rng: random.Random, p: ids.Patient) -> tuple[Page, dict]:
    W = rng.choice([1100, 1240, 1240, 1360])
    H = int(W * 1.414)
    pg = Page(Image.new("RGB", (W, H), rng.choice([(255, 255, 255), (252, 251, 247), (250, 250, 250)])))
    size = int(W / rng.uniform(40, 52))
    f = font(rng, "serif", size)
    fb = styled(f, "bold", size)
    fh = styled(f, "bold", int(size * rng.uniform(1.4, 1.8)))
    ink = rng.choice([(15, 15, 15), (25, 25, 35), (0, 0, 0)])
    accent = rng.choice([(0, 70, 150), (20, 20, 20), (110, 20, 40), (0, 95, 85)])
    m = int(W * rng.uniform(0.08, 0.11))
    lh = int(size * rng.uniform(1.3, 1.5))
    sl = _slots(rng, p)
    other = ids.make_patient(rng, p.site)
    signer = other.physician
    y = m
    pg.line(m, y, [(p.hospital, "id", {"kind": "institution"})], fh, accent)
    if rng.random() < 0.5:  # a logo: a few shapes, no text
        lx = W - m - int(size * 3)
        pg.draw.ellipse([lx, y - 4, lx + size * 3, y + size * 3 - 4], outline=accent, width=4)
        pg.draw.rectangle([lx + size * 1.2, y + size * 0.3, lx + size * 1.8, y + size * 2.4], fill=accent)
        pg.draw.rectangle([lx + size * 0.4, y + size * 1.05, lx + size * 2.6, y + size * 1.65], fill=accent)
    y += int(fh.size * 1.4)
    pg.line(m, y, [(rng.choice(DEPTS[p.lang]), "ctx")], same_family(f, int(size * 1.05)), accent)
    y += int(lh * 1.1)
    small = same_family(f, max(12, int(size * 0.85)))
    pg.line(m, y, [("Tel", "ctx"), (f"{rng.randint(100, 999)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                                     "ctx")], small, (90, 90, 90))
    y += int(lh * 2)
    # addressee on the left, date and reference on the right
    yr = y
    gp = [(p.physician, "id", {"kind": "physician_name", "name_source": p.physician_source})]
    pg.line(m, y, gp, f, ink)
    y += lh
    for part in PRACTICE[p.lang]:
        pg.line(m, y, [(part, "ctx")], f, ink)
        y += lh
    rx = int(W * 0.62)
    pg.line(rx, yr, [(rng.choice(DATE_LBL[p.lang]), "ctx"), _id(sl, "date")], f, ink)
    pg.line(rx, yr + lh, [(rng.choice(REF_LBL[p.lang]), "ctx"), (p.mrn, "id", {"kind": "mrn",
                                                                              "style": p.mrn_style})], f, ink)
    y += lh
    # Re: block
    form = rng.choice(["given_family", "family_given_upper", "comma_upper"])
    sl["rename"] = (p.name_form(form), {"kind": "person_name", "name_source": p.name_source, "form": form})
    sl["doblabel"] = (ids.label("dob", p.lang, rng), None)
    re_t = rng.choice(["{re} {title} {rename}, {doblabel} {dob}", "{re} {rename}   {doblabel} {dob}",
                       "{re} {title} {rename} ({doblabel} {dob})"])
    sl["re"] = (RE[p.lang], None)
    y = prose.flow(pg, m, y, W - 2 * m, prose.segments(re_t, sl), fb, ink, lh)
    addr = [(p.street, "id", {"kind": "address"}), (",", "ctx"), (" " + p.city, "ctx"),
            (" " + p.postcode, "id", {"kind": "postcode"})]
    y = prose.flow(pg, m, y, W - 2 * m, addr, fb, ink, lh)
    if rng.random() < 0.7:
        y = prose.flow(pg, m, y, W - 2 * m, [(ids.NATIONAL_LABELS[p.national_kind][0], "ctx"),
                                             (" ", "ctx"), _id(sl, "nat")], fb, ink, lh)
    y += lh
    y = prose.flow(pg, m, y, W - 2 * m, prose.segments(rng.choice(OPEN[p.lang]), sl), f, ink, lh)
    y += lh // 2
    paras = BODY[p.lang][:4]
    if rng.random() < 0.6:
        paras = paras + [BODY[p.lang][4]]
    if rng.random() < 0.5:
        paras = paras + [BODY[p.lang][5]]
    for t in paras:
        if y > H - 8 * lh:
            break
        y = prose.flow(pg, m, y, W - 2 * m, prose.segments(t, sl), f, ink, lh)
        y += int(lh * 0.6)
    if y < H - 6 * lh:
        y += lh // 2
        pg.line(m, y, [(rng.choice(CLOSE[p.lang]), "ctx")], f, ink)
        y += lh
        _signature(pg, rng, m, y, size * 7, lh * 1.6)
        y += int(lh * 2)
        pg.line(m, y, [(signer, "id", {"kind": "physician_name", "name_source": other.physician_source})], fb, ink)
        y += lh
        pg.line(m, y, [(rng.choice(ROLE[p.lang]), "ctx")], f, ink)
        y += int(lh * 1.5)
    if y < H - 3 * lh and rng.random() < 0.6:
        cc = [("cc:", "ctx"), (" " + sl["title"][0] + " ", "ctx"), _id(sl, "gname"),
              (", ", "ctx"), (p.street, "id", {"kind": "address"}), (", ", "ctx"),
              (p.postcode, "id", {"kind": "postcode"})]
        y = prose.flow(pg, m, y, W - 2 * m, cc, small, ink, int(lh * 0.9))
    pg.line(W / 2, H - m * 0.7, [(FOOT[p.lang], "ctx"), ("-", "ctx"), ("1/1", "ctx")], small, (110, 110, 110),
            anchor="c")
    creased = rng.random() < 0.5
    if creased:
        _creases(pg.img, rng)
    return pg, {"layout": "letter", "font": f.path.rsplit("/", 1)[-1], "font_px": size, "creased": creased}


def _id(slots: dict, key: str) -> tuple:
    text, meta = slots[key]
    return (text, "id", meta)


def referral_form(rng: random.Random, p: ids.Patient) -> tuple[Page, dict]:
    W = rng.choice([1100, 1240])
    H = int(W * 1.414)
    pg = Page(Image.new("RGB", (W, H), (255, 255, 255)))
    d = pg.draw
    size = int(W / rng.uniform(40, 50))
    f = font(rng, "serif", size)
    fb = styled(f, "bold", int(size * 1.6))
    typed = font(rng, rng.choice(["serif", "mono", "serif"]), size)
    ink, rule = (15, 15, 15), rng.choice([(60, 60, 60), (0, 60, 130), (120, 30, 40)])
    m = int(W * 0.08)
    lh = int(size * 1.5)
    sl = _slots(rng, p)
    fl = FORM[p.lang]
    y = m
    pg.line(m, y, [(p.hospital, "id", {"kind": "institution"})], styled(f, "bold", int(size * 1.2)), rule)
    y += int(lh * 1.3)
    pg.line(W / 2, y, [(fl["title"], "ctx")], fb, ink, anchor="c")
    y += int(fb.size * 2)
    values = [(p.family, {"kind": "person_name", "name_source": p.family_source, "form": "family"}),
              (p.given, {"kind": "person_name", "name_source": p.given_source, "form": "given"}),
              (p.date(p.dob, rng), {"kind": "date_of_birth"}),
              (p.mrn, {"kind": "mrn", "style": p.mrn_style}),
              (p.street, {"kind": "address"}),
              (p.phone, {"kind": "phone"})]
    col = m + int(W * 0.26)
    for lab, (val, meta) in zip(fl["fields"], values):
        pg.line(m, y, [(lab + ":", "ctx")], f, ink)
        pg.line(col, y, [(val, "id", meta)], typed, (10, 10, 60))
        if lab in ("Address", "Adres", "Anschrift", "Adresse"):
            x = col + typed.getlength(val) + typed.getlength("  ")
            pg.line(x, y, [(p.postcode, "id", {"kind": "postcode"}), (p.city, "ctx")], typed, (10, 10, 60))
        d.line([col - 6, y + size * 1.25, W - m, y + size * 1.25], fill=(150, 150, 150), width=1)
        y += int(lh * 1.35)
    y += lh // 2
    pg.line(m, y, [(fl["reason"], "ctx")], styled(f, "bold", size), ink)
    y += lh
    box_top = y - 6
    y = prose.flow(pg, m + 12, y + 6, W - 2 * m - 24, prose.segments(rng.choice(REASON[p.lang]), sl), typed,
                   (10, 10, 60), lh)
    y += lh
    d.rectangle([m, box_top, W - m, y], outline=rule, width=2)
    y += lh
    pg.line(m, y, [(fl["referrer"], "ctx"), (p.physician, "id", {"kind": "physician_name",
                                                                 "name_source": p.physician_source})], f, ink)
    y += int(lh * 1.4)
    pg.line(m, y, [(fl["date"], "ctx"), (p.date(p.study, rng), "id", {"kind": "study_date"})], f, ink)
    y += int(lh * 1.4)
    _signature(pg, rng, W * 0.55, y - lh * 2, size * 6, lh * 1.4)
    bottom = min(H, max(y + 2 * m, int(H * 0.7)))
    pg.img = pg.img.crop((0, 0, W, bottom))
    pg.draw = ImageDraw.Draw(pg.img)
    return pg, {"layout": "referral_form", "font": f.path.rsplit("/", 1)[-1], "font_px": size}


def document(rng: random.Random, p: ids.Patient | None = None) -> tuple[Page, dict, ids.Patient]:
    p = p or ids.make_patient(rng)
    pg, meta = letter(rng, p) if rng.random() < 0.7 else referral_form(rng, p)
    meta.update(site=p.site, lang=p.lang)
    return pg, meta, p
