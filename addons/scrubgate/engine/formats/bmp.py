"""BMP: no metadata blocks, but room to hide things; validate and trim.

A BMP is a file header, a DIB header, an optional colour table, the pixel
array and (V5 only) an ICC profile. Anything else is bytes nobody draws:
data appended after the pixels (polyglot ZIPs), junk in the gap between the
colour table and the pixel array, the two reserved header words, and a
V5 "linked" colour profile, which is a file path (C:\\Users\\<name>\\...).
Strip drops the tail, zeroes gaps and reserved words, and replaces a linked
profile by sRGB. Pixels and an embedded profile are copied byte for byte.
BMPs wrapping JPEG or PNG streams (compression 4/5) are refused: those
streams can carry their own metadata and Pillow cannot draw them anyway.

`decode`/`encode` go through Pillow (BMP is lossless); an embedded ICC
profile and an alpha channel are written back in a V5 header.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections import Counter
from dataclasses import dataclass

from ..limits import EngineLimits
from ..verdict import Finding, Refused, Verdict, finish
from . import raster

_HEADER_SIZES = {12, 40, 52, 56, 108, 124}
_BI_RGB, _BI_RLE8, _BI_RLE4, _BI_BITFIELDS, _BI_JPEG, _BI_PNG, _BI_ALPHABITFIELDS = range(7)
_PROFILE_LINKED, _PROFILE_EMBEDDED, _LCS_SRGB = 0x4C494E4B, 0x4D424544, 0x73524742


@dataclass
class _Bmp:
    width: int
    height: int  # absolute value; negative in the file means top-down
    header_end: int  # end of the DIB header, masks and colour table
    pixels: tuple[int, int]  # (start, end) of the pixel array
    profile: tuple[int, int] | None  # (start, end) of an embedded ICC profile
    linked_profile: bool
    end: int  # end of everything a decoder reads


def _rle_end(data: bytes, pos: int, rle4: bool) -> int:
    """Walk an RLE4/RLE8 stream to its end-of-bitmap marker."""
    n = len(data)
    while pos + 2 <= n:
        count, value = data[pos], data[pos + 1]
        pos += 2
        if count:
            continue
        if value == 1:  # end of bitmap
            return pos
        if value == 2:  # delta
            pos += 2
        elif value > 2:  # absolute run, padded to 16 bits
            run = (value + 1) // 2 if rle4 else value
            pos += run + (run & 1)
    raise Refused("corrupt", "BMP is truncated inside its RLE pixel data")


def _parse(data: bytes) -> _Bmp:
    if len(data) < 26 or data[:2] != b"BM":
        raise Refused("corrupt", "BMP header missing")
    (pixel_offset,) = struct.unpack("<I", data[10:14])
    (dib,) = struct.unpack("<I", data[14:18])
    if dib not in _HEADER_SIZES:
        raise Refused("unsupported_format", "BMP has an unsupported header type")
    if len(data) < 14 + dib:
        raise Refused("corrupt", "BMP is truncated inside its header")
    if dib == 12:
        width, height, planes, bpp = struct.unpack("<HHHH", data[18:26])
        compression, size_image, colours, entry = _BI_RGB, 0, 0, 3
    else:
        width, height, planes, bpp, compression, size_image = struct.unpack("<iiHHII", data[18:38])
        (colours,) = struct.unpack("<I", data[46:50])
        entry = 4
    if planes != 1 or bpp not in (1, 2, 4, 8, 16, 24, 32, 64):
        raise Refused("corrupt", "BMP header has an invalid bit depth")
    if compression in (_BI_JPEG, _BI_PNG):
        raise Refused("unsupported_format", "BMP wrapping JPEG or PNG data is not supported")
    if compression > _BI_ALPHABITFIELDS:
        raise Refused("unsupported_format", "BMP uses an unsupported compression")
    if width <= 0 or height == 0:
        raise Refused("corrupt", "BMP has zero or negative width or zero height")
    height = abs(height)
    header_end = 14 + dib
    if dib == 40 and compression in (_BI_BITFIELDS, _BI_ALPHABITFIELDS):
        header_end += 12 if compression == _BI_BITFIELDS else 16
    if bpp <= 8:
        if colours > 1 << bpp:
            raise Refused("corrupt", "BMP colour table is larger than its bit depth allows")
        header_end += (colours or 1 << bpp) * entry
    else:
        header_end += colours * entry
    if pixel_offset < 14 + dib or pixel_offset > len(data):
        raise Refused("corrupt", "BMP pixel data offset lies outside the file")
    header_end = min(header_end, pixel_offset)
    if compression in (_BI_RLE8, _BI_RLE4):
        pixel_end = pixel_offset + size_image if size_image else \
            _rle_end(data, pixel_offset, compression == _BI_RLE4)
    else:
        pixel_end = pixel_offset + ((width * bpp + 31) // 32) * 4 * height
    if pixel_end > len(data):
        raise Refused("corrupt", "BMP is truncated inside its pixel data")
    profile, linked, end = None, False, pixel_end
    if dib == 124:
        cs_type, p_offset, p_size = (struct.unpack("<I", data[70:74])[0],
                                     *struct.unpack("<II", data[126:134]))
        if cs_type == _PROFILE_LINKED:
            linked = True
        elif cs_type == _PROFILE_EMBEDDED and p_size:
            start = 14 + p_offset
            if start < header_end or start + p_size > len(data):
                raise Refused("corrupt", "BMP colour profile lies outside the file")
            profile = (start, start + p_size)
            end = max(end, start + p_size)
    return _Bmp(width, height, header_end, (pixel_offset, pixel_end), profile, linked, end)


def strip(data: bytes, max_pixels: int) -> Verdict:
    bmp = _parse(data)
    if bmp.width * bmp.height > max_pixels:
        raise Refused("too_large", f"BMP is {bmp.width}x{bmp.height}, over the pixel limit")
    verdict = Verdict(format="bmp", content="image")
    removed: Counter = Counter()
    findings: list[Finding] = []
    out = bytearray(data[:bmp.end])
    if data[6:10] != b"\x00\x00\x00\x00":
        out[6:10] = b"\x00\x00\x00\x00"
        removed["bmp_reserved"] += 1
    if bmp.linked_profile:
        out[70:74] = struct.pack("<I", _LCS_SRGB)
        out[126:134] = b"\x00" * 8
        findings.append(Finding("free_text", "bmp_profile", "bmp.linked_profile"))
        removed["bmp_linked_profile"] += 1
    # Zero every byte in [0, end) that no decoder reads.
    used = sorted([(0, bmp.header_end), bmp.pixels] + ([bmp.profile] if bmp.profile else []))
    pos, hidden = 0, False
    for start, end in used:
        if start > pos and out[pos:start].strip(b"\x00"):
            out[pos:start] = b"\x00" * (start - pos)
            hidden = True
        pos = max(pos, end)
    if hidden:
        removed["unreferenced_data"] += 1
    if data[bmp.end:].strip(b"\x00"):
        removed["trailing_data"] += 1
    if removed and struct.unpack("<I", out[2:6])[0] != len(out):
        out[2:6] = struct.pack("<I", len(out))
    return finish(verdict, removed, findings, lambda: bytes(out), data)


# --- pixels -----------------------------------------------------------------



def decode(data: bytes, limits: EngineLimits) -> raster.Decoded:
    from PIL import Image

    bmp = _parse(data)
    raster.check_size(bmp.width, bmp.height, 1, limits, "BMP")
    icc = data[bmp.profile[0]:bmp.profile[1]] if bmp.profile else None
    with raster.decoding("BMP"):
        with Image.open(io.BytesIO(data), formats=["BMP"]) as im:
            im.load()
            frame = im.copy()
    frame.info = {}
    if frame.mode not in ("1", "L", "P", "RGB", "RGBA"):
        frame = frame.convert("RGBA" if "A" in frame.mode else "RGB")

    def encode(edited: list[Image.Image]) -> bytes:
        (bare,) = raster.bare(edited, 1)
        buf = io.BytesIO()
        bare.save(buf, "BMP")
        if icc or bare.mode == "RGBA":
            return _with_profile(buf.getvalue(), icc, alpha=bare.mode == "RGBA")
        return buf.getvalue()

    return raster.Decoded(frames=[frame], encode=encode)


def _with_profile(bmp: bytes, icc: bytes | None, alpha: bool = False) -> bytes:
    """Turn Pillow's BITMAPINFOHEADER file into a V5 one: with an embedded ICC profile,
    and for 32-bit pixels with an alpha mask (Pillow writes BGRA but reads it back as RGB)."""
    (offset,) = struct.unpack("<I", bmp[10:14])
    (dib,) = struct.unpack("<I", bmp[14:18])
    if dib != 40:
        return bmp
    info = bytearray(bmp[18:54])
    width, height, planes, bpp, compression = struct.unpack("<iiHHI", info[:16])
    masks = b"\x00" * 16
    rest = bmp[54:]
    if compression == _BI_BITFIELDS:  # three masks after the header: move them in
        masks, rest = rest[:12] + b"\x00" * 4, rest[12:]
        offset -= 12
    elif alpha and bpp == 32 and compression == _BI_RGB:
        masks = struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)
        struct.pack_into("<I", info, 12, _BI_BITFIELDS)
    body = rest + b"\x00" * ((-len(rest)) % 4)
    icc = icc or b""
    cs_type = _PROFILE_EMBEDDED if icc else _LCS_SRGB
    v5 = (struct.pack("<I", 124) + bytes(info) + masks + struct.pack("<I", cs_type)
          + b"\x00" * 36 + b"\x00" * 12  # endpoints, gamma
          + struct.pack("<III", 4, 124 + len(body) if icc else 0, len(icc)) + b"\x00" * 4)  # LCS_GM_IMAGES
    new_offset = offset + (124 - 40)
    return b"BM" + struct.pack("<IHHI", 14 + len(v5) + len(body) + len(icc), 0, 0, new_offset) + v5 + body + icc
