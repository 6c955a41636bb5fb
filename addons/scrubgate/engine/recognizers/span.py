"""The result type of the text recognizers (re-exported by the package)."""

from __future__ import annotations

from dataclasses import dataclass

IDENTIFIER_KINDS_TEXT = (
    "person_name",
    "national_id",
    "mrn",
    "date",
    "phone",
    "email",
    "postcode",
    "institution",
    "address",
)


@dataclass(frozen=True)
class Span:
    """Where an identifier sits in one OCR'd line. Offsets index the text that was
    passed in; the value itself is never stored, so a Span is safe to log."""

    start: int
    end: int
    kind: str
    recognizer: str
    confidence: float
