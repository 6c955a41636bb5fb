"""WebP: drop the EXIF and XMP chunks (and unknown ones) from the RIFF container.

The VP8X header carries flags announcing EXIF/XMP; they are cleared so the
file stays valid. Image chunks are copied byte for byte.
"""

from __future__ import annotations

import struct
from collections import Counter

from ..limits import EngineLimits
from ..verdict import Finding, Refused, Verdict
from . import raster
from .metadata import inspect_exif, inspect_xmp

_KEEP = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP"}
_FLAG_EXIF, _FLAG_XMP = 0x08, 0x04


def _dimensions(ctype: bytes, body: bytes) -> tuple[int, int] | None:
    if ctype == b"VP8X" and len(body) >= 10:
        w = int.from_bytes(body[4:7], "little") + 1
        h = int.from_bytes(body[7:10], "little") + 1
        return w, h
    if ctype == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", body[6:10])
        return w & 0x3FFF, h & 0x3FFF
    if ctype == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def strip(data: bytes, max_pixels: int) -> Verdict:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise Refused("corrupt", "WebP RIFF header missing")
    (riff_size,) = struct.unpack("<I", data[4:8])
    if riff_size + 8 > len(data):
        raise Refused("corrupt", "WebP is truncated")
    verdict = Verdict(format="webp", content="image")
    removed: Counter = Counter()
    findings: list[Finding] = []
    chunks: list[bytearray] = []
    pos, n = 12, riff_size + 8
    has_image = False
    while pos < n:
        if pos + 8 > n:
            raise Refused("corrupt", "WebP chunk header is truncated")
        ctype, length = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        end = pos + 8 + length + (length & 1)
        if pos + 8 + length > n:
            raise Refused("corrupt", "WebP chunk runs past the end of the file")
        body = data[pos + 8:pos + 8 + length]
        chunk = bytearray(data[pos:min(end, n)])
        pos = end
        dims = _dimensions(ctype, body)
        if dims and dims[0] * dims[1] > max_pixels:
            raise Refused("too_large", f"WebP is {dims[0]}x{dims[1]}, over the pixel limit")
        if ctype in _KEEP:
            has_image |= ctype in (b"VP8 ", b"VP8L", b"ANMF")
            chunks.append(chunk)
        elif ctype == b"EXIF":
            tiff = body[6:] if body.startswith(b"Exif\x00\x00") else body
            findings.extend(inspect_exif(tiff).findings)
            removed["exif"] += 1
        elif ctype == b"XMP ":
            findings.extend(inspect_xmp(body))
            removed["xmp"] += 1
        else:
            removed["private_chunk"] += 1
    if not has_image:
        raise Refused("corrupt", "WebP has no image data")
    if len(data) > n:
        removed["trailing_data"] += 1
    verdict.removed = removed
    verdict.findings = findings
    if not removed:
        verdict.output = data
        return verdict
    for chunk in chunks:
        if chunk[:4] == b"VP8X":
            chunk[8] &= ~(_FLAG_EXIF | _FLAG_XMP) & 0xFF
    payload = b"WEBP" + b"".join(chunks)
    verdict.output = b"RIFF" + struct.pack("<I", len(payload)) + payload
    verdict.actions.append("metadata_removed")
    return verdict


# --- pixels -----------------------------------------------------------------
# decode() for the pixel scanner: every frame, and an encoder that keeps
# lossless files lossless (exact, colours under transparent pixels kept),
# writes lossy ones at quality 90, and keeps frame delays, loop count,
# background colour and the ICC profile. Nothing else.



def _is_lossless(data: bytes) -> bool:
    """True when every image bitstream (top-level or inside ANMF frames) is VP8L."""
    kinds: set[bytes] = set()

    def walk(pos: int, end: int) -> None:
        while pos + 8 <= end:
            ctype, length = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
            if ctype in (b"VP8 ", b"VP8L"):
                kinds.add(ctype)
            elif ctype == b"ANMF":
                walk(pos + 8 + 16, min(pos + 8 + length, end))
            pos += 8 + length + (length & 1)

    walk(12, len(data))
    return kinds == {b"VP8L"}


def decode(data: bytes, limits: EngineLimits) -> raster.Decoded:
    import io

    from PIL import Image

    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise Refused("corrupt", "WebP RIFF header missing")
    lossless = _is_lossless(data)
    with raster.decoding("WebP"):
        with Image.open(io.BytesIO(data), formats=["WEBP"]) as im:
            n = getattr(im, "n_frames", 1)
            raster.check_size(*im.size, n, limits, "WebP")  # from the headers, nothing decoded yet
            icc = im.info.get("icc_profile")
            loop = im.info.get("loop", 0)
            background = im.info.get("background")
            frames, durations = raster.read_frames(im, n)

    def encode(edited: list) -> bytes:
        bare = raster.bare(edited, len(frames))
        kw: dict = {"lossless": True, "exact": True} if lossless else {"quality": 90}
        if icc:
            kw["icc_profile"] = icc
        if len(bare) > 1:
            kw.update(save_all=True, append_images=bare[1:], duration=durations, loop=loop)
            if background is not None:
                kw["background"] = background
        buf = io.BytesIO()
        bare[0].save(buf, "WEBP", **kw)
        return buf.getvalue()

    return raster.Decoded(frames=frames, encode=encode, photographic=not lossless)
