"""Is a line plain viewer annotation (kVp, W/L, probe, depth ...)?

Used two ways: callers keep such lines untouched, and the lone-surname rule
refuses to fire on a line that has any technical content ("LONG" next to
"Depth 16cm" is an axis label, not Mr Long).
"""

from __future__ import annotations

import re

from .text import fold
from .vocab import COMMON_WORDS, TECH_WORDS

_TOKEN = re.compile(r"[^\s:=,;|()\[\]{}<>]+")
_NUMBER = re.compile(
    r"^[<>~±+\-]?\.?\d+(?:[.,]\d+)?(?:[x×/:\\\-]\.?-?\d+(?:[.,]\d+)?)*(?P<unit>%|°|[a-zA-Zµ/²³·°]+)?\.?$")
# Transducers and sequence names: C5-1, L12-5, P4-2, 9L4, 4C1-S, T2, B0, S1
_PROBE = re.compile(r"^(?:[A-Z]{1,3}\d{1,2}(?:-\d{1,2})?[A-Za-z]?|\d{1,2}[A-Z]{1,3}\d{0,2}(?:-\d{1,2})?[A-Z]?)$")
# Gestational age "28w3d", sequence/b-values "b1000", device codes "CT01", "S2000", "VE11C"
_GA = re.compile(r"^\d{1,2}w\d?d?$")
_ALNUM_CODE = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9+\-]{2,10}$")
# "14:32", "14:32:05", "v4.5.1", "2018.03.04" build stamps: viewer furniture.
_TIME_OR_VERSION = re.compile(r"^(?:\d{1,2}:\d{2}(?::\d{2})?|[vV]?\d+(?:\.\d+){2,3}[a-z]?)$")
_CONTRAST_MARK = re.compile(r"^[A-Z][+\-]$")  # C+ / C-
_UNITS = frozenset(
    "t cm mm m um µm nm mhz khz hz db dba ms s sec msec % ° kv kvp ma mas mgy msv gy bpm fps x ml cc "
    "cm/s mm/s m/s g/ml g kg dgycm2 cgycm2 gycm2 mgycm2 ugym2 cm2 cm² mm2 mm² cm3 cm³ mgycm mgy·cm mgy*cm mv mmhg min ppm".split())
_NEUTRAL = frozenset("of x / - + & and de van op von le la am pm".split())


def _classify(tok: str) -> str:
    """'tech', 'number', 'neutral' or 'word'."""
    t = tok.strip(".'\"")
    if not t:
        return "neutral"
    if _TIME_OR_VERSION.match(t):
        return "tech"
    m = _NUMBER.match(t)
    if m:
        unit = m.group("unit")
        if unit is None:
            return "number"
        if re.sub(r"[*·.]", "", fold(unit)) in _UNITS:
            return "tech"
    if len(t) == 1 and t.isalpha():
        # W/L/C window letters and R/L/A/P/H/F markers are technical; other letters neutral
        return "tech" if fold(t) in TECH_WORDS else "neutral"
    if _PROBE.match(t) or _GA.match(t) or _ALNUM_CODE.match(t) or _CONTRAST_MARK.match(t):
        # short letter+digit codes: probes, sequences, device models. (An identifier
        # of that shape is caught by find_identifiers, which is_technical consults.)
        return "tech"
    f = fold(t)
    if f in TECH_WORDS or f in _UNITS:
        return "tech"
    if f in _NEUTRAL or f in COMMON_WORDS or not any(c.isalnum() for c in f):
        return "neutral"
    # W/L, WW/WL, R/L markers, 'Im/Se' pairs: every piece technical
    if "/" in f and all(p in TECH_WORDS or p.isdigit() for p in f.split("/") if p):
        return "tech"
    return "word"


def tech_profile(text: str) -> tuple[int, int, int]:
    """(technical tokens, plain numbers, unknown words) on the line."""
    tech = numbers = words = 0
    for tok in _TOKEN.findall(text):
        kind = _classify(tok)
        if kind == "tech":
            tech += 1
        elif kind == "number":
            numbers += 1
        elif kind == "word":
            words += 1
    return tech, numbers, words


def looks_technical(text: str) -> bool:
    """Shape test only (no identifier search): at least one technical token and
    few unknown words ('FHR 145 bpm' yes, 'Canon Medical Systems' no)."""
    tech, numbers, words = tech_profile(text)
    return tech >= 1 and words <= min(2, (tech + numbers) // 2)


def has_tech_content(text: str) -> bool:
    return tech_profile(text)[0] > 0


# Fields a patient banner carries that are clinical, not identifying: allergies, weight,
# height, blood group, isolation, resuscitation status, diagnosis (EN/NL/DE/FR, folded
# word beginnings).
_CLINICAL_FIELDS = ("allerg", "diagnos", "weight", "gewicht", "poids", "height", "lengte", "grosse", "taille",
                    "bloodgroup", "bloedgroep", "blutgruppe", "groupesanguin", "isolat", "isolier", "reanim",
                    "resus", "nkda")


def clinical_field(text: str) -> bool:
    """A banner's clinical field, with or without its value: 'Allergies: aucune',
    'Geen allergieën', 'Weight 72 kg'. No digit run long enough to be an ID."""
    words = [fold(w) for w in _TOKEN.findall(text)]
    if not words or len(words) > 6 or re.search(r"\d{5,}", text):
        return False
    joined = ["".join(words[i:i + 2]) for i in range(len(words))]
    return any(w.startswith(_CLINICAL_FIELDS) for w in words + joined)


def only_codes_and_numbers(text: str) -> bool:
    """Every token a bare number or a letter-digit code, no unit or technical word,
    and five digits or more: 'RAD73410', '2 00 01 s0 550 672 61'. Shaped like a
    technical code, but in a patient banner it is an ID that was not recognised."""
    tokens = [t.strip(".'\"") for t in _TOKEN.findall(text)]
    tokens = [t for t in tokens if t]
    if not tokens or sum(c.isdigit() for c in text) < 5:
        return False
    numbers = []
    for t in tokens:
        number = _NUMBER.match(t)
        if number and number.group("unit") is None:
            numbers.append(t)
            continue
        if number:
            return False  # a measurement: "12cm", "5.0MHz"
        if _ALNUM_CODE.match(t) and not _TIME_OR_VERSION.match(t) and fold(t) not in TECH_WORDS | _UNITS:
            continue
        return False
    return not (len(numbers) == len(tokens) and scale_marks(numbers))


def scale_marks(numbers: list[str]) -> bool:
    """'0 10 20 30 40', '5 10 15': an axis or depth scale read as one line, not a number."""
    if len(numbers) < 3 or not all(n.isdecimal() for n in numbers):
        return False
    steps = {int(b) - int(a) for a, b in zip(numbers, numbers[1:])}
    return len(steps) == 1 and steps.pop() > 0
