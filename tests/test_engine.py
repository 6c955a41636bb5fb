"""The engine on its own: metadata out, pixels and image data untouched, bad files refused."""

import struct
import zlib

import pytest

from metadata_samples import (PLANTED, encode, exif_report, identifying_tags, jpeg_with_metadata, picture,
                     png_with_metadata, webp_with_metadata)
from scrubgate.engine import EngineLimits, EngineOptions, sanitize, sniff


def _jpeg_scan(data: bytes) -> bytes:
    """Everything from the first SOS marker on: the entropy-coded image data."""
    return data[data.index(b"\xff\xda"):]


@pytest.mark.parametrize("make", [jpeg_with_metadata, png_with_metadata, webp_with_metadata])
def test_metadata_is_gone_according_to_exiftool(make, tmp_path, exiftool):
    original = make(tmp_path)
    assert identifying_tags(exif_report(original, tmp_path, "before"))
    v = sanitize(original)
    assert v.refused is None and "metadata_removed" in v.actions
    assert identifying_tags(exif_report(v.output, tmp_path, "after")) == []
    assert not [k for k, val in PLANTED.items() if val.encode() in v.output]
    assert v.findings  # kinds were reported...
    assert all(f.kind and f.recognizer for f in v.findings)
    summary = repr((v.findings, v.removed, v.detail, v.actions))  # all a verdict reports
    assert not [k for k, val in PLANTED.items() if val in summary]  # ...but never the values


def test_jpeg_image_data_is_copied_byte_for_byte(tmp_path):
    original = jpeg_with_metadata(tmp_path)
    out = sanitize(original).output
    assert _jpeg_scan(out) == _jpeg_scan(original)
    assert out.count(b"\xff\xdb") == original.count(b"\xff\xdb")  # same quantisation tables


def test_png_image_chunks_are_copied_byte_for_byte(tmp_path):
    original = png_with_metadata(tmp_path)
    out = sanitize(original).output
    idat = lambda d: d[d.index(b"IDAT") - 4:d.index(b"IEND")]  # noqa: E731
    assert idat(out) == idat(original)


def test_clean_file_is_returned_unchanged():
    clean = encode(picture(), "PNG")
    v = sanitize(clean)
    assert v.output == clean and v.actions == []


def test_orientation_survives_so_the_image_stays_upright(tmp_path):
    v = sanitize(jpeg_with_metadata(tmp_path, orientation=6))
    report = exif_report(v.output, tmp_path, "o.jpg")
    assert report.get("IFD0:Orientation") == "Rotate 90 CW"
    assert identifying_tags(report) == []


def test_icc_profile_is_kept():
    from PIL import Image, ImageCms
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(picture(), "JPEG", icc_profile=icc, comment=b"drop me")
    out = sanitize(data).output
    assert b"ICC_PROFILE" in out and b"drop me" not in out


def test_sniffing_ignores_names_and_types(tmp_path):
    assert sniff(jpeg_with_metadata(tmp_path)).format == "jpeg"
    assert sniff(b"%PDF-1.7 ...").content == "other"


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_files_are_refused(tmp_path, cut):
    for data in (jpeg_with_metadata(tmp_path), png_with_metadata(tmp_path), webp_with_metadata(tmp_path)):
        v = sanitize(data[: int(len(data) * cut)])
        assert v.refused == "corrupt" and v.output is None, (sniff(data), v)


def test_decompression_bomb_dimensions_are_refused():
    # A PNG header claiming 100000 x 100000 pixels: refused before anything is inflated.
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    chunk = lambda t, b: struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))  # noqa: E731
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
    v = sanitize(bomb, EngineOptions(limits=EngineLimits(max_pixels=50_000_000)))
    assert v.refused == "too_large"


def test_polyglot_trailing_zip_is_dropped():
    jpeg = encode(picture(), "JPEG")
    polyglot = jpeg + b"PK\x03\x04" + b"secret.txt" + b"\x00" * 50
    v = sanitize(polyglot)
    assert v.refused is None and v.output == jpeg and v.removed["trailing_data"] == 1


def test_corrupt_png_checksum_is_refused():
    data = bytearray(encode(picture(), "PNG"))
    data[40] ^= 0xFF
    assert sanitize(bytes(data)).refused == "corrupt"


def test_unsupported_formats_are_refused_not_passed():
    assert sanitize(b"7z\xbc\xaf\x27\x1c" + b"\x00" * 32).refused == "unsupported_format"
    assert sanitize(b"random bytes" * 10).refused == "unsupported_format"
