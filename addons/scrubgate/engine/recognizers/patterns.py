"""Value-shaped identifiers: national IDs, hospital numbers, dates, phones,
e-mail addresses and postcodes.

Each recognizer runs on the original text and on its digit-repaired twin (see
text.repair_digits); both have the same length, so offsets are interchangeable.
Bare numbers are flagged only when a checksum or a distinctive shape makes them
unlikely to be a measurement; with a label in front (labels.py) the shape alone
is enough.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterator

from . import checksums
from .span import Span
from .technical import scale_marks
from .text import OcrText, fold
from .vocab import MONTHS

# ---------------------------------------------------------------------------
# National identifiers

# Context words anywhere before the number raise confidence; they are the same
# words labels.py treats as labels, kept loose here (no separator needed).
_CONTEXT = {
    "uk10": re.compile(r"(?i)\b(?:NH[S5]|CHI|H\s?[&+]\s?C|HCN)\b"),
    "bsn": re.compile(r"(?i)\b(?:B[S5]N|burgerservice|sofi)"),
    "rrn": re.compile(r"(?i)\b(?:INSZ|NISS|RRN|rijksregister|national)"),
    "kvnr": re.compile(r"(?i)\b(?:KVNR|KV-?Nr|versicherten)"),
    "nir": re.compile(r"(?i)\b(?:NIR|s[ée]cu|INSEE|NSS)"),
    "ppsn": re.compile(r"(?i)\bPPS"),
    "ssn": re.compile(r"(?i)\b(?:SSN|SS#|social security)"),
    "mbi": re.compile(r"(?i)\b(?:MBI|medicare|HICN)"),
}

# Numbers must not be glued to other digits/letters: "(?<![\w.\-])" and the
# lookahead below keep us from reading 10 digits out of a 14-digit UID.
_END = r"(?![\w]|[ .\-/]\d)"
_TEN = re.compile(
    rf"(?<![\w.\-/])(?:\d{{10}}|\d{{3}}([ .\-])\d{{3}}\1\d{{4}}|\d{{6}}[ \-]\d{{4}}){_END}")
_NINE = re.compile(rf"(?<![\w.\-/])(?:\d{{9}}|\d{{4}}\.\d{{2}}\.\d{{3}}|\d{{3}}([ .])\d{{3}}\1\d{{3}}){_END}")
_SSN = re.compile(rf"(?<![\w.\-/])\d{{3}}([\- ])\d{{2}}\1\d{{4}}{_END}")
_RRN = re.compile(
    rf"(?<![\w.\-/])(?:\d{{11}}|\d{{2}}\.\d{{2}}\.\d{{2}}[\-. ]\d{{3}}[. ]\d{{2}}|\d{{6}}[\- ]\d{{3}}[\-. ]\d{{2}}){_END}")
_KVNR = re.compile(r"(?<![\w\-])[A-Z][ ]?\d{9}(?![\w])")
_NIR = re.compile(
    rf"(?<![\w.\-/])[1-478][ ]?\d{{2}}[ ]?\d{{2}}[ ]?(?:\d{{2}}|2[ABab])[ ]?\d{{3}}[ ]?\d{{3}}[ ]?\d{{2}}{_END}")
_PPSN = re.compile(r"(?<![\w\-])\d{7}[ ]?[A-W][A-IW]?(?![\w])")
_MBI = re.compile(r"(?<![\w\-])[1-9][A-Z][A-Z0-9]\d-?[A-Z][A-Z0-9]\d-?[A-Z]{2}\d{2}(?![\w\-])")


def _compact(s: str) -> str:
    return re.sub(r"[ .\-/]", "", s)


def _boost(text: str, scheme: str, start: int, base: float) -> float:
    window = text[max(0, start - 40):start]
    return min(0.99, base + 0.15) if _CONTEXT[scheme].search(window) else base


def national_ids(ctx: OcrText) -> Iterator[Span]:
    for s in ctx.variants():
        for m in _TEN.finditer(s):
            n = _compact(m.group())
            if not checksums.nhs_number(n):
                continue
            if checksums.hc_number(n):
                name, base = "hc_number", 0.85
            elif checksums.chi_number(n):
                name, base = "chi_number", 0.8
            elif n[0] in "4679":
                name, base = "nhs_number", 0.85
            else:  # mod-11 valid but outside the issued ranges: still a 10-digit record number
                name, base = "nhs_number", 0.55
            yield Span(m.start(), m.end(), "national_id", name, _boost(s, "uk10", m.start(), base))
        for rx, clean, valid, name, base in _CHECKED_IDS:
            for m in rx.finditer(s):
                if valid(clean(m.group())):
                    yield Span(m.start(), m.end(), "national_id", name, _boost(s, name, m.start(), base))


def _no_spaces(v: str) -> str:
    return v.replace(" ", "")


def _no_dashes(v: str) -> str:
    return v.replace("-", "")


# The other schemes: (pattern, cleanup, checksum, recognizer and context key, base confidence).
_CHECKED_IDS = (
    (_NINE, _compact, checksums.bsn, "bsn", 0.6),
    (_SSN, _compact, checksums.ssn, "ssn", 0.75),
    (_RRN, _compact, checksums.rrn, "rrn", 0.8),
    (_KVNR, _no_spaces, checksums.kvnr, "kvnr", 0.8),
    (_NIR, _no_spaces, checksums.nir, "nir", 0.85),
    (_PPSN, _no_spaces, checksums.ppsn, "ppsn", 0.75),
    (_MBI, _no_dashes, checksums.mbi, "mbi", 0.75),
)


# Bare hospital-number shape: 2-3 capitals then 6-8 digits ("RX0042113").
_MRN_SHAPE = re.compile(r"(?<![\w\-./])(?:[A-Z]{1,3}\d{6,8}|[A-Z]{2,4}-\d{5,8})(?![\w\-])")
# Nine or more digits in one run, inside a line ("ZZZ TEST PATIENT 00079241539"):
# no measurement, time or scale mark has that many.
_LONG_NUMBER = re.compile(r"(?<![\w.,:/\-])\d{9,15}(?![\w.,:/\-])")
# ... and a long code of digits with a letter or two inside ("2014R9571996").
_LONG_CODE = re.compile(r"(?<![\w.,:/\-])(?=[A-Z0-9]*[A-Z])[A-Z0-9]{10,16}(?![\w.,:/\-])")


# A line that is nothing but a long number: on a scanner's banner that is the
# patient or accession number printed without its label (real ultrasounds do
# this). Measurements carry units or decimals, clocks colons.
_BARE_NUMBER = re.compile(r"^\s*#?\s*(\d(?: ?\d){6,12})\s*$")


def mrn_shapes(ctx: OcrText) -> Iterator[Span]:
    for s in ctx.variants():
        for m in _MRN_SHAPE.finditer(s):
            yield Span(m.start(), m.end(), "mrn", "mrn.shape", 0.5)
        for m in _BARE_NUMBER.finditer(s):
            if not scale_marks(m.group(1).split()):
                yield Span(m.start(1), m.end(1), "mrn", "mrn.bare_number", 0.5)
        for m in _LONG_NUMBER.finditer(s):
            yield Span(m.start(), m.end(), "mrn", "mrn.long_number", 0.5)
        for m in _LONG_CODE.finditer(s):
            code = m.group()
            if sum(c.isdigit() for c in code) >= 8 and sum(c.isalpha() for c in code) <= 3:
                yield Span(m.start(), m.end(), "mrn", "mrn.long_code", 0.5)


# ---------------------------------------------------------------------------
# Dates

def _month_alternation() -> str:
    # Accented spellings OCR may keep, plus the folded keys of MONTHS.
    extra = ["jänner", "jän", "février", "févr", "fév", "märz", "mär", "août", "décembre", "déc"]
    words = sorted(set(MONTHS) | set(extra), key=len, reverse=True)
    return "|".join(re.escape(w) for w in words)


_MON = rf"(?P<mon>(?i:{_month_alternation()}))\.?"
_YEAR4 = r"(?:19|20)\d{2}"
_B = r"(?<![\w./\-])(?<!\d:)"  # start: not inside another number/word/time
_E = r"(?![\w]|[./\-:]\d)"  # end: likewise
_E_ISO = r"(?:(?=T ?\d\d:\d\d)|(?![\w]|[./\-:]\d))"  # ... or an ISO 8601 'T' and a time
# ... or a time glued on, as OCR reads a label's "08.03.2021 07:54" ("08.03.202107:54"):
# after a four-digit year or a two-digit day only, so "08.03.20" never ends a date there
_E_GLUED = r"(?:(?<=\d{4})|(?<=[\-/.]\d{2}))(?=\d{2}:\d{2}(?!\d))"
_TIME = r"\d{1,2}[:h]\d{2}(?::\d{2}(?:[.,]\d{1,6})?)?(?:[ ]?[AaPp]\.?[Mm]\.?)?"

_DATE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("ymd", re.compile(rf"{_B}(?P<y>{_YEAR4})(?P<sep>[\-/.])(?P<m>\d{{1,2}})(?P=sep)(?P<d>\d{{1,2}})"
                       rf"(?:{_E_ISO}|{_E_GLUED})")),
    ("dmy", re.compile(
        rf"{_B}(?P<a>\d{{1,2}})(?P<sep>[/.\-])(?P<b>\d{{1,2}})(?P=sep)(?P<y>\d{{4}}|\d{{2}})(?:{_E}|{_E_GLUED})")),
    # OCR loses the space before a date ("JalhayM30/07/1972(F)" from a curled label): with
    # a four-digit year the shape is sure enough to be read glued to a word.
    ("dmy", re.compile(
        rf"(?<=[^\W\d_])(?P<a>\d{{1,2}})(?P<sep>[/.\-])(?P<b>\d{{1,2}})(?P=sep)(?P<y>{_YEAR4}){_E}")),
    ("ymd_compact", re.compile(rf"{_B}(?P<y>{_YEAR4})(?P<m>\d{{2}})(?P<d>\d{{2}}){_E}")),
    ("dmy_text", re.compile(
        rf"{_B}(?P<d>\d{{1,2}})(?:st|nd|rd|th|er|\.)?[ \-/.]?{_MON}(?![^\W\d_])[ \-/.,]{{0,2}}"
        rf"(?P<y>\d{{4}}|\d{{2}}){_E}")),
    ("mdy_text", re.compile(
        rf"(?<![\w]){_MON}(?![^\W\d_])[ \-]?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?[ \-](?P<y>\d{{4}}){_E}")),
    ("ymd_text", re.compile(
        rf"{_B}(?P<y>{_YEAR4})[ \-/]{_MON}(?![^\W\d_])[ \-/](?P<d>\d{{1,2}}){_E}")),
]
_SEP_NAME = {"/": "slash", "-": "dash", ".": "dot"}
_TIME_AFTER = re.compile(rf"(?:[ T,]{{1,3}}|,[ ]?|[ ]?-[ ]?){_TIME}(?![\d:])")
_TIME_BEFORE = re.compile(rf"(?<![\d:]){_TIME}[ ,]{{1,3}}$")
_VERSIONISH = re.compile(r"(?i)(?:\bv|version|ver\.?|rev\.?|release|build|sw|fw|firmware|software)[ ]?$")


def _real(y: int, m: int, d: int) -> bool:
    if not 1900 <= y <= 2099:
        return False
    try:
        _dt.date(y, m, d)
    except ValueError:
        return False
    return True


def _year(raw: str) -> int:
    return int(raw) if len(raw) == 4 else 2000 + int(raw)  # any 2-digit year is some real year


def _check(name: str, m: re.Match[str]) -> tuple[str, float] | None:
    g = m.groupdict()
    if name == "dmy":
        a, b, y = int(g["a"]), int(g["b"]), _year(g["y"])
        # Day-month or month-day: scanners print both; either reading makes it a date.
        if not (_real(y, b, a) or _real(y, a, b)):
            return None
        conf = 0.9 if len(g["y"]) == 4 else 0.65
        return f"date.dmy_{_SEP_NAME[g['sep']]}", conf
    if name in ("ymd", "ymd_compact"):
        if not _real(int(g["y"]), int(g["m"]), int(g["d"])):
            return None
        return f"date.{name}", 0.9 if name == "ymd" else 0.7
    month = MONTHS.get(fold(g["mon"]))
    if month is None or not _real(_year(g["y"]), month, int(g["d"])):
        return None
    return f"date.{name}", 0.9


def iter_dates(s: str) -> Iterator[tuple[int, int, str, float]]:
    """(start, end, recognizer, confidence) of every date in s, with an adjacent
    time of day folded into the span ("04/03/2018 14:32:05")."""
    for name, rx in _DATE_PATTERNS:
        for m in rx.finditer(s):
            checked = _check(name, m)
            if checked is None:
                continue
            if _VERSIONISH.search(s, max(0, m.start() - 12), m.start()):
                continue  # "v2.10.12", "Software 1.5.10": a version, not a date
            start, end = m.span()
            after = _TIME_AFTER.match(s, end)
            if after:
                end = after.end()
            before = _TIME_BEFORE.search(s, max(0, start - 20), start)
            if before:
                start = before.start()
            yield start, end, checked[0], checked[1]


# A clock time with seconds or AM/PM ("2:56:22 PM", "14:02:11"): a study or
# acquisition time on a scanner's banner, which Annex E removes with the date.
# Durations and rates ("00:03", "1:2") have neither.
_CLOCK = re.compile(r"(?<![\w:.])(?:[01]?\d|2[0-3]):[0-5]\d"
                    r"(?::[0-5]\d(?:[.,]\d{1,6})?(?:[ ]?[AaPp]\.?[Mm]\.?)?|[ ]?[AaPp]\.?[Mm]\.?)(?![\w:])")


def dates(ctx: OcrText) -> Iterator[Span]:
    for s in ctx.variants():
        for start, end, name, conf in iter_dates(s):
            yield Span(start, end, "date", name, conf)
        for m in _CLOCK.finditer(s):
            yield Span(m.start(), m.end(), "date", "date.clock_time", 0.6)


# Age next to a date of birth: "45Y", "045Y", "(45 yrs)", "45 J", "45 ans".
AGE = re.compile(
    r"[ ,]*\(?[ ]?\d{1,3}[ ]?(?i:y(?:rs?|ears?)?|j(?:r|aar|ahre?)?|ans?|a)\.?\)?(?![\w])")


# ---------------------------------------------------------------------------
# Phones, e-mail, postcodes

_PHONE_INTL = re.compile(
    r"(?<![\w+])\+[1-9]\d{0,2}[ .\-]?(?:\(0\)[ .\-]?)?\(?\d{1,4}\)?(?:[ .\-]?\d{2,4}){1,4}(?![\w]|[ .\-]\d)")
_PHONE_NAT = re.compile(
    r"(?<![\w+/.\-:])\(?0\d{1,4}\)?(?:[ .\-/]?\d{2,8}){1,4}(?![\w]|[ .\-/:]\d)")
_PHONE_US = re.compile(
    r"(?<![\w\-.])(?:\(\d{3}\)[ ]?\d{3}[ .\-]\d{4}|[2-9]\d{2}([.\-])\d{3}\1\d{4})(?![\w]|[.\-]\d)")


def phones(ctx: OcrText) -> Iterator[Span]:
    for s in ctx.variants():
        for m in _PHONE_INTL.finditer(s):
            n = sum(c.isdigit() for c in m.group())
            if 9 <= n <= 15:
                yield Span(m.start(), m.end(), "phone", "phone.intl", 0.85)
        for m in _PHONE_NAT.finditer(s):
            raw = m.group()
            n = sum(c.isdigit() for c in raw)
            grouped = any(c in " .-/()" for c in raw)
            # 9 digits: German and French area numbers ("089 123456", "04 171 75 29")
            if grouped and (10 <= n <= 12 or n == 9 and not raw.lstrip("(").startswith("00")):
                yield Span(m.start(), m.end(), "phone", "phone.national", 0.75)
            elif not grouped and n in (10, 11) and raw[:2] in ("06", "07"):
                # unseparated mobile numbers (NL 06..., UK 07...)
                yield Span(m.start(), m.end(), "phone", "phone.national", 0.6)
        for m in _PHONE_US.finditer(s):
            yield Span(m.start(), m.end(), "phone", "phone.us", 0.7)


_EMAIL = re.compile(
    r"(?<![\w.+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]*[ ]?@[ ]?[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}(?![\w])")


def emails(ctx: OcrText) -> Iterator[Span]:
    for m in _EMAIL.finditer(ctx.text):
        yield Span(m.start(), m.end(), "email", "email", 0.95)


# Royal Mail shape: outward A9, A99, A9A, AA9, AA99, AA9A; inward 9AA.
_UK_POSTCODE = re.compile(
    r"(?<![\w\-])(?:[A-PR-UWYZ](?:\d{1,2}|[A-HK-Y]\d{1,2}|\d[A-HJKPSTUW]|[A-HK-Y]\d[ABEHMNPRV-Y])"
    r"[ ]?\d[ABD-HJLNP-UW-Z]{2}|GIR[ ]?0AA)(?![\w\-])")
_NL_POSTCODE = re.compile(r"(?<![\w\-.,/])[1-9]\d{3}[ ]?(?!SA|SD|SS)[A-Z]{2}(?![\w\-])")
# Letter pairs that follow a 4-digit number on viewers as units/modalities, not postcodes.
_NL_NOT = frozenset(
    "MS HZ KV MA CM MM DB PX CT MR US DX CR XA NM PT RF OT SC KB MB GB AM PM ML MG KG HU FR TI MI ST SE "
    "IM WL WW AX UM NS OF TR TE BW RT LT AP PA".split())


def postcodes(ctx: OcrText) -> Iterator[Span]:
    s = ctx.text
    for m in _UK_POSTCODE.finditer(s):
        yield Span(m.start(), m.end(), "postcode", "postcode.uk", 0.8 if " " in m.group() else 0.65)
    for m in _NL_POSTCODE.finditer(s):
        if m.group()[-2:] not in _NL_NOT:
            yield Span(m.start(), m.end(), "postcode", "postcode.nl", 0.6)
