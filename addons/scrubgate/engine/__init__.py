"""The pure engine: bytes in, `Verdict` out.

Nothing here knows about mitmproxy, HTTP or policies; the CLI, the
benchmarks and the proxy's worker processes all call `sanitize()`.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import bmp, gif, heif, jpeg, png, pixels, tiff, webp
from .ocr import DEFAULT_LANGUAGES, OcrUnavailable
from .raster import Limits
from .sniff import Sniffed, sniff
from .verdict import Finding, Refused, Verdict

__all__ = ["EngineOptions", "Finding", "Refused", "Sniffed", "Verdict", "sanitize", "sniff", "warm_up"]


@dataclass(frozen=True)
class EngineOptions:
    max_pixels: int = 100_000_000  # decompression-bomb guard: 100 MP, above any phone camera
    max_frames: int = 500  # GIF frames, TIFF pages
    text: str = "identifiers"  # burned-in text to redact: "identifiers", "all" or "none"
    faces: str = "blur"  # faces in photographs: "blur", "block" or "keep"
    pixels: bool = True  # False: metadata only (no OCR, barcodes or faces)
    languages: str = DEFAULT_LANGUAGES  # Tesseract language models


# One module per format family. Each has `strip(data, max_pixels) -> Verdict`
# (lossless metadata removal, raising Refused) and `decode(data, limits) ->
# raster.Decoded` (frames for the pixel scanner, and a way back to bytes).
_FORMATS = {
    "jpeg": jpeg,
    "png": png,
    "webp": webp,
    "gif": gif,
    "tiff": tiff,
    "bmp": bmp,
    "heif": heif,
}


def sanitize(data: bytes, options: EngineOptions = EngineOptions()) -> Verdict:
    """Clean one payload. Never raises: failures come back as a refused Verdict.

    Two steps for images: the format module strips metadata losslessly; then
    the pixel scanner looks for burned-in text, codes and faces. Only when it
    paints something is the picture re-encoded (from the decoded frames, which
    carry no metadata); otherwise the lossless copy is the output.
    """
    kind = sniff(data)
    module = _FORMATS.get(kind.format)
    if module is None:
        what = "this file type" if kind.format == "unknown" else kind.format.upper()
        return Verdict(format=kind.format, content=kind.content, refused="unsupported_format",
                       detail=f"scrubgate cannot clean {what} yet")
    try:
        verdict = module.strip(data, options.max_pixels)
        if options.pixels and kind.content == "image":
            _scan_pixels(module, data, options, verdict)
        return verdict
    except Refused as e:
        return Verdict(format=kind.format, content=kind.content, refused=e.reason, detail=e.detail)
    except OcrUnavailable:
        return Verdict(format=kind.format, content=kind.content, refused="ocr_unavailable",
                       detail="text recognition is not available on this gateway")
    except Exception as e:  # a handler bug must not forward the payload
        return Verdict(format=kind.format, content=kind.content, refused="engine_error",
                       detail=f"internal error in the {kind.format} handler ({type(e).__name__})")


def _scan_pixels(module, data: bytes, options: EngineOptions, verdict: Verdict) -> None:
    decoded = module.decode(data, Limits(max_pixels=options.max_pixels, max_frames=options.max_frames))
    changed, findings = pixels.scan(decoded, pixels.PixelOptions(options.text, options.faces, options.languages))
    verdict.findings.extend(findings)
    if changed:
        verdict.output = decoded.encode(decoded.frames)
        verdict.actions.append("pixels_redacted")


def warm_up(options: EngineOptions = EngineOptions()) -> None:
    """Load the OCR model and detectors now (worker start), not on the first upload."""
    from . import faces
    from .ocr import backend

    backend(options.languages)
    faces._cascades()
