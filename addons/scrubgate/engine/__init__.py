"""The pure engine: bytes in, `Verdict` out.

Nothing here knows about mitmproxy, HTTP or policies; the CLI, the
benchmarks and the proxy's worker processes all call `sanitize()`.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import jpeg, png, webp
from .sniff import Sniffed, sniff
from .verdict import Finding, Refused, Verdict

__all__ = ["EngineOptions", "Finding", "Refused", "Sniffed", "Verdict", "sanitize", "sniff"]


@dataclass(frozen=True)
class EngineOptions:
    max_pixels: int = 100_000_000  # decompression-bomb guard: 100 MP, above any phone camera
    text: str = "identifiers"  # "identifiers" or "all": what burned-in text to redact


# One handler per format family; each returns a Verdict or raises Refused.
_HANDLERS = {
    "jpeg": jpeg.strip,
    "png": png.strip,
    "webp": webp.strip,
}


def sanitize(data: bytes, options: EngineOptions = EngineOptions()) -> Verdict:
    """Clean one payload. Never raises: failures come back as a refused Verdict."""
    kind = sniff(data)
    handler = _HANDLERS.get(kind.format)
    if handler is None:
        what = "this file type" if kind.format == "unknown" else kind.format.upper()
        return Verdict(format=kind.format, content=kind.content, refused="unsupported_format",
                       detail=f"scrubgate cannot clean {what} yet")
    try:
        return handler(data, options.max_pixels)
    except Refused as e:
        return Verdict(format=kind.format, content=kind.content, refused=e.reason, detail=e.detail)
    except Exception as e:  # a handler bug must not forward the payload
        return Verdict(format=kind.format, content=kind.content, refused="engine_error",
                       detail=f"internal error in the {kind.format} handler ({type(e).__name__})")
