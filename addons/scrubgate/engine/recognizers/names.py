"""Person names without a label: DICOM carets, 'LAST, First', titles, gazetteer.

Names are the hardest identifiers to tell from overlay text ("LONG AXIS",
"Mark", "Gain"), so every rule here is vetoed by the technical and common word
lists, and the gazetteer rule needs a *known given name* next to another
name-looking word before it fires.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from . import gazetteer
from .span import Span
from .text import LETTER, WORD, OcrText, fold
from .vocab import COMMON_WORDS, MONTHS, NAME_STOP, TECH_WORDS

_UP = r"[A-ZÀ-ÖØ-Þ]"
# A name word; "O'Brien"/"D'Souza" keep their apostrophe, "Jean-Pierre" its hyphen.
_NW = rf"(?:[A-Za-z]['’](?={_UP}))?{LETTER}+(?:-{LETTER}+)*"


# Month abbreviations next to a name word ("Jan Feb Mar" on a calendar widget);
# "Jan" itself stays a name.
_MONTH_WORDS = frozenset(MONTHS) - {"jan"}


def _vetoed(word: str) -> bool:
    w = fold(word.strip(".'’"))
    return w in TECH_WORDS or w in COMMON_WORDS or w in NAME_STOP or w in _MONTH_WORDS


# Titles that are only ever titles when not written in capitals (MR, MS, HR, Fr are
# also modalities and units).
_SURE_TITLES = frozenset({"mr", "mrs", "ms", "miss", "dhr", "mevr", "mej", "herr", "frau", "mme", "mlle"})


def _vetoed_after_title(word: str) -> bool:
    """After a sure title ("dhr.", "Mr") a capitalised word is a surname even when it is
    also a common or technical word ("dhr. Post", "Mr Long"); field names and months are not."""
    w = fold(word.strip(".'’"))
    return w in NAME_STOP or w in _MONTH_WORDS


# ---------------------------------------------------------------------------
# DICOM person name: LAST^FIRST^MIDDLE. OCR turns ^ into " ' * or ~; some
# viewers print LAST/FIRST.

_CARET = re.compile(
    rf"(?<![\w^])(?P<first>{_NW})(?P<rest>(?:[ ]?\^+[ ]?{_NW}|[ ]?[\"*~”“„`´/]+[ ]?{_NW}|(?<={LETTER}{LETTER})'(?={_UP}{{2}}){_NW})+)\^*")


# DICOM components may hold spaces: "GARCIA LOPEZ^MARIA", "SMITH^JOHN PAUL".
_CAPS_BEFORE = re.compile(rf"(?:(?<![\w])[A-ZÀ-ÖØ-Þ'’\-]{{2,}}[ ]){{1,2}}$")
_CAPS_AFTER = re.compile(rf"[ ][A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ'’\-]+(?![\w])")


def caret_names(ctx: OcrText) -> Iterator[Span]:
    text = ctx.text
    for m in _CARET.finditer(text):
        real_caret = "^" in m.group("rest")
        parts = [p for p in re.split(r"[ ]?\^+[ ]?|[ ]?[\"*~”“„`´'/]+[ ]?", m.group()) if p]
        if len(parts) < 2:
            continue
        vetoed = [_vetoed(p) for p in parts]
        if all(vetoed) or (not real_caret and any(vetoed)):
            continue
        if not real_caret and not all(p[0].isupper() for p in parts):
            continue
        start, end = m.start(), m.end()
        if real_caret and m.group("first").isupper():
            before = _CAPS_BEFORE.search(text, max(0, start - 40), start)
            if before:
                # keep the words nearest the caret, up to the first non-name ("PATIENT")
                pos = start
                for w in reversed(list(re.finditer(r"\S+", before.group()))):
                    if _vetoed(w.group()):
                        break
                    pos = before.start() + w.start()
                start = pos
            after = _CAPS_AFTER.match(text, end)
            if after and text[end - 1] != "^" and not _vetoed(after.group().strip()):
                end = after.end()
        yield Span(start, end, "person_name", "name.caret", 0.95 if real_caret else 0.7)


# ---------------------------------------------------------------------------
# 'LAST, First' / 'LAST, FIRST' (and 'Last, First' when the gazetteer agrees)

# Name particles; "van 't" often loses its apostrophe in OCR ("van t Houteveen").
_PART = r"(?i:van[ ]['’]?t|van[ ]het|van|de|der|den|von|vom|zu|le|la|du|des|di|da|del|dos|ter|ten)"
_COMMA = re.compile(
    rf"(?<![\w,])(?P<last>(?:{_PART}[ ]){{0,2}}{_NW}(?:[ ]{_PART}(?:[ ]{_PART})?[ ]{_NW})?),[ ]?(?P<first>{_NW}\.?)"
    rf"(?P<middle>(?:[ ](?:{_UP}\.|{_UP}(?![\w])|{_NW}))?)(?![\w])")
_VOWEL = re.compile(r"(?i)[aeiouyàâäéèêëïîôöüûù]")


def comma_names(ctx: OcrText) -> Iterator[Span]:
    given, surnames = gazetteer.given_names(), gazetteer.surnames()
    for m in _COMMA.finditer(ctx.text):
        last, first, middle = m.group("last"), m.group("first"), m.group("middle").strip()
        core = last.split()[-1]
        if not (core[0].isupper() and first[0].isupper()):
            continue
        if _vetoed(core) or (len(first.rstrip(".")) > 1 and _vetoed(first)):
            continue
        known = fold(first.rstrip(".")) in given or fold(core) in surnames
        last_caps = core.isupper() and len(re.sub(r"\W", "", core)) >= 2
        if len(first.rstrip(".")) == 1:
            # 'SMITH, J.': an initial only counts after a known or all-caps surname
            if not (fold(core) in surnames or (last_caps and len(core) >= 3)) or not _VOWEL.search(core):
                continue
        elif not _VOWEL.search(first) or not _VOWEL.search(core):
            continue
        elif first.endswith("."):
            first = first[:-1]
        # 'Title, Title' with neither word in the gazetteer is still most often a
        # name on a medical screen (made-up or rare surnames); 'Leeds, Yorkshire'
        # is caught too, and is an address anyway. Weak, so the pixel scanner
        # only trusts it on a line Tesseract read confidently.
        confidence = 0.85 if known else 0.7 if last_caps else 0.55
        end = m.start("first") + len(first)
        if middle and (len(middle.rstrip(".")) == 1 or not _vetoed(middle)):
            end = m.end("middle")
        yield Span(m.start(), end, "person_name", "name.comma", confidence)


# ---------------------------------------------------------------------------
# Titles: Mr/Mrs/Ms/Dr/Prof, Dhr./Mevr., Hr./Fr./Herr/Frau, M./Mme/Mlle

_ONE_TITLE = (r"(?:(?:Mr|Mrs|Ms|Miss|Mx|Dr|Drs|Prof|PD|Dhr|Mevr|Mej|Herr|Frau|Mme|Mlle|MR|MRS|MS|DR)\.?"
              r"|(?:M|Hr|Fr|Mw|Me|Pr|Ir|Sr|Sra|dr|prof|med|dent|rer[ ]nat|dhr|mevr|mw|mej)\."
              r"|Pr(?=[ ]+[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]))")  # French "Pr Dupont", never "PR 3.5"  # Dutch style: lower case mid-sentence
# One or more titles in a row: "Herr Dr. med.", "Prof. Dr.", "Mevr. dr."
_TITLE = re.compile(rf"(?<![\w.])(?:{_ONE_TITLE}[ ]+)+")
_TITLE_NAME = re.compile(
    rf"(?:{_UP}(?:\.[ ]?|[ ]))*(?:{_PART}[ ](?:{_PART}[ ])?)?(?P<w1>{_NW})(?:[ ](?P<w2>{_NW}))?(?![\w])")


def titled_names(ctx: OcrText) -> Iterator[Span]:
    text = ctx.text
    for m in _TITLE.finditer(text):
        n = _TITLE_NAME.match(text, m.end())
        if not n:
            continue
        w1, w2 = n.group("w1"), n.group("w2")
        lead = text[n.start():n.start("w1")]
        title = m.group().split()[-1].rstrip(".")
        sure_title = title.lower() in _SURE_TITLES and not title.isupper()  # "MR BRAIN" is MRI
        if not w1[0].isupper() or (_vetoed_after_title(w1) if sure_title else _vetoed(w1)):
            continue
        if "." not in lead and len(w1) < 2:
            continue
        end = n.end("w1")
        if w2 and w2[0].isupper() and not _vetoed(w2):
            end = n.end("w2")
        yield Span(n.start(), end, "person_name", "name.honorific", 0.85)


# ---------------------------------------------------------------------------
# Gazetteer

def _nameish(word: str) -> bool:
    return word[:1].isupper() and len(word) >= 3 and (word.istitle() or word.isupper()
                                                      or word[1:2].islower()) and not _vetoed(word)


def gazetteer_names(ctx: OcrText) -> Iterator[Span]:
    """Two adjacent capitalised words, one a known given name, the other a known
    surname or at least name-looking: 'John Zyxwort', 'SMITH JOHN'."""
    text = ctx.text
    given, surnames = gazetteer.given_names(), gazetteer.surnames()
    words = [m for m in WORD.finditer(text)]
    taken_until = -1
    for i in range(len(words) - 1):
        a, b = words[i], words[i + 1]
        if a.start() < taken_until:
            continue
        gap = text[a.end():b.start()]
        if gap not in (" ", "  "):
            continue
        wa, wb = a.group(), b.group()
        if not (_nameish(wa) and _nameish(wb)):
            continue
        if wa.isupper() != wb.isupper() and not (wa.isupper() and len(wa) > 1):
            # 'Mark LIVER'-style mixes are UI, not names; 'SMITH John' is fine.
            continue
        fa, fb = fold(wa), fold(wb)
        a_given, b_given = fa in given, fb in given
        a_sur, b_sur = fa in surnames, fb in surnames
        if not (a_given or b_given):
            continue
        both_known = (a_given or a_sur) and (b_given or b_sur)
        start, end = a.start(), b.end()
        # A third name word ("John Paul Smith", "Maria de Vries"): extend over one more.
        if i + 2 < len(words):
            c = words[i + 2]
            gap2 = text[b.end():c.start()]
            fc = fold(c.group())
            if gap2 == " " and _nameish(c.group()) and (fc in given or fc in surnames):
                end = c.end()
        taken_until = end
        yield Span(start, end, "person_name", "name.gazetteer", 0.8 if both_known else 0.6)


_SURNAME_INITIAL = re.compile(r"(?<![\w.^])(?P<sur>[A-ZÀ-Þ][A-ZÀ-Þ'’\-]{2,})[ ](?P<ini>[A-Z])\.?(?![\w^])")
# Title-case surname after "J " / "J. "; an ALL-CAPS one only after a dotted initial,
# because "R LOBE", "L OVARY" are side markers, not initials.
_INITIAL_SURNAME = re.compile(
    r"(?<![\w.^])(?:(?P<ini>(?:[A-Z](?:\.[ ]?|[ ])){1,2})(?P<sur>[A-ZÀ-Þ][a-zà-ÿ'’\-]{2,})"
    r"|(?P<ini2>(?:[A-Z]\.[ ]?){1,2})(?P<sur2>[A-ZÀ-Þ]{3,}))(?![\w^])")


def initial_names(ctx: OcrText) -> Iterator[Span]:
    """'SMITH J', 'J. Smith', 'J Smith': a known surname next to an initial."""
    surnames = gazetteer.surnames()
    for rx in (_SURNAME_INITIAL, _INITIAL_SURNAME):
        for m in rx.finditer(ctx.text):
            sur = m.group("sur") or m.groupdict().get("sur2")
            if fold(sur) in surnames and not _vetoed(sur):
                yield Span(m.start(), m.end(), "person_name", "name.gazetteer", 0.6)


_LINE_WORDS = re.compile(r"\S+")


def lone_surname(ctx: OcrText, technical: bool) -> Iterator[Span]:
    """A known surname in ALL CAPS standing alone on a non-technical line
    ('SMITH' on a wristband photo, maybe with '45Y M' beside it). Low confidence.
    The caller only asks when no other rule found a name on the line."""
    if technical:
        return
    words = [m for m in WORD.finditer(ctx.text) if len(m.group()) > 1]
    if len(words) != 1 or len(_LINE_WORDS.findall(ctx.text)) > 3:
        return
    m = words[0]
    w = m.group()
    if len(w) >= 3 and w.isupper() and fold(w) in gazetteer.surnames() and not _vetoed(w):
        yield Span(m.start(), m.end(), "person_name", "name.gazetteer_single", 0.4)
