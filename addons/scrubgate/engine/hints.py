"""Known identifying values, matched fuzzily against OCR'd lines.

A DICOM header says who the patient is; an ultrasound's burned-in banner
often says it again, in another format and through OCR noise ("SMITH^JOHN"
in the header, "Smith, John" on screen; "19650412" in the header,
"12/04/1965" on screen; "RX04455" read as "RXO4455"). The recognizers find
identifiers by their shape; hints find them by their value, which catches the
shapes the recognizers do not know.

Values stay in memory for one scan: nothing here logs, raises or returns them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Characters OCR confuses, folded to one form on both sides before comparing.
_FOLD = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "|": "1", "!": "1",
                       "S": "5", "B": "8", "Z": "2", "G": "6"})
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MIN_NAME_PART = 3  # "LI", "NG": too short to tell from clutter
_MIN_CODE = 4  # IDs shorter than this match too much technical text
# Name components that are DICOM placeholders or titles, not identifiers.
_NOT_NAMES = {"ANONYMOUS", "ANON", "UNKNOWN", "NONE", "PATIENT", "TEST", "MR", "MRS", "MS", "DR", "PROF"}


@dataclass(frozen=True)
class _Needle:
    kind: str
    compact: str  # folded alphanumerics
    fuzzy: int  # substitutions allowed over the needle's length
    word: bool = False  # a name part: compared word by word, not inside run-together text


def _compact(text: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", text.upper()).translate(_FOLD)


@lru_cache(maxsize=64)
def needles(hints: tuple[tuple[str, str], ...]) -> tuple[_Needle, ...]:
    out: list[_Needle] = []
    for kind, value in hints:
        value = value.strip()
        if kind == "person_name":
            parts = [p for p in re.split(r"[\^\s,.]+", value.upper())
                     if len(p) >= _MIN_NAME_PART and p not in _NOT_NAMES]
            out.extend(_Needle(kind, _compact(p), 1 if len(p) >= 6 else 0, word=True) for p in parts)
        elif kind == "date":
            out.extend(_Needle(kind, c, 0) for c in _date_forms(value))
        else:
            c = _compact(value)
            if len(c) >= _MIN_CODE:
                out.append(_Needle(kind, c, len(c) // 7))
    return tuple(dict.fromkeys(n for n in out if n.compact))


def _date_forms(value: str) -> list[str]:
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", value.strip()[:8]) if len(value.strip()) >= 8 else None
    if not m:
        return []
    y, mo, d = m.groups()
    month = int(mo)
    forms = [y + mo + d, d + mo + y, mo + d + y, d + mo + y[2:], mo + d + y[2:], y[2:] + mo + d]
    if 1 <= month <= 12:
        name = _MONTHS[month - 1]
        forms += [d + name + y, name + d + y, str(int(d)) + name + y, d + name + y[2:]]
    return [_compact(f) for f in forms]


def match(text: str, hints: tuple[tuple[str, str], ...]) -> str | None:
    """The kind of the first hint found in `text`, or None."""
    if not hints:
        return None
    hay = _compact(text)
    if not hay:
        return None
    words = [_compact(w) for w in re.split(r"[^0-9A-Za-z]+", text) if w]
    for needle in needles(hints):
        if needle.word:
            # "LEE" must not match "SLEEP"; a longer part may be glued to its
            # neighbour by OCR ("SMITHJOHN").
            if any(_same(w, needle) or (len(needle.compact) >= 5 and needle.compact in w) for w in words):
                return needle.kind
        elif _contains(hay, needle.compact, needle.fuzzy):
            return needle.kind
    return None


def _same(word: str, needle: _Needle) -> bool:
    return len(word) == len(needle.compact) and _contains(word, needle.compact, needle.fuzzy)


def _contains(hay: str, needle: str, fuzzy: int) -> bool:
    if needle in hay:
        return True
    if fuzzy == 0 or len(needle) > len(hay):
        return False
    n = len(needle)
    for i in range(len(hay) - n + 1):
        misses = 0
        for a, b in zip(hay[i:i + n], needle):
            if a != b:
                misses += 1
                if misses > fuzzy:
                    break
        else:
            return True
    return False
