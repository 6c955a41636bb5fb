"""PNG (and APNG): keep the imaging chunks, drop everything else, copy bytes.

An allow-list, not a block-list: text chunks (tEXt, zTXt, iTXt), eXIf, tIME
and any private or future chunk are removed, because a chunk we do not know
is a chunk we cannot vouch for. CRCs are checked so a damaged file is refused
rather than passed on half-read.
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter

from .metadata import inspect_exif
from .verdict import Finding, Refused, Verdict

SIGNATURE = b"\x89PNG\r\n\x1a\n"

_KEEP = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND",
    b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"bKGD", b"pHYs", b"hIST", b"sPLT",
    b"cICP", b"mDCV", b"mDCv", b"cLLI", b"cLLi",
    b"acTL", b"fcTL", b"fdAT",  # APNG animation
}
_REMOVED_AS = {b"tEXt": "png_text", b"zTXt": "png_text", b"iTXt": "png_text",
               b"eXIf": "png_exif", b"tIME": "png_time"}
_NAME_KEYWORDS = (b"Author", b"Artist", b"Copyright", b"Owner")


def strip(data: bytes, max_pixels: int) -> Verdict:
    if not data.startswith(SIGNATURE):
        raise Refused("corrupt", "PNG signature missing")
    verdict = Verdict(format="png", content="image")
    removed: Counter = Counter()
    findings: list[Finding] = []
    out = [SIGNATURE]
    pos, n = 8, len(data)
    seen_ihdr = seen_idat = False
    while True:
        if pos + 12 > n:
            raise Refused("corrupt", "PNG is truncated (no IEND chunk)")
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > n:
            raise Refused("corrupt", "PNG chunk runs past the end of the file")
        chunk = data[pos:end]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4:end])
        if zlib.crc32(ctype + body) != crc:
            raise Refused("corrupt", "PNG chunk checksum mismatch")
        pos = end
        if not seen_ihdr:
            if ctype != b"IHDR" or length != 13:
                raise Refused("corrupt", "PNG does not start with IHDR")
            width, height = struct.unpack(">II", body[:8])
            if width == 0 or height == 0:
                raise Refused("corrupt", "PNG has zero size")
            if width * height > max_pixels:
                raise Refused("too_large", f"PNG is {width}x{height}, over the pixel limit")
            seen_ihdr = True
        if ctype in _KEEP:
            seen_idat |= ctype == b"IDAT"
            out.append(chunk)
            if ctype == b"IEND":
                break
            continue
        kind = _REMOVED_AS.get(ctype, "private_chunk")
        removed[kind] += 1
        if ctype == b"eXIf":
            findings.extend(inspect_exif(body, source="png_exif").findings)
        elif ctype == b"tIME":
            findings.append(Finding("date", "png_time", "png.time"))
        elif kind == "png_text":
            keyword = body.split(b"\x00", 1)[0]
            if keyword in _NAME_KEYWORDS:
                findings.append(Finding("person_name", "png_text", f"png.{ctype.decode()}"))
            else:
                findings.append(Finding("free_text", "png_text", f"png.{ctype.decode()}"))
    if not seen_idat:
        raise Refused("corrupt", "PNG has no image data")
    if pos < n:
        removed["trailing_data"] += 1
    verdict.removed = removed
    verdict.findings = findings
    if removed:
        verdict.actions.append("metadata_removed")
        verdict.output = b"".join(out)
    else:
        verdict.output = data
    return verdict
