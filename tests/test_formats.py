"""GIF, TIFF, BMP, HEIC/AVIF: metadata out (exiftool is the judge), pixels kept,
bad files refused; and decode()+encode() round trips for every format."""

from __future__ import annotations

import io
import random
import struct

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageDraw, features

from metadata_samples import PLANTED, encode, exif_report, identifying_tags, jpeg_with_metadata, picture, plant
from scrubgate.engine import EngineLimits, EngineOptions, Refused, bmp, gif, heif, jpeg, png, sanitize, tiff, webp

META_ONLY = EngineOptions(pixels=False)  # the pixel scanner has its own tests
LIMITS = EngineLimits()
HAS_AVIF = features.check("avif")

# Tags a multi-page TIFF legitimately has in IFD1, IFD2, ... (exiftool names its pages that way).
_PAGE_TAGS = {"ImageWidth", "ImageHeight", "BitsPerSample", "Compression", "PhotometricInterpretation",
              "StripOffsets", "SamplesPerPixel", "RowsPerStrip", "StripByteCounts", "PlanarConfiguration",
              "Orientation", "XResolution", "YResolution", "ResolutionUnit", "Predictor", "JPEGTables",
              "PreviewImageStart", "PreviewImageLength", "PreviewImage", "TileWidth", "TileLength",
              "TileOffsets", "TileByteCounts", "ExtraSamples", "SampleFormat", "ColorMap",
              "YCbCrSubSampling", "SubfileType"}
_XMP = ("<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>"
        "<rdf:Description xmlns:dc='http://purl.org/dc/elements/1.1/'><dc:creator><rdf:Seq><rdf:li>"
        f"{PLANTED['xmp']}</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>").encode()


def bad_tags(report: dict) -> list[str]:
    return [k for k in identifying_tags(report)
            if not (k.startswith("IFD") and k.split(":", 1)[1] in _PAGE_TAGS)]


def planted_values(data: bytes) -> list[str]:
    return [k for k, v in PLANTED.items() if v.encode() in data]


def frames_of(data: bytes, mode: str | None = None) -> list[np.ndarray]:
    """Every frame/page as Pillow shows it (TIFF pages upright, GIF frames composited)."""
    with Image.open(io.BytesIO(data)) as im:
        out = []
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            out.append(np.asarray(im.convert(mode) if mode else im.copy()))
        return out


# --- samples ------------------------------------------------------------------

_GIF_TAGS = [f"-Comment={PLANTED['comment']}", f"-XMP-dc:Creator={PLANTED['xmp']}"]
_TIFF_TAGS = ["-GPSLatitude=51.5072", "-GPSLatitudeRef=N", "-GPSLongitude=0.1276", "-GPSLongitudeRef=W",
              f"-Artist={PLANTED['artist']}", f"-Copyright={PLANTED['owner']}",
              f"-ImageDescription={PLANTED['comment']}", f"-OwnerName={PLANTED['owner']}",
              f"-SerialNumber={PLANTED['serial']}", "-DateTimeOriginal=2024:03:04 10:11:12",
              f"-UserComment={PLANTED['comment']}", f"-XMP-dc:Description={PLANTED['xmp']}",
              f"-IPTC:Caption-Abstract={PLANTED['iptc']}", "-Make=Acme", "-Software=Scanner 1.0"]


def animation(n: int = 5, transparent: bool = False) -> list[Image.Image]:
    frames = []
    for i in range(n):
        f = Image.new("RGBA", (96, 64), (0, 0, 0, 0) if transparent else (20, 40, 200, 255))
        d = ImageDraw.Draw(f)
        d.rectangle([10 + i * 12, 8, 30 + i * 12, 50], fill=(250, 200 - i * 30, 10, 255))
        d.ellipse([60, 20 + i * 4, 80, 40 + i * 4], fill=(10, 220, 90, 255))
        frames.append(f if transparent else f.convert("RGB"))
    return frames


def gif_with_metadata(tmp) -> bytes:
    return plant(encode(picture(), "GIF"), ".gif", tmp, _GIF_TAGS)


def animated_gif_with_metadata(tmp, transparent: bool = True) -> bytes:
    frames = animation(transparent=transparent)
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=[100, 200, 300, 400, 500],
                  loop=0, disposal=2)
    return plant(data, ".gif", tmp, _GIF_TAGS)


def tiff_with_metadata(tmp, pages: int = 1, compression: str = "tiff_lzw", orientation: int = 1) -> bytes:
    ims = [picture(), picture(200, 100), picture(64, 64)][:pages]
    data = encode(ims[0], "TIFF", compression=compression, save_all=pages > 1, append_images=ims[1:])
    return plant(data, ".tif", tmp, _TIFF_TAGS + [f"-Orientation={orientation}"])


def _exif(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x013B] = PLANTED["artist"]
    exif[0x010F] = "Acme"
    exif.get_ifd(0x8769)[0xA431] = PLANTED["serial"]
    exif.get_ifd(0x8769)[0x9003] = "2024:03:04 10:11:12"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (51.0, 30.0, 26.0)
    return exif.tobytes()


def heic_with_metadata(orientation: int = 6) -> bytes:
    import pillow_heif

    buf = io.BytesIO()
    pillow_heif.from_pillow(picture()).save(buf, quality=90, exif=_exif(orientation), xmp=_XMP)
    return buf.getvalue()


def avif_with_metadata(orientation: int = 6) -> bytes:
    return encode(picture(), "AVIF", quality=90, exif=_exif(orientation), xmp=_XMP)


def bmp_v5_with_profile(linked: bool = False) -> bytes:
    """A BITMAPV5HEADER BMP with an embedded (or linked, i.e. file path) colour profile."""
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = bmp._with_profile(encode(picture(), "BMP"), icc)
    if not linked:
        return data
    (p_offset, p_size) = struct.unpack("<II", data[126:134])
    path = b"C:\\Users\\PlantedOwnerAlvarez\\profile.icc\x00"
    out = bytearray(data[:14 + p_offset]) + path
    out[70:74] = struct.pack("<I", bmp._PROFILE_LINKED)
    out[126:134] = struct.pack("<II", p_offset, len(path))
    out[2:6] = struct.pack("<I", len(out))
    return bytes(out)


def tiled_tiff(tiles: int = 16, gap: bytes = b"") -> bytes:
    """An uncompressed RGB TIFF stored in tiles (Pillow only writes strips), with an Artist tag;
    `gap` goes between the tag values and the tiles, where nothing points at it."""
    im = picture(32, 32)
    px = np.asarray(im)
    blobs = [px[y:y + tiles, x:x + tiles].tobytes() for y in range(0, 32, tiles) for x in range(0, 32, tiles)]
    artist = PLANTED["artist"].encode() + b"\x00"
    entries = [(256, 3, 1, 32), (257, 3, 1, 32), (258, 3, 3, None), (259, 3, 1, 1), (262, 3, 1, 2),
               (277, 3, 1, 3), (284, 3, 1, 1), (315, 2, len(artist), None), (322, 3, 1, tiles),
               (323, 3, 1, tiles), (324, 4, len(blobs), None), (325, 4, len(blobs), None)]
    ifd_size = 2 + 12 * len(entries) + 4
    extra_at = 8 + ifd_size
    bits = struct.pack("<HHH", 8, 8, 8)
    data_at = extra_at + len(bits) + len(artist) + 8 * len(blobs) + len(gap)
    offsets = [data_at + i * len(blobs[0]) for i in range(len(blobs))]
    extras = {258: bits, 315: artist, 324: struct.pack(f"<{len(blobs)}I", *offsets),
              325: struct.pack(f"<{len(blobs)}I", *[len(b) for b in blobs])}
    ifd, blob, pos = struct.pack("<H", len(entries)), b"", extra_at
    for tag, typ, count, value in entries:
        if value is None:
            ifd += struct.pack("<HHII", tag, typ, count, pos)
            blob += extras[tag]
            pos += len(extras[tag])
        else:
            ifd += struct.pack("<HHIHH", tag, typ, count, value, 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00" * 4 + blob + gap + b"".join(blobs)


# --- metadata is gone, pixels are not -------------------------------------------

def _checked(original: bytes, tmp, name: str):
    assert bad_tags(exif_report(original, tmp, f"{name}-before"))  # the sample really has identifiers
    v = sanitize(original, META_ONLY)
    assert v.refused is None, v.detail
    assert "metadata_removed" in v.actions
    assert bad_tags(exif_report(v.output, tmp, f"{name}-after")) == []
    assert planted_values(v.output) == []
    summary = repr((v.findings, v.removed, v.detail, v.actions))
    assert not [val for val in PLANTED.values() if val in summary]  # kinds, never values
    return v


def _kinds(v) -> set[str]:
    return {f.kind for f in v.findings}


def test_gif_metadata_removed_and_pixels_identical(tmp_path, exiftool):
    original = gif_with_metadata(tmp_path)
    v = _checked(original, tmp_path, "g.gif")
    assert v.removed["comment"] == 1 and v.removed["xmp"] == 1
    assert {"free_text", "person_name"} <= _kinds(v)
    assert any(f.recognizer == "gif.comment" for f in v.findings)
    assert [a.tobytes() for a in frames_of(v.output, "RGBA")] == [a.tobytes() for a in frames_of(original, "RGBA")]


@pytest.mark.parametrize("transparent", [True, False])
def test_animated_gif_keeps_every_frame_timing_and_loop(tmp_path, exiftool, transparent):
    original = animated_gif_with_metadata(tmp_path, transparent)
    v = _checked(original, tmp_path, "a.gif")
    before, after = frames_of(original, "RGBA"), frames_of(v.output, "RGBA")
    assert len(after) == len(before) == 5
    assert all(np.array_equal(a, b) for a, b in zip(after, before))
    with Image.open(io.BytesIO(v.output)) as im:
        assert im.info.get("loop") == 0
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
    assert durations == [100, 200, 300, 400, 500]


@pytest.mark.parametrize("pages,compression", [(1, "tiff_lzw"), (3, "raw"), (3, "tiff_adobe_deflate"),
                                               (2, "jpeg"), (2, "packbits")])
def test_tiff_metadata_removed_and_pages_identical(tmp_path, exiftool, pages, compression):
    original = tiff_with_metadata(tmp_path, pages, compression, orientation=6)
    v = _checked(original, tmp_path, "t.tif")
    assert {"location", "person_name", "device_serial", "date", "free_text"} <= _kinds(v)
    for key in ("exif", "gps", "xmp", "iptc", "tiff_text"):
        assert v.removed[key] >= 1, key
    before, after = frames_of(original), frames_of(v.output)
    assert len(after) == len(before) == pages
    assert all(np.array_equal(a, b) for a, b in zip(after, before))  # byte-copied data, even JPEG
    assert exif_report(v.output, tmp_path, "o.tif").get("IFD0:Orientation") == "Rotate 90 CW"
    assert after[0].shape[:2] == (320, 240)  # still displayed upright


def test_tiff_clean_file_unchanged_and_polyglot_trimmed():
    clean = encode(picture(), "TIFF", save_all=True, append_images=[picture(100, 50)], compression="tiff_lzw")
    v = sanitize(clean, META_ONLY)
    assert v.output == clean and v.actions == []
    v = sanitize(clean + b"PK\x03\x04secret.txt" + b"\x01" * 40, META_ONLY)
    assert v.removed == {"trailing_data": 1} and b"secret" not in v.output
    assert [a.tobytes() for a in frames_of(v.output)] == [a.tobytes() for a in frames_of(clean)]


def test_tiff_hidden_bytes_between_blocks_are_dropped():
    clean = sanitize(tiled_tiff(), META_ONLY).output  # no Artist any more: nothing to remove
    assert sanitize(clean, META_ONLY).output == clean
    hidden = tiled_tiff(gap=b"HIDDEN MRN 998877")
    v = sanitize(hidden, META_ONLY)
    assert v.removed["unreferenced_data"] == 0  # the Artist tag forces a rewrite anyway...
    assert b"HIDDEN" not in v.output  # ...which drops the gap
    assert np.array_equal(frames_of(v.output)[0], np.asarray(picture(32, 32)))
    # without any tag to remove, the gap alone is reason to rewrite
    t = tiff._Tiff(hidden)
    page = t.pages()[0]
    only_gap = bytearray(hidden)
    artist = page.entries[315]
    only_gap[artist.offset:artist.offset + artist.count] = b"\x00" * artist.count
    pos = page.offset + 2 + 12 * sorted(page.entries).index(315)
    struct.pack_into("<HHII", only_gap, pos, 296, 3, 1, 1)  # Artist -> ResolutionUnit (kept)
    v = sanitize(bytes(only_gap), META_ONLY)
    assert v.removed == {"unreferenced_data": 1} and b"HIDDEN" not in v.output, v.removed


def test_tiled_tiff_and_bigtiff(tmp_path):
    data = tiled_tiff()
    v = sanitize(data, META_ONLY)
    assert v.removed["tiff_text"] == 1 and _kinds(v) == {"person_name"} and planted_values(v.output) == []
    assert np.array_equal(frames_of(v.output)[0], np.asarray(picture(32, 32)))
    big = encode(picture(), "TIFF", big_tiff=True, tiffinfo={315: PLANTED["artist"], 270: PLANTED["comment"]})
    assert big[2:4] == b"+\x00"
    v = sanitize(big, META_ONLY)
    assert v.refused is None and v.output[2:4] == b"+\x00"
    assert v.removed["tiff_text"] == 2 and planted_values(v.output) == []
    assert np.array_equal(frames_of(v.output)[0], np.asarray(picture()))
    assert bad_tags(exif_report(v.output, tmp_path, "big.tif")) == []


def test_bmp_polyglot_and_hidden_bytes():
    clean = encode(picture(), "BMP")
    assert sanitize(clean, META_ONLY).output == clean
    v = sanitize(clean + b"PK\x03\x04" + b"secret.txt" + b"\x01" * 50, META_ONLY)
    assert v.refused is None and v.output == clean and v.removed["trailing_data"] == 1
    # junk in the gap between header and pixels, and in the reserved words
    (offset,) = struct.unpack("<I", clean[10:14])
    gap = b"MRN 998877 hidden"
    junk = bytearray(clean[:offset] + gap + clean[offset:])
    struct.pack_into("<I", junk, 10, offset + len(gap))
    struct.pack_into("<I", junk, 2, len(junk))
    junk[6:10] = b"ABCD"
    v = sanitize(bytes(junk), META_ONLY)
    assert v.removed["unreferenced_data"] == 1 and v.removed["bmp_reserved"] == 1
    assert b"MRN" not in v.output and b"ABCD" not in v.output
    assert np.array_equal(frames_of(v.output)[0], np.asarray(picture()))


def test_bmp_profiles():
    embedded = bmp_v5_with_profile()
    v = sanitize(embedded, META_ONLY)
    assert v.output == embedded  # an embedded ICC profile is display data: kept
    linked = bmp_v5_with_profile(linked=True)
    v = sanitize(linked, META_ONLY)
    assert v.removed["bmp_linked_profile"] == 1 and b"Alvarez" not in v.output
    assert _kinds(v) == {"free_text"}
    assert np.array_equal(frames_of(v.output)[0], np.asarray(picture()))


def _heif_checks(original: bytes, v, tmp_path):
    assert v.removed["exif"] == 1 and v.removed["xmp"] == 1
    assert {"location", "person_name", "device_serial", "date"} <= _kinds(v)
    report = exif_report(v.output, tmp_path, "h-after")
    assert not [k for k in report if "Orientation" in k]
    assert report.get("QuickTime:Rotation", 0) in (0, "0")
    upright = np.asarray(picture().transpose(Image.Transpose.ROTATE_270)).astype(int)  # orientation 6
    out = heif.decode(v.output, LIMITS).frames[0]
    assert out.size == (240, 320)  # rotated once...
    assert np.abs(np.asarray(out.convert("RGB")).astype(int) - upright).mean() < 12  # ...and not twice
    before = heif.decode(original, LIMITS).frames[0]
    assert np.abs(np.asarray(out.convert("RGB")).astype(int)
                  - np.asarray(before.convert("RGB")).astype(int)).mean() < 6


def test_heic_metadata_removed_orientation_applied_once(tmp_path, exiftool):
    original = heic_with_metadata(orientation=6)
    v = _checked(original, tmp_path, "h.heic")
    _heif_checks(original, v, tmp_path)
    assert v.output[8:12] == b"heic"


@pytest.mark.skipif(not HAS_AVIF, reason="Pillow built without AVIF")
def test_avif_metadata_removed_orientation_applied_once(tmp_path, exiftool):
    original = avif_with_metadata(orientation=6)
    v = _checked(original, tmp_path, "h.avif")
    _heif_checks(original, v, tmp_path)
    assert v.output[8:12] == b"avif"


def test_heic_clean_file_unchanged_extra_images_and_thumbnails_dropped():
    import pillow_heif

    clean = io.BytesIO()
    pillow_heif.from_pillow(picture()).save(clean, quality=80)
    clean = clean.getvalue()
    v = sanitize(clean, META_ONLY)
    assert v.output == clean and v.actions == []
    v = sanitize(clean + b"PK\x03\x04secret", META_ONLY)
    assert v.removed["trailing_data"] == 1 and b"secret" not in v.output

    both = pillow_heif.from_pillow(picture())
    both.add_from_pillow(picture(64, 48))
    buf = io.BytesIO()
    both.save(buf, quality=80, thumbnails=[64])
    v = sanitize(buf.getvalue(), META_ONLY)
    assert v.removed["heif_extra_images"] == 1 and v.removed["heif_thumbnail"] >= 1
    out = pillow_heif.open_heif(v.output)
    assert len(out) == 1 and out.size == (320, 240) and not out.info["thumbnails"]


def test_full_engine_with_pixel_scan(tmp_path, exiftool):
    """The default pipeline (strip, then decode for the pixel scanner) on every new format."""
    cases = {**_samples(tmp_path), "bmp": encode(picture(), "BMP") + b"PK\x03\x04secret" + b"\x01" * 30}
    for name, data in cases.items():
        v = sanitize(data)
        assert v.refused is None, (name, v.refused, v.detail)
        assert bad_tags(exif_report(v.output, tmp_path, f"full-{name}")) == [], name
        assert planted_values(v.output) == [] and b"secret" not in v.output, name


def test_heic_with_text_and_metadata_is_encoded_once(tmp_path, exiftool, monkeypatch):
    """HEIF metadata only goes by encoding again; when the scan redacts pixels that
    encode already drops it, so the engine must not encode twice (x265 is the slow part)."""
    import pillow_heif
    from pictures import viewer_screen

    buf = io.BytesIO()
    pillow_heif.from_pillow(viewer_screen(size=(960, 720), text_px=20)).save(buf, quality=90, exif=_exif(1),
                                                                              xmp=_XMP)
    encodes = []
    real = heif._save_heic
    monkeypatch.setattr(heif, "_save_heic", lambda *a, **k: encodes.append(1) or real(*a, **k))
    v = sanitize(buf.getvalue())
    assert v.refused is None, v.detail
    assert v.actions == ["metadata_removed", "pixels_redacted"] and len(encodes) == 1
    assert bad_tags(exif_report(v.output, tmp_path, "heic-text")) == [] and planted_values(v.output) == []
    assert {"location", "person_name"} <= _kinds(v)

    encodes.clear()  # no text: the metadata-only encode still happens, once
    buf = io.BytesIO()
    pillow_heif.from_pillow(picture()).save(buf, quality=90, exif=_exif(1), xmp=_XMP)
    v = sanitize(buf.getvalue())
    assert v.actions == ["metadata_removed"] and len(encodes) == 1
    assert bad_tags(exif_report(v.output, tmp_path, "heic-plain")) == [] and planted_values(v.output) == []


# --- bad files ------------------------------------------------------------------------

def _samples(tmp) -> dict[str, bytes]:
    out = {
        "gif": gif_with_metadata(tmp),
        "animated_gif": animated_gif_with_metadata(tmp),
        "tiff": tiff_with_metadata(tmp, pages=2),
        "bmp": encode(picture(), "BMP"),
        "bmp_palette": encode(picture().quantize(16), "BMP"),
        "heic": heic_with_metadata(),
    }
    if HAS_AVIF:
        out["avif"] = avif_with_metadata()
    return out


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_files_are_refused_never_raised(tmp_path, cut):
    modules = {"gif": gif, "animated_gif": gif, "tiff": tiff, "bmp": bmp, "bmp_palette": bmp, "heic": heif,
               "avif": heif}
    for name, data in _samples(tmp_path).items():
        short = data[: int(len(data) * cut)]
        v = sanitize(short, META_ONLY)
        assert v.refused == "corrupt" and v.output is None, (name, v)
        with pytest.raises(Refused):
            modules[name].decode(short, LIMITS)


def test_random_damage_never_raises(tmp_path):
    rng = random.Random(1234)
    modules = {"gif": gif, "animated_gif": gif, "tiff": tiff, "bmp": bmp, "bmp_palette": bmp, "heic": heif,
               "avif": heif}
    for name, data in _samples(tmp_path).items():
        for _ in range(25):
            damaged = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            v = sanitize(bytes(damaged), META_ONLY)
            assert v.refused != "engine_error", (name, v.detail)
            try:
                modules[name].decode(bytes(damaged), LIMITS)
            except Refused:
                pass


def _gif_screen(width: int, height: int) -> bytes:
    data = bytearray(encode(picture(8, 8), "GIF"))
    struct.pack_into("<HH", data, 6, width, height)
    return bytes(data)


def _tiff_size(width: int, height: int) -> bytes:
    data = bytearray(encode(picture(8, 8), "TIFF"))
    t = tiff._Tiff(bytes(data))
    page = t.pages()[0]
    for i, tag in enumerate(sorted(page.entries)):
        if tag in (256, 257):
            struct.pack_into("<HHII", data, page.offset + 2 + 12 * i, tag, 4, 1, width if tag == 256 else height)
    return bytes(data)


def test_absurd_dimensions_are_refused_before_decoding():
    for data, module in ((_gif_screen(60000, 60000), gif), (_tiff_size(100000, 100000), tiff)):
        v = sanitize(data, EngineOptions(pixels=False, limits=EngineLimits(max_pixels=50_000_000)))
        assert v.refused == "too_large", v
        with pytest.raises(Refused) as e:
            module.decode(data, LIMITS)
        assert e.value.reason == "too_large"
    bomb = bytearray(encode(picture(8, 8), "BMP"))
    struct.pack_into("<ii", bomb, 18, 30000, 30000)
    assert sanitize(bytes(bomb), META_ONLY).refused in ("too_large", "corrupt")
    with pytest.raises(Refused):
        bmp.decode(bytes(bomb), LIMITS)


def test_pixel_limit_applies_to_every_format(tmp_path):
    small = EngineOptions(pixels=False, limits=EngineLimits(max_pixels=1000))
    for name, data in _samples(tmp_path).items():
        assert sanitize(data, small).refused == "too_large", name
    tiny = EngineLimits(max_pixels=1000)
    for module, data in ((gif, gif_with_metadata(tmp_path)), (heif, heic_with_metadata()),
                         (bmp, encode(picture(), "BMP")), (jpeg, encode(picture(), "JPEG")),
                         (png, encode(picture(), "PNG")), (webp, encode(picture(), "WEBP"))):
        with pytest.raises(Refused) as e:
            module.decode(data, tiny)
        assert e.value.reason == "too_large"
    frames = EngineLimits(max_frames=3)
    with pytest.raises(Refused) as e:
        gif.decode(animated_gif_with_metadata(tmp_path), frames)
    assert e.value.reason == "too_large"


def test_gif_plain_text_unknown_extensions_and_loop():
    frames = animation(3, transparent=False)
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=3)
    # after the loop extension: a plain-text block with its control block, and a vendor extension
    at = data.index(b"NETSCAPE2.0") + 11 + 5
    plain = (b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control for the text below
             + b"\x21\x01\x0c" + b"\x00" * 12 + b"\x0aMRN 998877" + b"\x00"  # plain-text extension
             + b"\x21\xff\x0b" + b"VENDORAPP10" + b"\x05hello" + b"\x00")  # unknown application
    doctored = data[:at] + plain + data[at:]
    v = sanitize(doctored, META_ONLY)
    assert v.refused is None, v.detail
    assert v.removed["gif_plain_text"] == 1 and v.removed["gif_application"] == 1
    assert b"MRN" not in v.output and b"VENDOR" not in v.output
    assert b"NETSCAPE2.0" in v.output
    with Image.open(io.BytesIO(v.output)) as im:
        assert im.info["loop"] == 3 and im.n_frames == 3
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(v.output, "RGB"), frames_of(data, "RGB")))


def test_clean_gif_and_bmp_are_returned_unchanged():
    for data in (encode(picture(), "GIF"), encode(picture(), "BMP"), encode(picture().quantize(8), "BMP")):
        v = sanitize(data, META_ONLY)
        assert v.output == data and v.actions == [] and not v.removed


# --- decode() + encode() ------------------------------------------------------------------

def _apng() -> bytes:
    frames = animation(4, transparent=True)
    return encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=[50, 60, 70, 80], loop=2)


def _animated_webp() -> bytes:
    frames = animation(4, transparent=True)
    return encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=[50, 60, 70, 80],
                  loop=2, lossless=True)


def _roundtrip_cases(tmp):
    cases = [
        ("jpeg", jpeg, jpeg_with_metadata(tmp, orientation=6), False),
        ("png", png, plant(encode(picture(), "PNG"), ".png", tmp, [f"-PNG:Comment={PLANTED['png_text']}"]), True),
        ("png_palette", png, encode(picture().quantize(16), "PNG", bits=4), True),
        ("png_16bit_grey", png, encode(Image.fromarray((np.arange(64 * 48).reshape(48, 64) * 17 % 65535)
                                                       .astype(np.uint16)), "PNG"), True),
        ("apng", png, _apng(), True),
        ("webp_lossy", webp, encode(picture(), "WEBP", quality=85), False),
        ("webp_lossless", webp, encode(picture(), "WEBP", lossless=True), True),
        ("webp_animated", webp, _animated_webp(), True),
        ("gif", gif, gif_with_metadata(tmp), True),
        ("gif_animated", gif, animated_gif_with_metadata(tmp), True),
        ("tiff", tiff, tiff_with_metadata(tmp, pages=3, compression="tiff_lzw", orientation=6), True),
        ("tiff_jpeg", tiff, tiff_with_metadata(tmp, pages=1, compression="jpeg"), True),
        ("bmp", bmp, encode(picture(), "BMP"), True),
        ("bmp_v5_icc", bmp, bmp_v5_with_profile(), True),
        ("bmp_v5_alpha", bmp, bmp._with_profile(encode(animation(1, transparent=True)[0], "BMP"), None, alpha=True),
         True),
        ("heic", heif, heic_with_metadata(orientation=6), False),
    ]
    if HAS_AVIF:
        cases.append(("avif", heif, avif_with_metadata(orientation=6), False))
    return cases


def _painted(frame: Image.Image) -> tuple:
    """The painted box's colour as RGB(A) values (a "P" frame is painted with its darkest entry)."""
    px = frame.convert("RGBA").getpixel((15, 11))
    return tuple(px[:3])


def test_decode_encode_roundtrip_every_format(tmp_path, exiftool):
    for name, module, data, lossless in _roundtrip_cases(tmp_path):
        decoded = module.decode(data, LIMITS)
        n = len(decoded.frames)
        for frame in decoded.frames:
            fill = 0 if frame.mode in ("1", "L", "I", "I;16", "F") else (0,) * len(frame.getbands())
            if frame.mode == "P":
                palette = frame.getpalette()
                fill = min(range(len(palette) // 3), key=lambda i: sum(palette[3 * i:3 * i + 3]))
            ImageDraw.Draw(frame).rectangle([4, 4, 27, 19], fill=fill)
        out = decoded.encode(decoded.frames)
        module.strip(out, 10**8)  # a valid file of its format (raises Refused otherwise)
        again = module.decode(out, LIMITS)
        assert len(again.frames) == n, name
        for before, after in zip(decoded.frames, again.frames):
            assert after.size == before.size and after.mode == before.mode, name
            expected = np.array(_painted(before), dtype=int)
            if before.mode != "P":
                assert expected.max() == 0, name  # the box really is black
            got = np.array(_painted(after), dtype=int)
            assert np.abs(got - expected).max() <= (0 if lossless else 40), (name, got)
            if lossless:
                assert np.array_equal(np.asarray(after), np.asarray(before)), name
        assert bad_tags(exif_report(out, tmp_path, f"rt-{name}")) == [], name
        assert planted_values(out) == [], name


def test_jpeg_decode_is_upright_and_encode_keeps_tables(tmp_path):
    original = jpeg_with_metadata(tmp_path, orientation=6)
    decoded = jpeg.decode(original, LIMITS)
    assert decoded.photographic and decoded.frames[0].size == (240, 320)
    out = decoded.encode(decoded.frames)
    with Image.open(io.BytesIO(original)) as a, Image.open(io.BytesIO(out)) as b:
        assert b.quantization == a.quantization
        from PIL import JpegImagePlugin
        assert JpegImagePlugin.get_sampling(b) == JpegImagePlugin.get_sampling(a)
        assert not b.getexif()
    report = exif_report(out, tmp_path, "rt.jpg")
    assert "IFD0:Orientation" not in report and bad_tags(report) == []


def test_encode_keeps_animation_parameters():
    for data, module in ((_apng(), png), (_animated_webp(), webp)):
        decoded = module.decode(data, LIMITS)
        out = decoded.encode(decoded.frames)
        with Image.open(io.BytesIO(out)) as im:
            assert im.n_frames == 4 and im.info.get("loop") == 2
            durations = []
            for i in range(im.n_frames):
                im.seek(i)
                im.load()  # WebP sets the duration while loading
                durations.append(im.info["duration"])
        assert durations == [50, 60, 70, 80]


def test_icc_profiles_survive_encode():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for fmt, module in (("JPEG", jpeg), ("PNG", png), ("WEBP", webp), ("TIFF", tiff)):
        data = encode(picture(), fmt, icc_profile=icc)
        decoded = module.decode(data, LIMITS)
        with Image.open(io.BytesIO(decoded.encode(decoded.frames))) as im:
            assert im.info.get("icc_profile") == icc, fmt
    source = bmp_v5_with_profile()
    start, end = bmp._parse(source).profile
    decoded = bmp.decode(source, LIMITS)
    out = decoded.encode(decoded.frames)
    assert out[14] == 124 and source[start:end] in out


def test_corrupt_files_raise_refused_from_decode():
    cases = [(jpeg, encode(picture(), "JPEG")), (png, encode(picture(), "PNG")),
             (webp, encode(picture(), "WEBP")), (gif, encode(picture(), "GIF")),
             (tiff, encode(picture(), "TIFF", compression="tiff_lzw")), (bmp, encode(picture(), "BMP"))]
    for module, data in cases:
        with pytest.raises(Refused):
            module.decode(data[: len(data) // 2], LIMITS)
        broken = bytearray(data)
        broken[len(broken) // 2:len(broken) // 2 + 64] = b"\xff" * 64
        try:
            module.decode(bytes(broken), LIMITS)
        except Refused:
            pass
