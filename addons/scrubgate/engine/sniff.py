"""Decide what a payload is from its first bytes.

Content-Type headers and file names are whatever the client says; magic bytes
are what the receiving app will decode. We only ever trust the latter.
"""

from __future__ import annotations

from typing import NamedTuple


class Sniffed(NamedTuple):
    format: str  # "jpeg", "png", ... or "unknown"
    content: str  # "image", "dicom", "archive" or "other"


_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
                b"avif", b"avis", b"mif2"}


def sniff(data: bytes) -> Sniffed:
    head = data[:64]
    # First: PS3.10 lets the 128-byte preamble hold anything, often a TIFF header
    # (so a DICOM file opens in TIFF viewers); the DICM marker is what counts.
    if data[128:132] == b"DICM":
        return Sniffed("dicom", "dicom")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("jpeg", "image")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("png", "image")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("webp", "image")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("gif", "image")
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return Sniffed("tiff", "image")
    if head[:2] == b"BM" and len(data) >= 26:
        return Sniffed("bmp", "image")
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return Sniffed("heif", "image")
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return Sniffed("zip", "archive")
    if head[:2] == b"\x1f\x8b":
        return Sniffed("gzip", "archive")
    if head[:6] == b"7z\xbc\xaf\x27\x1c":
        return Sniffed("7z", "archive")
    if head[:4] == b"Rar!":
        return Sniffed("rar", "archive")
    if head[:4] == b"ustar" or data[257:262] == b"ustar":
        return Sniffed("tar", "archive")
    return Sniffed("unknown", "other")


def looks_like_text(data: bytes, limit: int = 4096) -> bool:
    """True when the start of `data` is plausibly UTF-8 text (a chat message, a form field)."""
    sample = data[:limit]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as e:
        # A multi-byte character cut at the sample's end is still text.
        if e.start < len(sample) - 4:
            return False
    return True
