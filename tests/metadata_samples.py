"""Test images with planted identifiers, written by exiftool (an outside tool)."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from scrubgate.samples import encode  # noqa: F401 (re-exported for the tests)

# Values planted in metadata. None of them may survive cleaning.
PLANTED = {
    "owner": "Planted Owner Alvarez",
    "serial": "SNPLANTED4242",
    "artist": "Dr Planted Artist",
    "comment": "COMPLANTED DOB 01/02/1960",
    "xmp": "XMPPLANTED John Smith",
    "iptc": "IPTCPLANTED MRN 998877",
    "png_text": "PNGPLANTED NHS 943 476 5919",
}


def picture(width: int = 320, height: int = 240) -> Image.Image:
    """Something with structure, so that pixel comparisons mean something."""
    im = Image.new("RGB", (width, height), (30, 60, 90))
    d = ImageDraw.Draw(im)
    for i in range(0, width, 16):
        d.line([(i, 0), (width - i, height)], fill=(200, (i * 3) % 255, 80), width=3)
    d.ellipse([width // 4, height // 4, width // 2, height // 2], fill=(240, 240, 20))
    return im


def plant(data: bytes, suffix: str, tmp: Path, args: list[str]) -> bytes:
    path = tmp / f"planted{suffix}"
    path.write_bytes(data)
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-n", *args, str(path)], check=True)
    return path.read_bytes()


def jpeg_with_metadata(tmp: Path, orientation: int = 1) -> bytes:
    return plant(encode(picture(), "JPEG", quality=90), ".jpg", tmp, [
        "-GPSLatitude=51.5072", "-GPSLatitudeRef=N", "-GPSLongitude=0.1276", "-GPSLongitudeRef=W",
        f"-OwnerName={PLANTED['owner']}", f"-SerialNumber={PLANTED['serial']}",
        f"-Artist={PLANTED['artist']}", f"-Comment={PLANTED['comment']}",
        f"-XMP-dc:Description={PLANTED['xmp']}", f"-IPTC:Caption-Abstract={PLANTED['iptc']}",
        "-DateTimeOriginal=2024:03:04 10:11:12", f"-Orientation={orientation}",
    ])


def png_with_metadata(tmp: Path) -> bytes:
    return plant(encode(picture(), "PNG"), ".png", tmp, [
        f"-PNG:Author={PLANTED['artist']}", f"-PNG:Comment={PLANTED['png_text']}",
        f"-XMP-dc:Description={PLANTED['xmp']}", "-PNG:ModifyDate=2024:03:04 10:11:12",
    ])


def webp_with_metadata(tmp: Path) -> bytes:
    return plant(encode(picture(), "WEBP", quality=90), ".webp", tmp, [
        f"-XMP-dc:Description={PLANTED['xmp']}", f"-EXIF:Artist={PLANTED['artist']}",
        "-GPSLatitude=51.5072", "-GPSLatitudeRef=N", f"-SerialNumber={PLANTED['serial']}",
    ])


def exif_report(data: bytes, tmp: Path, name: str = "judge") -> dict:
    """exiftool's view of a file: every tag, grouped by family 1."""
    path = tmp / name
    path.write_bytes(data)
    out = subprocess.run(["exiftool", "-j", "-a", "-G1", "-u", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)[0]


IDENTIFYING_GROUPS = ("GPS", "XMP", "IPTC", "Photoshop", "ExifIFD", "MakerNotes", "IFD1")


def identifying_tags(report: dict) -> list[str]:
    """Tags exiftool sees that could identify a patient, a person or a place."""
    bad = []
    for key, value in report.items():
        group = key.split(":", 1)[0]
        if group.startswith(IDENTIFYING_GROUPS):
            bad.append(key)
        elif key.endswith((":Comment", ":Author", ":Artist", ":OwnerName", ":SerialNumber",
                           ":ModifyDate", ":DateTimeOriginal", ":UserComment", ":ImageDescription")):
            bad.append(key)
        elif isinstance(value, str) and any(v in value for v in PLANTED.values()):
            bad.append(key)
    return bad


def float64_planar_tiff(width: int = 8, height: int = 6) -> bytes:
    """A sound little-endian TIFF whose pixels Pillow has no decoder for: RGB as three
    separate planes (PlanarConfiguration 2) of 64-bit floats (SampleFormat 3)."""
    planes = [np.full((height, width), v, dtype="<f8").tobytes() for v in (0.1, 0.5, 0.9)]
    count = 12
    bits_at = 8 + 2 + count * 12 + 4
    formats_at, offsets_at = bits_at + 6, bits_at + 12
    counts_at = offsets_at + 12
    data_at = counts_at + 12
    short = {256: width, 257: height, 259: 1, 262: 2, 274: 1, 277: 3, 278: height, 284: 2}
    pointers = {258: (3, bits_at), 273: (4, offsets_at), 279: (4, counts_at), 339: (3, formats_at)}
    out = b"II*\x00" + struct.pack("<IH", 8, count)
    for tag in sorted([*short, *pointers]):
        if tag in short:
            out += struct.pack("<HHIHH", tag, 3, 1, short[tag], 0)
        else:
            kind, at = pointers[tag]
            out += struct.pack("<HHII", tag, kind, 3, at)
    out += struct.pack("<I", 0) + struct.pack("<3H", 64, 64, 64) + struct.pack("<3H", 3, 3, 3)
    out += struct.pack("<3I", *(data_at + i * len(planes[0]) for i in range(3)))
    out += struct.pack("<3I", *(len(p) for p in planes))
    return out + b"".join(planes)
