"""Which parts of an OCR'd line are patient identifiers.

Pure text in, spans out: OCR (Tesseract) reads burned-in text off screenshots,
phone photos of PACS/ultrasound screens and wristbands; these recognizers say
which character ranges are names, national IDs, hospital numbers, dates of
birth, phone numbers, e-mail addresses, postcodes, institutions and addresses,
so the caller can black out the matching boxes.

Design, in short:
- OCR noise is repaired in number-like chunks only, character for character, so
  offsets found in the repaired text are offsets into the original (text.py).
- Checksums make bare numbers trustworthy; labels ("NHS No", "DOB", "Name")
  make shapes trustworthy even when one digit was misread (labels.py).
- Names are vetoed by technical and common word lists, and the gazetteer only
  fires with a known given name next to another name-like word (names.py).
- No value ever leaves this package except as offsets: recognizer names are
  fixed strings, and nothing here logs or raises with the text.
"""

from __future__ import annotations

from . import labels, names, patterns, places
from .span import IDENTIFIER_KINDS_TEXT, Span
from .technical import clinical_field, has_tech_content, looks_technical, only_codes_and_numbers
from .text import OcrText

__all__ = ["IDENTIFIER_KINDS_TEXT", "Span", "dangling_label", "find_identifiers", "is_technical", "labelled_kind"]

_ALWAYS = (
    patterns.national_ids,
    patterns.mrn_shapes,
    patterns.dates,
    patterns.phones,
    patterns.emails,
    patterns.postcodes,
    labels.label_values,
    names.caret_names,
    names.comma_names,
    names.titled_names,
    names.gazetteer_names,
    names.initial_names,
    places.institutions,
    places.addresses,
)


def find_identifiers(text: str) -> list[Span]:
    """All identifier spans in one OCR'd line (or a short block). Sorted, possibly overlapping."""
    if not text or not text.strip():
        return []
    ctx = OcrText(text)
    best: dict[tuple[int, int, str], Span] = {}
    found = [span for recognizer in _ALWAYS for span in recognizer(ctx)]
    if not any(span.kind == "person_name" for span in found):
        found.extend(names.lone_surname(ctx, technical=has_tech_content(text)))
    ids = [s for s in found if s.kind == "national_id"]
    for span in found:
        if span.end <= span.start:
            continue
        if span.kind == "phone" and any(i.start <= span.start and span.end <= i.end for i in ids):
            continue  # "943-476-5919" after "NHS", "05 78 006 084 91" inside a NIR: not phones
        key = (span.start, span.end, span.kind)
        if key not in best or span.confidence > best[key].confidence:
            best[key] = span
    return sorted(best.values(), key=lambda s: (s.start, s.end, s.kind))


def dangling_label(text: str) -> str | None:
    """If the line ENDS with an identifier label and no value (e.g. 'Patient Name:' or 'DOB'),
    return the identifier kind the value (probably on the next line / next box) would have, else None."""
    if not text:
        return None
    return labels.dangling(text)


def labelled_kind(text: str) -> str | None:
    """The kind of an identifier label followed by a separator AND some value the
    recognizers could not make sense of ('Date de naissance: Zar' -- the date was
    misread). The line is a form field for that kind either way."""
    for lab in labels.find_labels(text):
        if lab.colon and any(c.isalnum() for c in text[lab.end:]):
            return lab.kind
    return None


def is_technical(text: str) -> bool:
    """True when the line is clearly technical viewer annotation with no identifier
    (e.g. 'kVp 120 mAs 250', 'W: 400 L: 40', 'C5-1 5.0MHz Gain 50 Depth 16cm')."""
    if not text or not text.strip() or not (looks_technical(text) or clinical_field(text)):
        return False
    return not any(s.confidence >= 0.5 for s in find_identifiers(text))
