"""The seam between the format modules and the pixel scanner.

Every image format module exposes `decode(data, limits) -> Decoded`: the
frames as Pillow images in *display* orientation (EXIF orientation applied),
plus an `encode` that writes edited frames back in the same format with the
same parameters (JPEG quantisation tables and subsampling, GIF timing and
loop count, TIFF compression per page, ICC profile) and no metadata beyond
what decoding needs. The pixel scanner never knows which format it edits.
"""

from __future__ import annotations

import struct
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from PIL import Image

from ..limits import EngineLimits
from ..verdict import Refused

# What Pillow (and the codecs under it) raise on damaged input. Decoders turn
# these into Refused("corrupt"), so a bad file is refused, never a crash.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, struct.error,
                 EOFError, MemoryError, ZeroDivisionError)


@contextmanager
def decoding(what: str, unidentified: str | None = None) -> Iterator[None]:
    """The one guard around Pillow opening and decoding a file: Pillow's own bomb
    warning is silenced (check_size is the limit), a bomb error is `too_large`, and
    whatever Pillow or a codec raises on damaged input is `corrupt`. With
    `unidentified`, Pillow not knowing the pixel layout is `unsupported_format`."""
    from PIL import UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except Image.DecompressionBombError:
        raise Refused("too_large", f"{what} is over the pixel limit") from None
    except UnidentifiedImageError:
        if unidentified is None:
            raise Refused("corrupt", f"{what} could not be decoded (UnidentifiedImageError)") from None
        raise Refused("unsupported_format", unidentified) from None
    except DECODE_ERRORS as e:
        raise Refused("corrupt", f"{what} could not be decoded ({type(e).__name__})") from None


@dataclass
class Decoded:
    frames: list[Image.Image]
    encode: Callable[[list[Image.Image]], bytes]
    # True when the frames are a photograph-like picture rather than synthetic
    # graphics (a camera's JPEG, HEIC, lossy WebP): the text reader that copes
    # with photographed print (PP-OCR) then reads first.
    photographic: bool = False
    # True when a camera took it (a JPEG whose EXIF names a make or model, a HEIC): the
    # text detector may then try small inputs first (scanner/text/detect.py, `ladder`).
    camera: bool = False
    notes: list[str] = field(default_factory=list)


def check_size(width: int, height: int, frames: int, limits: EngineLimits, what: str) -> None:
    """Refuse bombs from the header, before a single pixel is allocated."""
    if width <= 0 or height <= 0:
        raise Refused("corrupt", f"{what} has zero width or height")
    if width * height > limits.max_pixels:
        raise Refused("too_large", f"{what} is {width}x{height}, over the pixel limit")
    if frames > limits.max_frames:
        raise Refused("too_large", f"{what} has {frames} frames, over the frame limit")
    if width * height * frames > limits.max_total_pixels:
        raise Refused("too_large", f"{what} has too many pixels across its frames")


def read_frames(im: Image.Image, n: int) -> tuple[list[Image.Image], list[int]]:
    """Every frame of an animated picture as a detached copy without `info`
    (so no metadata can ride back into the encoder), and each frame's duration."""
    frames, durations = [], []
    for i in range(n):
        im.seek(i)
        im.load()
        durations.append(im.info.get("duration", 0))
        frame = im.copy()
        frame.info = {}
        frames.append(frame)
    return frames, durations


def bare(edited: list[Image.Image], count: int) -> list[Image.Image]:
    """The caller's edited frames as fresh images sharing their pixels but none of
    their `info` (text chunks, EXIF), so an encoder cannot write metadata back."""
    if len(edited) != count:
        raise ValueError("frame count changed between decode and encode")
    out = []
    for f in edited:
        f.load()
        b = f._new(f.im)
        b.info = {}
        out.append(b)
    return out
