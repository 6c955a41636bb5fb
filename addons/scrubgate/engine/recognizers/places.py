"""Institution names and street addresses.

An institution is found by its keyword (Hospital, Ziekenhuis, Klinikum, CHU,
UZ ...) and then widened over the capitalised words and connectors around it,
because the identifying part is the *name* ("St Mary's", "Gelderse Vallei"),
not the keyword.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .span import Span
from .text import OcrText, fold
from .vocab import NAME_STOP, TECH_WORDS

# Keywords that make a capitalised phrase an institution. Case-sensitive on the
# first letter: "the hospital" in running text is not a name.
_LONG_KEYWORDS = (
    r"Hospitals?|HOSPITALS?|Hosp\.|HOSP\.|Infirmary|INFIRMARY|Clinics?|CLINICS?|Clinique|CLINIQUE|Polyclinique"
    r"|Kliniek|KLINIEK|Polikliniek|Kliniken|KLINIKEN|Klinikum|KLINIKUM|Klinik|KLINIK|Uniklinik(?:um)?"
    r"|Universit[äa]tsklinikum|Universitaetsklinikum|Ziekenhuis|ZIEKENHUIS|Kinderziekenhuis|Gasthuis|GASTHUIS"
    r"|Krankenhaus|KRANKENHAUS|Spital|SPITAL|H[ôo]pital|H[ÔO]PITAL|H[ôo]pitaux|Centre[ ]Hospitalier"
    r"|CENTRE[ ]HOSPITALIER|Medical[ ]Cent(?:er|re)|MEDICAL[ ]CENT(?:ER|RE)|Health[ ]Cent(?:er|re)"
    r"|Imaging[ ]Cent(?:er|re)|Diagnostic[ ]Cent(?:er|re)|Medisch[ ]Centrum|Medizinisches[ ]Zentrum"
    r"|Health[ ]Board|(?:NHS[ ])?Foundation[ ]Trust|NHS[ ]Trust|Hospices?|HOSPICES?|Sanatorium|Ospedale|Policlinico"
    # compounds: Antoniusziekenhuis, Frauenklinik, Kantonsspital, Spaarne Gasthuis, Radboudumc
    r"|[A-ZÄÖÜ][\wäöüß\-]*(?:ziekenhuis|klinik|klinikum|kliniken|gasthuis|spital|krankenhaus|umc)"
    # OCR lost the space: "UZLeuven", "CHUNantes"
    r"|(?:UZ|AZ|CHU|CHR|UMC)[A-Z][a-zäöüéèç]{2,}"
)
_LONG = re.compile(rf"(?<![\w])(?:{_LONG_KEYWORDS})(?![\w])")
# Short abbreviations need a neighbouring proper word (rule in _short_ok).
_SHORT = re.compile(r"(?<![\w\-])(?P<kw>UMCG|UMCU|LUMC|MUMC\+?|VUmc|AMC|UMC|CHRU|CHU|CHR|CH|AZ|UZ|MC|NHS)(?![\w\-])")
_ALONE_OK = frozenset({"UMCG", "UMCU", "LUMC", "MUMC", "MUMC+", "VUmc"})
_NOT_AFTER_KEYWORD = frozenset({"no", "nr", "number", "num", "id", "#", "ref"})
_CONNECTORS = frozenset(
    "of de du des la le l' d' van der den het 't am an die für fur and & et en y del di 's upon on the "
    "st st. ste ste. sint saint sankt zu zum im".split())
_TOKEN = re.compile(r"[^\s|;]+")
# Words that cannot be part of an institution name even when capitalised.
_NOT_INSTITUTION = NAME_STOP | frozenset(
    "patient name date report study series image exam referring physician page scan id".split())


_SAINTS = frozenset({"st", "ste", "sint", "saint", "sankt", "sainte"})


def _proper(tok: str) -> bool:
    core = tok.strip(",.()'’")
    if fold(core) in _SAINTS and core[0].isupper():
        return True
    if not core or not core[0].isupper() or any(c.isdigit() for c in core):
        return False
    w = fold(core)
    if w in _NOT_INSTITUTION:
        return False
    # Title-case technical words can be part of a name ("Heart Hospital"), caps/short ones not.
    return not (w in TECH_WORDS and (core.isupper() or len(core) <= 3))


def _widen(text: str, start: int, end: int, seg_start: int, seg_end: int) -> tuple[int, int]:
    toks = [m for m in _TOKEN.finditer(text, seg_start, seg_end)]
    idx = [i for i, m in enumerate(toks) if m.start() < end and m.end() > start]
    if not idx:
        return start, end
    lo, hi = idx[0], idx[-1]
    # left: proper words, and connectors sitting between proper words
    n = 0
    while lo > 0 and n < 6:
        t = toks[lo - 1].group()
        if t.endswith(":"):
            break
        if _proper(t) or (fold(t) in _CONNECTORS and lo > 1 and _proper(toks[lo - 2].group())):
            lo -= 1
            n += 1
        else:
            break
    n = 0
    while hi + 1 < len(toks) and n < 6:
        t = toks[hi + 1].group()
        if _proper(t) and not t.endswith(":"):
            hi += 1
            n += 1
        elif fold(t) in _CONNECTORS and hi + 2 < len(toks) and _proper(toks[hi + 2].group()):
            hi += 2
            n += 2
        elif (fold(t) in _CONNECTORS and hi + 3 < len(toks) and fold(toks[hi + 2].group()) in _CONNECTORS
              and _proper(toks[hi + 3].group())):  # "de la Citadelle"
            hi += 3
            n += 3
        elif (t.startswith(("d'", "l'", "d’", "l’")) and len(t) > 2 and t[2:3].isupper()):
            hi += 1
            n += 1
        else:
            break
        if toks[hi].group().endswith(":"):
            break
    s, e = toks[lo].start(), toks[hi].end()
    while e > s and text[e - 1] in ",.:;)":
        e -= 1
    if text[s] == "(":
        s += 1
    return min(s, start), max(e, end)


def _next_token(text: str, pos: int) -> str:
    m = _TOKEN.search(text, pos)
    return fold(m.group().strip(".:")) if m else ""


def _short_ok(text: str, m: re.Match[str]) -> bool:
    kw = m.group("kw")
    if kw in _ALONE_OK:
        return True
    after = _TOKEN.search(text, m.end())
    after_tok = after.group() if after and text[m.end():after.start()] in (" ", "") else ""
    before = text[:m.start()].rstrip(" ")
    before_tok = before.split()[-1] if before.split() and text[len(before):m.start()] == " " else ""
    if kw == "NHS":
        return bool(after_tok) and _proper(after_tok) and fold(after_tok.strip(".:")) not in _NOT_AFTER_KEYWORD \
            and not after_tok.endswith(":")
    if kw in ("CHU", "CHR", "CHRU", "CH"):
        return bool(after_tok) and (fold(after_tok) in ("de", "du", "des", "d'")
                                    or after_tok.startswith(("d'", "d’"))
                                    or (len(after_tok) >= 3 and _proper(after_tok)))
    if kw in ("AZ", "UZ"):
        return bool(after_tok) and len(after_tok) >= 3 and _proper(after_tok)
    if kw == "MC":
        return bool(before_tok) and len(before_tok) >= 3 and _proper(before_tok)
    # UMC, AMC: a neighbour on either side, or alone with lower confidence (caller)
    return True


def institutions(ctx: OcrText) -> Iterator[Span]:
    """Keyword hits, with overlapping ones merged ('Leeds Teaching Hospitals' +
    'NHS Trust' -> one span)."""
    spans = sorted(_institution_hits(ctx), key=lambda s: (s.start, -s.end))
    merged: list[Span] = []
    for s in spans:
        if merged and s.start < merged[-1].end and s.recognizer == merged[-1].recognizer:
            last = merged[-1]
            merged[-1] = Span(last.start, max(last.end, s.end), "institution", last.recognizer,
                              max(last.confidence, s.confidence))
        else:
            merged.append(s)
    return iter(merged)


def _institution_hits(ctx: OcrText) -> Iterator[Span]:
    text = ctx.text
    for m in _LONG.finditer(text):
        if text[m.end():m.end() + 1] == ":" or _next_token(text, m.end()) in _NOT_AFTER_KEYWORD:
            continue  # "Hospital:" is a label, "Hospital No" an MRN label
        seg0, seg1 = ctx.segment_start(m.start()), ctx.segment_end(m.end())
        s, e = _widen(text, m.start(), m.end(), seg0, seg1)
        yield Span(s, e, "institution", "institution.keyword", 0.85 if (s, e) != m.span() else 0.6)
    for m in _SHORT.finditer(text):
        if text[m.end():m.end() + 1] == ":" or not _short_ok(text, m):
            continue
        seg0, seg1 = ctx.segment_start(m.start()), ctx.segment_end(m.end())
        s, e = _widen(text, m.start(), m.end(), seg0, seg1)
        alone = (s, e) == m.span()
        if alone and m.group("kw") in ("UMC", "AMC"):
            yield Span(s, e, "institution", "institution.keyword", 0.5)
        else:
            yield Span(s, e, "institution", "institution.keyword", 0.6 if alone else 0.85)
    for m in _SAINT.finditer(text):
        yield Span(m.start(), m.end(), "institution", "institution.saint", 0.5)


# "St Mary's", "St. Thomas'", "Sint-Jan" standing alone: usually a hospital.
_SAINT = re.compile(r"(?<![\w])(?:St\.?|Saint|Sint|Sankt|Ste\.?)[ \-][A-Z][a-z]+(?:['’]s|s['’])(?![\w])")

# ---------------------------------------------------------------------------
# Addresses

_CAPW = r"[A-ZÀ-Þ][\w'’\-]*"
_EN_STREET = re.compile(
    rf"(?<![\w.,/\-])\d{{1,4}}[A-Za-z]?,?[ ](?:{_CAPW}[ ]){{1,3}}"
    r"(?:Street|STREET|St\.?|Road|ROAD|Rd\.?|Lane|LANE|Ln\.?|Avenue|AVENUE|Ave\.?|Drive|Close|Crescent|Place"
    r"|Court|Gardens|Terrace|Square|Grove|Way|Row|Walk|Mews|Park|Hill|Boulevard|Blvd\.?)(?![\w])")
_FR_STREET = re.compile(
    rf"(?<![\w.,/\-])\d{{1,4}}(?:[ ]?(?:bis|ter))?,?[ ](?i:rue|avenue|av\.|boulevard|bd|place|chemin|all[ée]e"
    rf"|impasse|quai|route|cours)[ ](?:(?:de[ ]la|de|du|des|la|le)[ ]|[ld]['’])?{_CAPW}(?:[ ]{_CAPW}){{0,3}}")
# Dutch and Flemish (..straat, ..pad, ..hof, ..lei), then German (..straße, ..pfad, ..graben).
# Not "ring": English words end in it ("Monitoring 2"); "Ring" as its own word is below.
_STREET_SUFFIX = (r"straat|laan|weg|gracht|plein|kade|singel|dijk|dreef|steeg|pad|hof|baan|markt|park|veld"
                  r"|wal|haven|plantsoen|erf|lei|stra[ßs]e|strasse|str\.|gasse|allee|platz|damm|ufer|chaussee"
                  r"|pfad|graben|steig|stieg|kamp|zeile")
_NLDE_STREET = re.compile(
    rf"(?<![\w])(?:{_CAPW}[ ]){{0,2}}[A-ZÀ-Þ][\w'’\-]*(?:{_STREET_SUFFIX})[ ]\d{{1,4}}(?:[ ]?[a-zA-Z](?![\w]))?"
    rf"(?:[\-/]\d{{1,4}})?(?![\w])"
    rf"|(?<![\w]){_CAPW}[ ](?:Straße|Strasse|Str\.|Weg|Allee|Platz|Gasse|Ring|Laan|Straat|Plein|Gracht|Kade|Pad"
    rf"|Markt)"
    rf"[ ]\d{{1,4}}[a-z]?(?![\w])")


def addresses(ctx: OcrText) -> Iterator[Span]:
    text = ctx.text
    for rx in (_EN_STREET, _FR_STREET, _NLDE_STREET):
        for m in rx.finditer(text):
            # No technical-word veto: street names are ordinary words ("High", "Long", "Park").
            yield Span(m.start(), m.end(), "address", "address.street", 0.8)
