"""Field labels ("Patient Name:", "DOB", "NHS No", "Fallnummer" ...) and their values.

On viewer overlays and wristbands the label is the strongest evidence there
is: a value right after "NHS No" is an NHS number even when OCR misread one
digit and the checksum fails. So for every label we take the value that follows
it (up to the next label or the end of the field) and flag it when its *shape*
is plausible for the kind -- no checksum needed.

Labels are matched on the original text with OCR-tolerant spellings (D0B,
NH5, Patiënt/Patient); values are read from the digit-repaired twin.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from . import patterns
from .span import Span
from .text import OcrText, fold
from .vocab import COMMON_WORDS, NAME_STOP, TECH_WORDS


@dataclass(frozen=True)
class Label:
    start: int
    end: int  # end of the label and of the separator after it
    kind: str
    recognizer: str
    colon: bool  # an explicit separator (: # =) followed the label


_NO_REQ = r"(?:[ ]?(?:No\.?|Nr\.?|Number|Num\.?|#|n[°º]))"
_NO = _NO_REQ + "?"

# (pattern, kind, recognizer). Patterns are case-insensitive unless they start
# with (?-i:...); short all-caps abbreviations are case-sensitive so that running
# text ("id", "chi", "pps") does not trigger them.
_LABELS: list[tuple[str, str, str]] = [
    # --- national identifiers
    (rf"NH[S5]{_NO}", "national_id", "nhs_number.label"),
    (rf"(?-i:CHI){_NO}", "national_id", "chi_number.label"),
    (rf"(?-i:H[ ]?(?:&|\+|and)[ ]?C|HCN){_NO}", "national_id", "hc_number.label"),
    (r"B[S5]N|burgerservicenummer|burgerservicenr\.?|sofinummer|sofi-?nr\.?", "national_id", "bsn.label"),
    (r"(?-i:INSZ|NISS|RRN)|rijksregisternummer|rijksregisternr\.?|rijksreg\.?(?:[ ]?nr\.?)?"
     r"|n[°º][ ]?national|num[ée]ro national|registre national|nat\.?[ ]?nr\.?", "national_id", "rrn.label"),
    (r"(?-i:KVNR|KV-?Nr\.?)|(?:kranken)?versichertennummer|versicherten-?nr\.?|versichertennr\.?",
     "national_id", "kvnr.label"),
    (r"(?-i:NIR|NSS|INSEE)|n[°º][ ]?(?:de[ ]?)?s[ée]cu(?:rit[ée][ ]sociale)?|s[ée]cu(?:rit[ée][ ]sociale)?"
     r"|num[ée]ro de s[ée]curit[ée] sociale|n[°º][ ]?SS", "national_id", "nir.label"),
    (r"(?-i:PPSN|PPS)(?:[ ]?(?:No\.?|Number))?", "national_id", "ppsn.label"),
    (r"(?-i:SSN|SS#|SS[ ]?No\.?)|social security(?:[ ]?(?:No\.?|Number|#))?", "national_id", "ssn.label"),
    (r"(?-i:MBI|HICN)|medicare(?:[ ]?(?:No\.?|Number|ID|#))?", "national_id", "mbi.label"),
    # --- hospital numbers
    (r"MRN|MR[ ]?#|MR[ ]?No\.?|med(?:ical)?\.?[ ]?rec(?:ord)?\.?" + _NO
     + r"|hosp(?:ital)?\.?" + _NO_REQ + r"|hosp(?:ital)?\.?[ ]?ID|pati[eëéè]nt[ \-]?(?:ID|No\.?|Number|Nr\.?)"
     r"|pat\.?[ ]?ID|pt\.?[ ]?ID|(?-i:ID)[ ]pati[eëé]nte?|(?-i:PID|ID|URN|IPP|NIP|NDA)|UR[ ]?No\.?"
     r"|(?:unit|case|exam|order|visit|chart|record)" + _NO_REQ + r"|encounter" + _NO
     + r"|acc(?:ession)?" + _NO_REQ + r"|accession|acc\.?|ace(?=[ ]?[:#])|accessie-?(?:nr\.?|nummer)|study[ ]?ID"  # ace: OCR's acc
     r"|pati[eëé]nt(?:en)?-?nummer|pati[eëé]nt-?nr\.?|pat\.?[ ]?-?nr\.?|patnr\.?|pat\.-Nr\.?|patienten-?nr\.?"
     r"|fallnummer|fall-?nr\.?|aufnahme-?(?:nummer|nr\.?)|dossiernummer|dossiernr\.?|dossier"
     r"|opnamenummer|opname-?nr\.?|ZIS-?(?:nummer|nr\.?)|EPD-?(?:nummer|nr\.?)|registratienummer"
     r"|n[°º][ ]?(?:de[ ]?)?(?:patient|dossier)|no\.?[ ]patient|num[ée]ro (?:de[ ])?(?:patient|dossier)"
     # a specimen's or request's number on a tube label or a lab form: an accession
     r"|n[°º][ ]?(?:d['e][ ]?)?(?:labo(?:ratoire)?|[ée]chantillon|pr[ée]l[eè]vement|demande|s[ée]jour|venue)"
     r"|lab(?:oratory|o)?" + _NO_REQ + r"|lab[ ]?ID|lab-?nummer|labo?-?nr\.?"
     r"|(?:spec(?:imen)?\.?|sample)" + _NO_REQ + r"|(?:specimen|sample)[ ]?ID"
     r"|(?:auftrags|proben?|labor|einsende)-?(?:nummer|nr\.?)|(?:monster|aanvraag|buis)-?(?:nummer|nr\.?)",
     "mrn", "mrn.label"),
    # --- date of birth
    (r"D\.?[ ]?[O0]\.?[ ]?B\.?|(?:patient'?s?[ ])?(?:date[ ]of[ ]birth|birth[ ]?date)|birth|born"
     r"|geb\.?[ ]?-?(?:datum|dat\.?)|geburtsdatum|geburtstag|geboortedatum|geboren|geb\.?"
     r"|n[ée]\(?e?\)?[ ]le|date[ ]de[ ]naissance|date[ ]naiss\.?|(?-i:DDN)", "date", "label.dob"),
    # --- person names
    (r"(?:patient'?s?|pt\.?|pat\.?)[ ]?name|pati[eëé]ntnaam|pat\.?[ ]?naam|naam[ ]pati[eëé]nt|patientenname"
     r"|name[ ]?[,/][ ]?vorname|vorname|nachname|familienname|geburtsname|nom[ ]du[ ]patient|nom[ ]patient"
     r"|nom[ ]de[ ]naissance|nom[ ]d'usage|nom[ ]?(?:/|et|-)[ ]?pr[ée]nom|pr[ée]nom|surname|forenames?"
     r"|first[ ]name|last[ ]name|family[ ]name|given[ ]names?|voornaam|achternaam|geboortenaam"
     r"|name|naam|nom|pati[eëé]nt(?:e|in)?|(?-i:Pt|PT|Pat|PAT)(?:\.|(?=[ ]*[:#]))"
     r"|referring(?:[ ](?:physician|phys\.?|doctor|dr\.?|clinician))?(?:'?s)?(?:[ ]name)?|ref\.?[ ]?(?:phys\.?|dr\.?|doctor)"
     r"|referrer|referred[ ]by|requested[ ]by|requesting(?:[ ](?:physician|clinician|doctor))?"
     r"|performing[ ]physician|physician|consultant|radiologist|sonographer|operators?'?(?:[ ]name)?|technologist"
     r"|reported[ ]by|verwijzer|verwijzend[ ](?:arts|specialist)|aanvrager|huisarts|behandelend[ ]arts|arts"
     r"|[üu]berweiser|zuweiser|[üu]berweisender[ ]arzt|einweiser|untersucher|befunder|hausarzt|arzt|[äa]rztin"
     r"|m[ée]decin(?:[ ](?:prescripteur|traitant|demandeur))?|prescripteur|op[ée]rateur|manipulateur",
     "person_name", "name.label"),
    # --- contact and place
    (r"tel(?:ephone|efoon|efon)?\.?|t[ée]l(?:[ée]phone)?\.?|phone|ph\.?|mob(?:ile|iel)?\.?|(?-i:GSM)|fax|handy"
     r"|portable|contact(?:[ ]?(?:No\.?|Number))?", "phone", "phone.label"),
    (r"e-?mail|courriel", "email", "email.label"),
    (r"post[ ]?code|postal[ ]code|zip(?:[ ]?code)?|(?-i:PLZ|CP)|code[ ]postal", "postcode", "postcode.label"),
    (r"(?:home[ ])?address|addr\.?|adres|adresse|anschrift|wohnort|woonplaats|domicile", "address", "address.label"),
    (r"institution(?:[ ]name)?|institute|hospital|h[ôo]pital|ziekenhuis|instelling|klinik|kliniek|einrichtung"
     r"|[ée]tablissement|facility|practice|praxis", "institution", "institution.label"),
]

_COMPILED = [
    (re.compile(rf"(?i)(?<![\w])(?:{src})(?![^\W_])"), kind, rec) for src, kind, rec in _LABELS
]
_SEP = re.compile(r"[ ]*(?P<strong>[:#=>]+|[\-–—](?=[ ]))?[ ]*")
# "Protocol Name", "Station Name", "Series naam": not a person.
_NAME_NOT_AFTER = re.compile(
    r"(?i)(?:protocol|series|study|station|sequence|file|device|host|scanner|model|manufacturer|software"
    r"|coil|exam|procedure|part|product|program|display|machine|computer|application|drug|agent|preset"
    r"|company|app|service|project|user|login|account|test|body|reeks|serie|onderzoek|protokoll|studie"
    r"|ger[äa]t|protocole|s[ée]rie|[ée]tude|examen|fichier|bestand|datei|printer|network|server)"
    r"[ _\-]?$")
_NAME_WORDS_NEEDING_CHECK = ("name", "naam", "nom")


def find_labels(text: str) -> list[Label]:
    """All labels in text, longest first where two overlap, in text order."""
    found = []
    for rx, kind, rec in _COMPILED:
        for m in rx.finditer(text):
            found.append((m.start(), m.end(), kind, rec))
    found.sort(key=lambda t: (t[0], -(t[1] - t[0])))
    out: list[Label] = []
    last_end = -1
    for start, end, kind, rec in found:
        if start < last_end:
            continue
        if kind == "person_name" and fold(text[start:end]) in _NAME_WORDS_NEEDING_CHECK:
            if _NAME_NOT_AFTER.search(text, max(0, start - 16), start):
                continue
        sep = _SEP.match(text, end)
        out.append(Label(start, sep.end(), kind, rec, bool(sep.group("strong"))))
        last_end = end
    return out


# ---------------------------------------------------------------------------
# Values

# An identifier code: optional letter prefix, then digit groups. Space-joined
# groups must be all digits (so "12345678 SMITH" stops at the name); dash, dot
# and slash may join alphanumeric groups ("RX-0042113", "12-345678/A").
_CODE = re.compile(
    r"(?:[A-Za-z]{1,4}[ \-]?)?\d[\dA-Za-z]*(?:(?:[\-/.][\dA-Za-z]+)|(?:[ ]\d+(?![A-Za-z])))*")


def _code_after(ctx: OcrText, lab: Label, stop: int, min_digits: int) -> tuple[int, int] | None:
    m = _CODE.match(ctx.repaired, lab.end, stop)
    if not m or sum(c.isdigit() for c in m.group()) < min_digits:
        return None
    return m.start(), m.end()


_NAME_TOKEN = re.compile(r"\S+")
_CARETS = set('^"*~')
_PARTICLES = frozenset("van der den de du des la le von vom zu ter ten het op di da del della dos das y".split())
# Titles inside a name value ("Referring: Dr. med. Weber"): part of the name, never a stop.
_TITLES = frozenset("dr drs prof pd mr mrs ms miss mx dhr mevr mw mej herr frau hr fr mme mlle m med dent".split())


def _name_after(text: str, lab: Label, stop: int) -> tuple[int, int] | None:
    """The person's name right after a name label: letter-only tokens up to
    something that is clearly not a name (a digit, 'Sex', a technical word)."""
    start = end = None
    count = 0
    lower_first = False
    for m in _NAME_TOKEN.finditer(text, lab.end, stop):
        tok = m.group()
        core = tok.strip(",;:.()[]")
        if not core or any(c.isdigit() for c in core) or not core[0].isalpha():
            break
        if not all(c.isalpha() or c in "-'’.,^\"*~" for c in core):
            break
        word = fold(core)
        caret = any(c in _CARETS for c in core)
        title = word in _TITLES and (tok.endswith(".") or word not in ("m", "med", "dent"))
        if title or (len(core) == 1 and core.isupper()):
            pass  # a title or an initial: part of the name
        elif not caret and (word in NAME_STOP or (word in TECH_WORDS and len(word) > 1)):
            break
        elif not caret and word in COMMON_WORDS and not (count and word in _PARTICLES):
            break
        if count == 0:
            if not lab.colon and not core[0].isupper():
                return None
            lower_first = core[0].islower() and word not in _PARTICLES
        elif core[0].islower() and word not in _PARTICLES and not lower_first and not title:
            break
        offset = m.start() + tok.find(core)
        if start is None:
            start = offset
        end = offset + len(core)
        if len(core) == 1 and tok[tok.find(core) + 1:tok.find(core) + 2] == ".":
            end += 1  # keep the initial's dot: "J."
        count += 1
        if count == 6 or tok.endswith((";", ":")):
            break
    if start is None:
        return None
    return start, end


def _date_after(ctx: OcrText, lab: Label, stop: int) -> tuple[int, int, float] | None:
    best = None
    for s in ctx.variants():
        for start, end, _name, conf in patterns.iter_dates(s[:stop]):
            if lab.end <= start <= lab.end + 3 and (best is None or end > best[1]):
                best = (start, end, 0.95)
    if best is None:
        code = _code_after(ctx, lab, stop, 5)  # "DOB 04O3 2018"-style wreckage: still digits
        if code is None:
            return None
        best = (code[0], code[1], 0.8)
    age = patterns.AGE.match(ctx.repaired, best[1], stop)
    if age and age.group().strip(" ,"):
        best = (best[0], age.end(), best[2])
    return best


def _rest_of_field(text: str, lab: Label, stop: int) -> tuple[int, int] | None:
    value = text[lab.end:stop]
    stripped = value.strip(" ,;:.-")
    if not stripped or not any(c.isalnum() for c in stripped):
        return None
    start = lab.end + value.find(stripped)
    return start, start + len(stripped)


def label_values(ctx: OcrText, labels: list[Label] | None = None) -> Iterator[Span]:
    text = ctx.text
    labels = find_labels(text) if labels is None else labels
    for i, lab in enumerate(labels):
        stop = ctx.segment_end(lab.end)
        if i + 1 < len(labels):
            stop = min(stop, labels[i + 1].start)
        if stop <= lab.end:
            continue
        if lab.kind == "person_name":
            got = _name_after(text, lab, stop)
            if got:
                yield Span(got[0], got[1], "person_name", "name.label", 0.9 if lab.colon else 0.75)
        elif lab.kind == "date":
            got3 = _date_after(ctx, lab, stop)
            if got3:
                yield Span(got3[0], got3[1], "date", "label.dob", got3[2])
        elif lab.kind == "national_id":
            got = _code_after(ctx, lab, stop, 5)
            if got:
                yield Span(got[0], got[1], "national_id", lab.recognizer, 0.9)
        elif lab.kind == "mrn":
            # bare "Acc" is also Doppler acceleration ("Acc 1200 cm/s2"): want a longer number
            short = fold(text[lab.start:lab.end]).rstrip(" .:#") == "acc" and not lab.colon
            got = _code_after(ctx, lab, stop, 6 if short else 4)
            if got:
                yield Span(got[0], got[1], "mrn", "mrn.label", 0.9 if lab.colon else 0.8)
        elif lab.kind == "phone":
            m = re.compile(r"[+(]?\d[\d ()\-./]{5,}\d").match(ctx.repaired, lab.end, stop)
            if m and sum(c.isdigit() for c in m.group()) >= 6:
                yield Span(m.start(), m.end(), "phone", "phone.label", 0.9)
        elif lab.kind == "email":
            m = re.compile(r"\S{5,}").match(text, lab.end, stop)
            if m and ("@" in m.group() or "." in m.group()):
                yield Span(m.start(), m.end(), "email", "email.label", 0.8)
        elif lab.kind == "postcode":
            m = re.compile(r"[A-Za-z0-9]{2,5}(?:[ \-][A-Za-z0-9]{2,4})?").match(ctx.repaired, lab.end, stop)
            if m and any(c.isdigit() for c in m.group()):
                yield Span(m.start(), m.end(), "postcode", "postcode.label", 0.85)
        elif lab.kind in ("address", "institution"):
            if not lab.colon:
                continue  # "Hospital" without a colon is left to the keyword recognizer
            got = _rest_of_field(text, lab, stop)
            if got and _has_proper_word(text[got[0]:got[1]], digits_ok=lab.kind == "address"):
                yield Span(got[0], got[1], lab.kind, lab.recognizer, 0.85)


def _has_proper_word(value: str, digits_ok: bool) -> bool:
    """An institution/address value has a capitalised non-technical word ("Centre: 40" has not)."""
    words = re.findall(r"[^\W\d_]{2,}", value)
    if not words:
        return False
    return any(w[0].isupper() and fold(w) not in TECH_WORDS for w in words) or (
        digits_ok and any(c.isdigit() for c in value))


# ---------------------------------------------------------------------------
# Dangling labels

_HONORIFIC_END = re.compile(r"(?<![\w])(?:Dr|Prof|Mr|Mrs|Ms|Dhr|Mevr|Mme|Herr|Frau)\.?[ ]*$")


def dangling(text: str) -> str | None:
    """Kind of the value a label at the very end of the line is waiting for."""
    body = text.rstrip(" \t\r\n:#=.-–—")
    if not body:
        return None
    labels = find_labels(text)
    if labels:
        last = labels[-1]
        # The label must reach the end: nothing but separators after it. And it
        # must read as a label: followed by ':'/'#'/'=', or alone on its line
        # ("St Mary's Hospital" ends with a label word but is itself the value).
        alone = not text[:last.start].strip(" \t|")
        separated = any(c in text[last.start:] for c in ":#=")
        if not text[last.end:].strip(" \t\r\n:#=.-–—") and (alone or separated):
            return last.kind
    if _HONORIFIC_END.search(body + " "):
        return "person_name"
    return None
