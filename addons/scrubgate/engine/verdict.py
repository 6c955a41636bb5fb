"""What the engine says about one payload.

A `Verdict` carries the cleaned bytes (or a refusal) plus `Finding`s. Findings
name the *kind* of identifier, where it was and which recognizer saw it --
never the value. Everything here is safe to log, count and audit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .boxes import Box

# Closed sets: these strings end up as metric label values.
CONTENT_KINDS = ("image", "dicom", "archive", "other", "undecodable")

IDENTIFIER_KINDS = (
    "location",  # GPS coordinates
    "date",  # capture / modification dates
    "person_name",  # artist, owner, author
    "device_serial",  # body / lens serial numbers
    "unique_id",  # image unique IDs, document IDs
    "maker_note",  # opaque vendor blobs that often hold serials
    "free_text",  # captions, comments, descriptions: anything may be in there
    # found in the pixels (burned-in text, codes, faces)
    "national_id",  # NHS number, CHI, BSN, RRN, KVNR, NIR, PPSN, SSN, MBI ...
    "mrn",  # hospital / medical record numbers, accession numbers
    "phone",
    "email",
    "postcode",
    "address",
    "institution",  # hospital and clinic names
    "barcode",  # 1D codes, QR, DataMatrix: always taken as identifying
    "face",  # full-face photographs (HIPAA Safe Harbor identifier)
)

# Why a payload could not be passed on. Also a closed set (metric labels).
REFUSAL_REASONS = (
    "corrupt",  # truncated or malformed file of a known format
    "unsupported_format",  # a known format with no handler yet
    "too_large",  # pixel count, body size or payload count over a limit
    "undecodable",  # a carrier (encoding, multipart, base64) that does not decode
    "engine_error",  # a bug: the handler raised something unexpected
    "identifiable_face",  # a face in a photo, under a policy that blocks faces
    "ocr_unavailable",  # Tesseract or its language data is missing: cannot vouch for pixels
)


class Refused(Exception):
    """The engine will not pass this payload on.

    `reason` is one of REFUSAL_REASONS; `detail` is a short, value-free
    explanation that may be shown to users and written to logs.
    """

    def __init__(self, reason: str, detail: str):
        assert reason in REFUSAL_REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Finding:
    kind: str  # one of IDENTIFIER_KINDS
    source: str  # where it was: "exif", "xmp", "iptc", "comment", "png_text", "pixels", ...
    recognizer: str  # which rule saw it, e.g. "exif.gps_ifd"
    box: Box | None = None  # x, y, w, h in pixels, when it has one
    confidence: float = 1.0

    def as_dict(self) -> dict:
        d = {"kind": self.kind, "source": self.source, "recognizer": self.recognizer,
             "confidence": self.confidence}
        if self.box is not None:
            d["box"] = list(self.box)
        return d


@dataclass
class Verdict:
    """The outcome of cleaning one payload."""

    format: str  # "jpeg", "png", "webp", "dicom", ... or "unknown"
    content: str  # one of CONTENT_KINDS
    output: bytes | None = None  # cleaned bytes; None when refused
    refused: str | None = None  # a REFUSAL_REASONS value
    detail: str = ""  # value-free explanation, mostly for refusals
    actions: list[str] = field(default_factory=list)  # "metadata_removed", "pixels_redacted", ...
    removed: Counter = field(default_factory=Counter)  # metadata field -> count removed
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0  # time the engine spent on this payload
    ocr_seconds: float = 0.0  # ... of which reading text (0 when nothing was OCR'd)

    @property
    def changed(self) -> bool:
        return bool(self.actions)


def group_findings(findings: list[Finding]) -> dict[str, dict]:
    """{kind: {"count": n, "findings": [...]}}: the shape `--json` and reports print."""
    kinds: dict[str, dict] = {}
    for f in findings:
        entry = kinds.setdefault(f.kind, {"count": 0, "findings": []})
        entry["count"] += 1
        entry["findings"].append(f.as_dict())
    return kinds


def finish(verdict: Verdict, removed: Counter, findings, cleaned, original: bytes) -> Verdict:
    """The common tail of every lossless stripper: the cleaned copy goes out only when
    something was removed; otherwise the original bytes, untouched. `cleaned` may be
    a callable so the copy is only assembled when needed."""
    verdict.removed = removed
    verdict.findings = list(findings)
    if removed:
        verdict.actions.append("metadata_removed")
        verdict.output = cleaned() if callable(cleaned) else cleaned
    else:
        verdict.output = original
    return verdict
