"""Text plumbing: accent folding, OCR digit repair, segments and words.

OCR confuses look-alike glyphs (O/0, l/1, S/5, B/8 ...). `repair_digits`
fixes them only inside number-like chunks and does it one character for one
character, so the repaired string has the same length as the original and every
offset found in it is already an offset into the original text (the mapping
back is the identity; `OcrText.to_original` exists so callers never have to
rely on that silently).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_FOLD_EXTRA = str.maketrans({
    "ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d",
    "Đ": "D", "œ": "oe", "Œ": "OE", "ı": "i", "’": "'", "‘": "'",
})


@lru_cache(maxsize=8192)
def fold(word: str) -> str:
    """Lowercase, strip accents: 'Müller' -> 'muller', 'Zoë' -> 'zoe'."""
    word = word.translate(_FOLD_EXTRA)
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


# Glyphs OCR reads instead of digits, and the digit they stand for.
CONFUSABLE = {
    "O": "0", "o": "0", "Q": "0", "D": "0", "l": "1", "I": "1", "|": "1", "i": "1", "!": "1",
    "S": "5", "s": "5", "B": "8", "Z": "2", "z": "2", "G": "6", "g": "9", "q": "9", "T": "7",
}
_CONFUSABLE_TABLE = str.maketrans(CONFUSABLE)
# A chunk: letters/digits (and | ! which OCR emits for 1) joined by single . / - .
_CHUNK = re.compile(r"[A-Za-z0-9|!](?:[A-Za-z0-9|!]|[./\-](?=[A-Za-z0-9|!]))*")
_LEAD = re.compile(r"^[A-Za-z]+")
_TRAIL = re.compile(r"[A-Za-z]+$")


def _has_plain_letter(s: str) -> bool:
    return any(c.isalpha() and c not in CONFUSABLE for c in s)


def repair_digits(text: str) -> str:
    """Replace look-alike glyphs by digits inside chunks that are mostly digits.

    A chunk's letter prefix/suffix is left alone when it holds a letter OCR
    never confuses with a digit ('RX0042l13' keeps 'RX', '16cm' keeps 'cm').
    The rest is repaired when it has >= 2 real digits and no more look-alikes
    than digits ('59l9' -> '5919', 'O4/O3/2O18' -> '04/03/2018', but 'D0B' and
    'T2' stay). Same length in, same length out.
    """
    out = None
    for m in _CHUNK.finditer(text):
        chunk = m.group()
        if not any(c.isdigit() for c in chunk):
            continue
        lo, hi = 0, len(chunk)
        lead = _LEAD.match(chunk)
        if lead and _has_plain_letter(lead.group()):
            lo = lead.end()
        trail = _TRAIL.search(chunk, lo)
        if trail and _has_plain_letter(trail.group()):
            hi = trail.start()
        core = chunk[lo:hi]
        digits = sum(c.isdigit() for c in core)
        looks = sum(c in CONFUSABLE for c in core)
        if looks == 0 or digits < 2 or looks > digits or _has_plain_letter(core):
            continue
        if out is None:
            out = list(text)
        start = m.start() + lo
        for i, c in enumerate(core):
            if c in CONFUSABLE:
                out[start + i] = CONFUSABLE[c]
    return text if out is None else "".join(out)


# Where one field on a viewer line ends and the next begins: a bar, a tab, a
# newline, a semicolon or a long run of spaces (OCR renders column gaps as spaces).
_BOUNDARY = re.compile(r"[ \t]*[|;\n\r\t][ \t]*| {3,}")


class OcrText:
    """One OCR'd line plus its digit-repaired twin and its field boundaries."""

    __slots__ = ("text", "repaired", "bounds")

    def __init__(self, text: str) -> None:
        self.text = text
        self.repaired = repair_digits(text)
        self.bounds = [(m.start(), m.end()) for m in _BOUNDARY.finditer(text)]

    def variants(self) -> tuple[str, ...]:
        """The strings pattern recognizers run on (both, when repair changed anything)."""
        return (self.text,) if self.repaired == self.text else (self.text, self.repaired)

    @staticmethod
    def to_original(offset: int) -> int:
        # repair_digits is length-preserving: offsets are shared.
        return offset

    def segment_end(self, pos: int) -> int:
        for start, _end in self.bounds:
            if start >= pos:
                return start
        return len(self.text)

    def segment_start(self, pos: int) -> int:
        last = 0
        for start, end in self.bounds:
            if end <= pos:
                last = end
            else:
                break
        return last


LETTER = r"[^\W\d_]"
# A word: letters with inner apostrophes/hyphens ("O'Brien", "Jean-Pierre").
WORD = re.compile(rf"{LETTER}+(?:['’\-]{LETTER}+)*")

