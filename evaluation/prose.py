"""Running text with identifiers inside it: sentence templates, and word wrapping that keeps boxes.

A template is plain text with `{slot}` placeholders and `<clinical text>` in angle brackets:

    "Can you look at {title} {name}'s CXR, DOB {dob}? <Sats 91% on air>"

`segments(template, slots)` turns it into Page segments: a slot is an identifier when its
value carries a kind, context otherwise; angle brackets are clinical text (must survive);
the rest is context. `layout()` breaks segments into lines no wider than a width, never
inside an identifier and never between an identifier and punctuation glued to it
("Okafor's"), and `draw_lines()` draws them with Page.line, so every identifier keeps
its own exact box and every line that carries one is an identifier line.
"""

from __future__ import annotations

import random
import re

from . import identifiers as ids
from .render import Page

_TOKEN = re.compile(r"\s*\S+\s*|\s+")
_PART = re.compile(r"\{(\w+)\}|<([^>]*)>|([^{<]+)")


def segments(template: str, slots: dict) -> list[tuple]:
    """Template -> [(text, role, meta?)]. slots[key] = (text, meta or None)."""
    out = []
    for m in _PART.finditer(template):
        if m.group(1):
            text, meta = slots[m.group(1)]
            out.append((text, "id", meta) if meta else (text, "ctx"))
        elif m.group(2) is not None:
            out.append((m.group(2), "clin"))
        else:
            out.append((m.group(3), "ctx"))
    return [s for s in out if s[0]]


def layout(segs: list[tuple], fnt, width: float) -> list[list[tuple]]:
    """Break segments into lines of at most `width` px (a word wider than that gets a line of its own)."""
    toks = []
    for seg in segs:
        if seg[1] == "id":
            toks.append(list(seg))
        else:
            toks += [[t, *seg[1:]] for t in _TOKEN.findall(seg[0])]
    words: list[list] = []
    for t in toks:  # a break is allowed only at whitespace
        if words and not (t[0][:1].isspace() or words[-1][-1][0][-1:].isspace()):
            words[-1].append(t)
        else:
            words.append([t])
    lines, cur, cur_w = [], [], 0.0
    for w in words:
        if not cur:
            w = [[w[0][0].lstrip(), *w[0][1:]]] + w[1:]
        trail = w[-1][0][len(w[-1][0].rstrip()):]
        ww = sum(fnt.getlength(t[0]) for t in w)
        if cur and cur_w + ww - fnt.getlength(trail) > width:
            lines.append(cur)
            cur, cur_w = [], 0.0
            w = [[w[0][0].lstrip(), *w[0][1:]]] + w[1:]
            ww = sum(fnt.getlength(t[0]) for t in w)
        cur += w
        cur_w += ww
    if cur:
        lines.append(cur)
    out = []
    for line in lines:
        line[-1][0] = line[-1][0].rstrip()
        merged: list[list] = []
        for t in line:
            if not t[0]:
                continue
            if merged and t[1] != "id" and merged[-1][1] == t[1]:
                merged[-1][0] += t[0]
            elif merged and t[0].isspace() and merged[-1][1] != "id":
                merged[-1][0] += t[0]
            else:
                merged.append(list(t))
        # whitespace-only context between two identifiers goes onto the next context, else stays
        out.append([tuple(m) for m in merged])
    return out


def line_width(line: list[tuple], fnt) -> float:
    return sum(fnt.getlength(s[0]) for s in line)


def draw_lines(pg: Page, x: float, y: float, lines: list[list[tuple]], fnt, fill, line_h: float,
               anchor: str = "l") -> float:
    """Draw laid-out lines from (x, y); returns the y below the last one."""
    for line in lines:
        n_ctx = len(pg.context)
        pg.line(x, y, line, fnt, fill, anchor=anchor, gap=0)
        # a bare space between two identifiers leaves an empty context box: drop it
        pg.context[n_ctx:] = [r for r in pg.context[n_ctx:] if r["box"][2] > 0 and r["box"][3] > 0
                              and r["text"].strip()]
        y += line_h
    return y


def flow(pg: Page, x: float, y: float, width: float, segs: list[tuple], fnt, fill, line_h: float) -> float:
    return draw_lines(pg, x, y, layout(segs, fnt, width), fnt, fill, line_h)


# --------------------------------------------------------------------------- slots for a patient

TITLES = {"en": ("Mr", "Mrs", "Ms"), "nl": ("dhr.", "mevr.", "mw."), "de": ("Herr", "Frau", "Frau"),
          "fr": ("M.", "Mme", "Mme")}
PRONOUN = {"en": ("he", "she"), "nl": ("hij", "zij"), "de": ("er", "sie"), "fr": ("il", "elle")}


def patient_slots(rng: random.Random, p: ids.Patient) -> dict:
    """Slot values for the templates below: identifiers carry their kind, the rest is context."""
    nm = {"kind": "person_name", "name_source": p.name_source}
    t = TITLES[p.lang]
    title = t[0] if p.male else rng.choice(t[1:])
    form = rng.choice(["given_family", "given_family", "comma", "family_given_upper"])
    age = p.study.year - p.dob.year - ((p.study.month, p.study.day) < (p.dob.month, p.dob.day))
    return {
        "title": (title, None),
        "name": (p.name_form(form), {**nm, "form": form, "in_prose": True}),
        "gname": (f"{p.given} {p.family}", {**nm, "form": "given_family", "in_prose": True}),
        "family": (p.family, {**nm, "form": "family", "in_prose": True}),
        "given": (p.given, {**nm, "form": "given", "in_prose": True}),
        "dob": (p.date(p.dob, rng), {"kind": "date_of_birth"}),
        "date": (p.date(p.study, rng), {"kind": "study_date"}),
        "mrn": (p.mrn, {"kind": "mrn", "style": p.mrn_style}),
        "nat": (p.national_formatted(rng), {"kind": "national_id", "scheme": p.national_kind}),
        "natlabel": (rng.choice(ids.NATIONAL_LABELS[p.national_kind]).rstrip(":"), None),
        "phone": (p.phone, {"kind": "phone"}),
        "street": (p.street, {"kind": "address"}),
        "postcode": (p.postcode, {"kind": "postcode"}),
        "city": (p.city, None),
        "hospital": (p.hospital, {"kind": "institution"}),
        "doctor": (p.physician, {"kind": "physician_name", "name_source": p.physician_source}),
        "acc": (p.accession, {"kind": "accession"}),
        "age": (str(age), None),
        "pron": (PRONOUN[p.lang][0 if p.male else 1], None),
        "bed": (str(rng.randint(1, 32)), None),
        "ward": (rng.choice(["7B", "4", "12", "A3", "C2", "21", "5N"]), None),
        "time": (f"{rng.randint(7, 23)}:{rng.choice(['00', '15', '30', '45', '10', '50'])}", None),
    }


# Chat messages that name the patient, per language. Clinical bits in <...> must survive.
CHAT_ID = {
    "en": ["Can you look at {title} {gname}'s CXR, DOB {dob}?",
           "{name} in bed {bed} on ward {ward} - hosp no {mrn}. <Query PE>, CTPA requested",
           "Re {gname} ({natlabel} {nat}): <creatinine up to 180>, ok to give contrast?",
           "Is that {title} {family} on {ward}? DOB {dob}. <Sats 91% on air>",
           "CT head for {gname} done, report to follow",
           "Can someone review {title} {family} ({mrn})? <NEWS 6>, <BP 88/50>",
           "Bloods back for {gname}, DOB {dob}: <Hb 78>, <CRP 210>",
           "Family of {title} {family} on the phone, {phone}, can you call back?",
           "Just to flag {gname} {mrn} is going to theatre at {time}",
           "{given} in bay {bed} is asking for you"],
    "nl": ["Kun je even kijken naar de X-thorax van {title} {gname}, geb. {dob}?",
           "{name} ligt op kamer {bed}, patiëntnr {mrn}. <Verdenking longembolie>, CTA aangevraagd",
           "Betreft {gname} ({natlabel} {nat}): <kreatinine 180>, mag er contrast gegeven worden?",
           "Is dat {title} {family} op afdeling {ward}? Geb. {dob}. <Saturatie 91%>",
           "CT-hersenen van {gname} is klaar, verslag volgt",
           "Wil iemand {title} {family} ({mrn}) beoordelen? <MEWS 5>, <RR 90/50>",
           "Familie van {title} {family} belt, {phone}, wil je terugbellen?"],
    "de": ["Kannst du dir das Röntgen-Thorax von {title} {gname}, geb. {dob}, ansehen?",
           "{name} auf Station {ward}, Zimmer {bed}, Pat.-Nr. {mrn}. <V. a. LAE>, CT angefordert",
           "Betrifft {gname} ({natlabel} {nat}): <Kreatinin 2,1 mg/dl>, Kontrastmittel möglich?",
           "Ist das {title} {family} auf {ward}? Geb. {dob}. <SpO2 91 %>",
           "CCT von {gname} ist fertig, Befund folgt",
           "Kann jemand nach {title} {family} ({mrn}) schauen? <RR 85/50>, <HF 120>",
           "Angehörige von {title} {family} am Telefon, {phone}, bitte zurückrufen"],
    "fr": ["Peux-tu regarder la radio thorax de {title} {gname}, né(e) le {dob} ?",
           "{name} en chambre {bed}, IPP {mrn}. <Suspicion d'EP>, angioscanner demandé",
           "Concernant {gname} ({natlabel} {nat}) : <créatinine 180>, on peut injecter ?",
           "C'est bien {title} {family} en {ward} ? Né(e) le {dob}. <SpO2 91 %>",
           "Le scanner cérébral de {gname} est fait, compte rendu à suivre",
           "Quelqu'un peut voir {title} {family} ({mrn}) ? <TA 85/50>, <FC 120>",
           "La famille de {title} {family} appelle, {phone}, tu peux rappeler ?"],
}
CHAT_PLAIN = {
    "en": ["Sure, give me 10 min", "Looks like RLL consolidation to me", "Ok, on my way", "Thanks!",
           "Agree, no contrast for now", "Will do", "Have you discussed with the reg?", "Reported, see PACS",
           "Yes go ahead", "Can you send the image?"],
    "nl": ["Prima, over 10 min", "Lijkt mij een consolidatie rechtsonder", "Ok, ik kom eraan", "Dank je!",
           "Eens, voorlopig geen contrast", "Komt goed", "Verslag staat in PACS"],
    "de": ["Klar, in 10 Minuten", "Sieht nach Infiltrat rechts basal aus", "Ok, komme gleich", "Danke!",
           "Einverstanden, vorerst kein KM", "Mache ich", "Befund ist im PACS"],
    "fr": ["Oui, dans 10 min", "Ça ressemble à une pneumopathie base droite", "Ok, j'arrive", "Merci !",
           "D'accord, pas d'injection pour l'instant", "Je m'en occupe", "Compte rendu dans le PACS"],
}
