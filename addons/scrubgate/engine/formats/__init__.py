"""One module per raster format family, each with the same shape.

    strip(data, max_pixels) -> Verdict          lossless metadata removal (raises Refused)
    decode(data, limits) -> raster.Decoded      frames for the pixel scanner, and a way back to bytes

HEIF is the one family whose metadata only goes by encoding the picture again;
it also offers `strip_deferred`, so that a picture the scanner repaints is
encoded once, not twice. `FORMATS` says so explicitly instead of the engine
probing modules for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..limits import EngineLimits
from ..verdict import Verdict
from . import bmp, gif, heif, jpeg, png, raster, tiff, webp


@dataclass(frozen=True)
class Format:
    strip: Callable[[bytes, int], Verdict]
    decode: Callable[[bytes, EngineLimits], raster.Decoded]
    # (verdict, finish): finish() encodes the metadata-free file, None if nothing to remove
    strip_deferred: Callable[[bytes, int], tuple[Verdict, Callable[[], bytes] | None]] | None = None


FORMATS: dict[str, Format] = {
    "jpeg": Format(jpeg.strip, jpeg.decode),
    "png": Format(png.strip, png.decode),
    "webp": Format(webp.strip, webp.decode),
    "gif": Format(gif.strip, gif.decode),
    "tiff": Format(tiff.strip, tiff.decode),
    "bmp": Format(bmp.strip, bmp.decode),
    "heif": Format(heif.strip, heif.decode, heif.strip_deferred),
}

__all__ = ["FORMATS", "Format", "bmp", "gif", "heif", "jpeg", "png", "raster", "tiff", "webp"]
