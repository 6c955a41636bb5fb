"""The pure engine: bytes in, `Verdict` out.

Nothing here knows about mitmproxy, HTTP or policies; the CLI, the
benchmarks and the proxy's worker processes all call `sanitize()`.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field, replace

from . import archive, dicom, scanner
from .dicom import DicomOptions
from .formats import FORMATS, Format, bmp, gif, heif, jpeg, png, tiff, webp  # noqa: F401 (modules re-exported)
from .limits import FACES_MODES, TEXT_MODES, EngineLimits, FacesMode, TextMode
from .scanner import ocr
from .scanner.ocr import DEFAULT_LANGUAGES, OcrUnavailable
from .scanner.text.models import ModelUnavailable
from .sniff import Sniffed, sniff
from .verdict import Finding, Refused, Verdict

__all__ = ["FACES_MODES", "TEXT_MODES", "DicomOptions", "EngineLimits", "EngineOptions", "FacesMode", "TextMode", "Finding", "Refused", "Sniffed", "Verdict", "sanitize", "sniff", "warm_up"]


@dataclass(frozen=True)
class EngineOptions:
    limits: EngineLimits = EngineLimits()  # bombs, animations, archives
    text: TextMode = "identifiers"  # burned-in text to redact
    faces: FacesMode = "blur"  # faces in photographs
    pixels: bool = True  # False: metadata only (no OCR, barcodes or faces)
    languages: str = DEFAULT_LANGUAGES  # Tesseract language models
    dicom: DicomOptions = field(default_factory=DicomOptions)  # Annex E options and the UID key
    # What happens to each kind of file found inside an archive (content kind ->
    # "sanitize", "allow", "monitor" or "block"); kinds not named are blocked.
    archive_members: tuple[tuple[str, str], ...] = (
        ("image", "sanitize"), ("dicom", "sanitize"), ("archive", "sanitize"))


def sanitize(data: bytes, options: EngineOptions = EngineOptions()) -> Verdict:
    """Clean one payload. Never raises: failures come back as a refused Verdict.

    Images take two steps: the format module strips metadata losslessly; then
    the pixel scanner looks for burned-in text, codes and faces. Only when it
    paints something is the picture re-encoded (from the decoded frames, which
    carry no metadata); otherwise the lossless copy is the output. DICOM files
    go through the Annex E profile (dicom/); ZIP archives are opened and every
    member is cleaned the same way (archive.py).
    """
    started, ocr_before = time.perf_counter(), ocr.ocr_seconds
    verdict = _sanitize(data, options, depth=0, hints=())
    verdict.seconds = time.perf_counter() - started
    verdict.ocr_seconds = ocr.ocr_seconds - ocr_before
    return verdict


def _sanitize(data: bytes, options: EngineOptions, depth: int, hints: tuple[tuple[str, str], ...]) -> Verdict:
    kind = sniff(data)
    try:
        if kind.format == "dicom":
            return dicom.sanitize(data, _dicom_options(options), _pixel_options(options, hints) if options.pixels
                                  else None, options.limits, extra_hints=hints)
        if kind.format == "zip":
            return _sanitize_zip(data, options, depth, hints)
        fmt = FORMATS.get(kind.format)
        if fmt is None:
            what = "this file type" if kind.format == "unknown" else kind.format.upper()
            return Verdict(format=kind.format, content=kind.content, refused="unsupported_format",
                           detail=f"scrubgate cannot clean {what} yet")
        scan = options.pixels and kind.content == "image"
        if not (scan and fmt.strip_deferred):
            verdict = fmt.strip(data, options.limits.max_pixels)
            if scan:
                _scan_pixels(fmt, data, options, verdict, hints)
            return verdict
        # A format whose metadata only goes by encoding again (HEIF): encode once,
        # after the scan, unless redacting the pixels already re-encoded it.
        verdict, finish = fmt.strip_deferred(data, options.limits.max_pixels)
        _scan_pixels(fmt, data, options, verdict, hints)
        if finish is not None:
            if "pixels_redacted" not in verdict.actions:
                verdict.output = finish()
            verdict.actions.insert(0, "metadata_removed")
        if verdict.output is None:
            raise RuntimeError("no output after a deferred strip")  # fail closed: reported as engine_error
        return verdict
    except Refused as e:
        return Verdict(format=kind.format, content=kind.content, refused=e.reason, detail=e.detail)
    except (OcrUnavailable, ModelUnavailable):
        return Verdict(format=kind.format, content=kind.content, refused="ocr_unavailable",
                       detail="text recognition is not available on this gateway")
    except Exception as e:  # a handler bug must not forward the payload
        return Verdict(format=kind.format, content=kind.content, refused="engine_error",
                       detail=f"internal error in the {kind.format} handler ({type(e).__name__})")


def _sanitize_zip(data: bytes, options: EngineOptions, depth: int, hints) -> Verdict:
    actions = dict(options.archive_members)
    return archive.sanitize_zip(
        data, lambda member, hints: _sanitize(member, options, depth + 1, hints),
        lambda content: actions.get(content, "block"), options.limits, depth=depth, hints=hints)


def _pixel_options(options: EngineOptions, hints: tuple[tuple[str, str], ...]) -> scanner.PixelOptions:
    return scanner.PixelOptions(options.text, options.faces, options.languages, hints)


# Without a configured key (a one-off `scrubgate sanitize`), UIDs are still
# remapped, consistently within this process, with a key nobody keeps.
_PROCESS_SECRET = secrets.token_bytes(32)


def _dicom_options(options: EngineOptions) -> DicomOptions:
    return options.dicom if options.dicom.secret else replace(options.dicom, secret=_PROCESS_SECRET)


def _scan_pixels(fmt: Format, data: bytes, options: EngineOptions, verdict: Verdict, hints) -> None:
    decoded = fmt.decode(data, options.limits)
    changed, findings = scanner.scan(decoded, _pixel_options(options, hints))
    verdict.findings.extend(findings)
    if changed:
        verdict.output = decoded.encode(decoded.frames)
        verdict.actions.append("pixels_redacted")


def warm_up(options: EngineOptions = EngineOptions()) -> None:
    """Load the OCR model and detectors now (worker start), not on the first upload."""
    from .scanner import faces, text
    from .scanner.ocr import backend

    backend(options.languages)
    text.warm_up()
    faces._cascades()
