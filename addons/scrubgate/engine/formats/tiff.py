"""TIFF (classic and BigTIFF, single and multi-page): rebuild every page from
an allow-list of imaging tags and copy the image data byte for byte.

TIFF interleaves tags and image data, so instead of deleting in place this
writes a fresh file: for each page in the IFD chain, the strips or tiles are
copied unchanged and a new IFD carries only the tags a decoder needs
(dimensions, sample layout, compression and its tables, photometric and
colour map, resolution, orientation, ICC profile). This is pixel-exact for
every bit depth and every compression, including JPEG-in-TIFF and CCITT,
which a Pillow round trip is not (it narrows 16-bit RGB to 8 bits and would
re-encode JPEG). Nothing is decoded to strip.

Everything else goes: the EXIF and GPS IFDs, XMP (700), IPTC (33723),
Photoshop resources (34377), GeoTIFF georeferencing, descriptive text tags
(Artist, Copyright, ImageDescription, DateTime, Make, Model, Software,
HostComputer, DocumentName, PageName, XP*), SubIFDs (previews and thumbnails:
second copies of the picture), private tags, and bytes no IFD points at.
Old-style JPEG (compression 6) is refused: its tables live behind offsets.

`decode` hands every page to the scanner through Pillow, in display
orientation; `encode` writes the pages back with Pillow, each with its own
compression (JPEG-compressed pages are written with Deflate instead, so
redaction adds no second generation of JPEG loss), resolution and ICC profile.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from collections import Counter
from dataclasses import dataclass

from ..limits import EngineLimits
from ..verdict import Finding, Refused, Verdict, finish
from . import raster
from .metadata import _EXIF_TAG_KINDS, inspect_iptc, inspect_xmp

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4,
               16: 8, 17: 8, 18: 8}
_INT_FORMATS = {1: "B", 3: "H", 4: "I", 13: "I", 16: "Q", 18: "Q"}

# Tags a decoder needs to draw the page the way the original drew.
_KEEP = {
    254, 255,  # (New)SubfileType
    256, 257, 258, 259, 262, 263, 264, 265, 266,  # size, bits, compression, photometric, ...
    273, 274, 277, 278, 279, 280, 281, 282, 283, 284,  # strips, orientation, samples, resolution
    290, 291, 292, 293, 296, 297, 301,  # gray response, CCITT options, unit, page number, transfer
    317, 318, 319, 320, 321, 322, 323, 324, 325,  # predictor, white point, colour map, tiles
    332, 334, 336, 338, 339, 340, 341, 342,  # ink set, extra samples, sample format, ranges
    347,  # JPEGTables
    529, 530, 531, 532,  # YCbCr coefficients, subsampling, positioning, reference black/white
    34675,  # ICC profile
}
_STRIP_OFFSETS, _STRIP_COUNTS, _TILE_OFFSETS, _TILE_COUNTS = 273, 279, 324, 325
_EXIF_IFD, _GPS_IFD, _INTEROP_IFD, _SUB_IFDS = 34665, 34853, 40965, 330
_XMP, _IPTC, _PHOTOSHOP = 700, 33723, 34377
_GEOTIFF = {33550, 33922, 34264, 34735, 34736, 34737}
# Descriptive text in IFD0 that metadata._EXIF_TAG_KINDS does not name.
_TEXT_TAGS = {269: "document_name", 271: "make", 272: "model", 285: "page_name", 305: "software",
              316: "host_computer"}
_MAX_PAGES = 1000  # strip only knows max_pixels; decode uses EngineLimits.max_frames
_MAX_ENTRIES = 4096


@dataclass
class _Entry:
    tag: int
    type: int
    count: int
    value: bytes | None  # raw bytes in the file's byte order; None when unreadable
    offset: int | None  # where an out-of-line value lives


@dataclass
class _Page:
    offset: int
    end: int  # offset after the IFD
    entries: dict[int, _Entry]
    width: int
    height: int
    chunks: list[tuple[int, int]]  # strips or tiles: (offset, byte count)
    orientation: int


class _Tiff:
    def __init__(self, data: bytes):
        self.data = data
        if len(data) < 8 or data[:2] not in (b"II", b"MM"):
            raise Refused("corrupt", "TIFF header missing")
        self.e = "<" if data[:2] == b"II" else ">"
        (magic,) = struct.unpack(self.e + "H", data[2:4])
        if magic == 42:
            self.big = False
            self.first = struct.unpack(self.e + "I", data[4:8])[0]
        elif magic == 43:
            if len(data) < 16 or struct.unpack(self.e + "HH", data[4:8]) != (8, 0):
                raise Refused("corrupt", "BigTIFF header is malformed")
            self.big = True
            self.first = struct.unpack(self.e + "Q", data[8:16])[0]
        else:
            raise Refused("corrupt", "TIFF header missing")
        self.header_size = 16 if self.big else 8
        self.off_fmt = "Q" if self.big else "I"
        self.entry_size, self.inline = (20, 8) if self.big else (12, 4)

    def ifd(self, offset: int) -> tuple[dict[int, _Entry], int, int]:
        """Entries, next-IFD offset and end offset of the IFD at `offset`."""
        data, e = self.data, self.e
        head = 8 if self.big else 2
        if offset < self.header_size or offset + head > len(data):
            raise Refused("corrupt", "TIFF directory lies outside the file")
        (count,) = struct.unpack(e + ("Q" if self.big else "H"), data[offset:offset + head])
        if count == 0 or count > _MAX_ENTRIES:
            raise Refused("corrupt", "TIFF directory has an implausible number of entries")
        end = offset + head + count * self.entry_size + (8 if self.big else 4)
        if end > len(data):
            raise Refused("corrupt", "TIFF directory runs past the end of the file")
        entries: dict[int, _Entry] = {}
        fmt = e + ("HHQ" if self.big else "HHI")
        for i in range(count):
            pos = offset + head + i * self.entry_size
            tag, typ, n = struct.unpack(fmt, data[pos:pos + self.entry_size - self.inline])
            field = data[pos + self.entry_size - self.inline:pos + self.entry_size]
            size = _TYPE_SIZES.get(typ, 0) * n
            value, where = None, None
            if typ in _TYPE_SIZES and size <= self.inline:
                value = field[:size]
            elif typ in _TYPE_SIZES:
                (where,) = struct.unpack(e + self.off_fmt, field)
                if where + size <= len(data):
                    value = data[where:where + size]
            entries[tag] = _Entry(tag, typ, n, value, where)
        (nxt,) = struct.unpack(e + self.off_fmt, data[end - (8 if self.big else 4):end])
        return entries, nxt, end

    def ints(self, entry: _Entry | None) -> list[int]:
        if entry is None or entry.value is None or entry.type not in _INT_FORMATS:
            return []
        return list(struct.unpack(self.e + _INT_FORMATS[entry.type] * entry.count, entry.value))

    def pages(self, max_pages: int = _MAX_PAGES) -> list[_Page]:
        pages: list[_Page] = []
        seen: set[int] = set()
        offset = self.first
        while offset:
            if offset in seen:
                raise Refused("corrupt", "TIFF page chain loops")
            if len(pages) >= max_pages:
                raise Refused("too_large", f"TIFF has more than {max_pages} pages")
            seen.add(offset)
            entries, nxt, end = self.ifd(offset)
            pages.append(self._page(offset, end, entries))
            offset = nxt
        if not pages:
            raise Refused("corrupt", "TIFF has no pages")
        return pages

    def _page(self, offset: int, end: int, entries: dict[int, _Entry]) -> _Page:
        for tag in _KEEP & entries.keys():
            if entries[tag].value is None:
                raise Refused("corrupt", "TIFF tag value lies outside the file")
        width, height = (self.ints(entries.get(256)) or [0])[0], (self.ints(entries.get(257)) or [0])[0]
        if width == 0 or height == 0:
            raise Refused("corrupt", "TIFF page has zero or missing width or height")
        if (self.ints(entries.get(259)) or [1])[0] == 6:
            raise Refused("unsupported_format", "old-style JPEG-in-TIFF is not supported")
        if _TILE_OFFSETS in entries:
            offsets, counts = self.ints(entries[_TILE_OFFSETS]), self.ints(entries.get(_TILE_COUNTS))
        else:
            offsets, counts = self.ints(entries.get(_STRIP_OFFSETS)), self.ints(entries.get(_STRIP_COUNTS))
        if not offsets or len(offsets) != len(counts):
            raise Refused("corrupt", "TIFF page has no usable strip or tile table")
        for off, n in zip(offsets, counts):
            if n and off + n > len(self.data):
                raise Refused("corrupt", "TIFF image data runs past the end of the file")
        orientation = (self.ints(entries.get(274)) or [1])[0]
        return _Page(offset, end, entries, width, height, list(zip(offsets, counts)),
                     orientation if 1 <= orientation <= 8 else 1)

    def ranges(self, offset: int, depth: int = 0, seen: set | None = None) -> list[tuple[int, int]]:
        """Byte ranges an IFD and everything it points at occupy (for finding hidden bytes)."""
        seen = set() if seen is None else seen
        if offset in seen or depth > 3:
            return []
        seen.add(offset)
        try:
            entries, _, end = self.ifd(offset)
        except Refused:
            return []
        out = [(offset, end)]
        for entry in entries.values():
            if entry.offset is not None and entry.value is not None:
                out.append((entry.offset, entry.offset + len(entry.value)))
        offsets = self.ints(entries.get(_TILE_OFFSETS) or entries.get(_STRIP_OFFSETS))
        counts = self.ints(entries.get(_TILE_COUNTS) or entries.get(_STRIP_COUNTS))
        out.extend((o, o + n) for o, n in zip(offsets, counts) if n and o + n <= len(self.data))
        for tag in (_EXIF_IFD, _GPS_IFD, _INTEROP_IFD, _SUB_IFDS):
            for sub in self.ints(entries.get(tag)):
                out.extend(self.ranges(sub, depth + 1, seen))
        return out


def _text_present(entry: _Entry) -> bool:
    return entry.value is not None and bool(entry.value.strip(b"\x00 "))


def _classify(t: _Tiff, page: _Page, removed: Counter, findings: dict) -> None:
    """Count and describe the tags of one page that will not be copied."""
    def find(kind: str, source: str, recognizer: str) -> None:
        findings.setdefault((kind, source, recognizer), Finding(kind, source, recognizer))

    for tag, entry in page.entries.items():
        if tag in _KEEP:
            continue
        if tag == _EXIF_IFD:
            removed["exif"] += 1
            for sub in t.ints(entry)[:1]:
                try:
                    sub_entries = t.ifd(sub)[0]
                except Refused:
                    find("free_text", "exif", "exif.unparsed")
                    continue
                for stag, sentry in sub_entries.items():
                    if stag in _EXIF_TAG_KINDS and sentry.count:
                        kind, name = _EXIF_TAG_KINDS[stag]
                        find(kind, "exif", f"exif.{name}")
        elif tag == _GPS_IFD:
            removed["gps"] += 1
            find("location", "exif", "exif.gps_ifd")
        elif tag == _XMP:
            removed["xmp"] += 1
            for f in inspect_xmp(entry.value or b""):
                findings.setdefault((f.kind, f.source, f.recognizer), f)
        elif tag in (_IPTC, _PHOTOSHOP):
            removed["iptc" if tag == _IPTC else "photoshop"] += 1
            value = entry.value or b""
            if tag == _IPTC or b"\x1c\x02" in value:
                for f in inspect_iptc(value):
                    findings.setdefault((f.kind, f.source, f.recognizer), f)
            else:
                find("free_text", "photoshop", "tiff.photoshop")
        elif tag in _GEOTIFF:
            removed["geotiff"] += 1
            find("location", "tiff", "tiff.geotiff")
        elif tag == _SUB_IFDS:
            removed["tiff_subifd"] += max(1, entry.count)
        elif tag in _EXIF_TAG_KINDS or tag in _TEXT_TAGS:
            removed["tiff_text"] += 1
            if _text_present(entry):
                kind, name = _EXIF_TAG_KINDS.get(tag) or ("free_text", _TEXT_TAGS[tag])
                find(kind, "tiff", f"tiff.{name}")
        else:
            removed["tiff_tag"] += 1


# Zeros, or the orphaned 8-byte header Pillow's multi-page writer leaves before each page.
_PADDING = re.compile(rb"\x00*(?:(?:II\*\x00|MM\x00\*).{4}\x00*)?", re.DOTALL)


def _hidden_bytes(t: _Tiff, pages: list[_Page]) -> tuple[bool, bool]:
    """(trailing data after everything referenced, non-zero bytes nothing references)."""
    ranges = [(0, t.header_size)]
    seen: set[int] = set()
    for page in pages:
        ranges.extend(t.ranges(page.offset, seen=seen))
    ranges.sort()
    data, pos, gaps = t.data, 0, False
    for start, end in ranges:
        if start > pos and not _PADDING.fullmatch(data[pos:start]):
            gaps = True
        pos = max(pos, end)
    return bool(data[pos:].strip(b"\x00")), gaps


def _rewrite(t: _Tiff, pages: list[_Page]) -> bytes:
    e, big, data = t.e, t.big, t.data
    off_fmt = e + t.off_fmt
    out = bytearray(data[:2])
    out += struct.pack(e + "HHHQ", 43, 8, 0, 0) if big else struct.pack(e + "HI", 42, 0)
    link = 8 if big else 4  # where the offset of the next IFD goes
    copied: dict[tuple[int, int], int] = {}
    total = 0
    for page in pages:
        new_offsets = []
        for off, n in page.chunks:
            if n == 0:
                new_offsets.append(0)
                continue
            if (off, n) not in copied:
                total += n
                if total > len(data):
                    raise Refused("corrupt", "TIFF image data blocks overlap")
                if len(out) % 2:
                    out += b"\x00"
                copied[(off, n)] = len(out)
                out += data[off:off + n]
            new_offsets.append(copied[(off, n)])
        entries = []
        offsets_tag = _TILE_OFFSETS if _TILE_OFFSETS in page.entries else _STRIP_OFFSETS
        other_layout = {322, 323, _TILE_OFFSETS, _TILE_COUNTS} if offsets_tag == _STRIP_OFFSETS else \
            {_STRIP_OFFSETS, 278, _STRIP_COUNTS}
        for tag in sorted(_KEEP & page.entries.keys() - other_layout):
            if tag == offsets_tag:
                raw = struct.pack(e + t.off_fmt * len(new_offsets), *new_offsets)
                entries.append((tag, 16 if big else 4, len(new_offsets), raw))
            else:
                entry = page.entries[tag]
                entries.append((tag, entry.type, entry.count, entry.value))
        if len(out) % 2:
            out += b"\x00"
        ifd_at = len(out)
        struct.pack_into(off_fmt, out, link, ifd_at)
        head, tail = (8, 8) if big else (2, 4)
        values_at = ifd_at + head + t.entry_size * len(entries) + tail
        ifd = bytearray(struct.pack(e + ("Q" if big else "H"), len(entries)))
        blobs = bytearray()
        entry_fmt = e + ("HHQ" if big else "HHI")
        for tag, typ, count, raw in entries:
            if len(raw) <= t.inline:
                field = raw.ljust(t.inline, b"\x00")
            else:
                if (values_at + len(blobs)) % 2:
                    blobs += b"\x00"
                field = struct.pack(off_fmt, values_at + len(blobs))
                blobs += raw
            ifd += struct.pack(entry_fmt, tag, typ, count) + field
        link = ifd_at + len(ifd)
        ifd += b"\x00" * tail
        out += ifd + blobs
    if not big and len(out) > 0xFFFFFFFF:
        raise Refused("too_large", "TIFF is too large to rewrite")
    return bytes(out)


def strip(data: bytes, max_pixels: int) -> Verdict:
    t = _Tiff(data)
    pages = t.pages()
    for page in pages:
        if page.width * page.height > max_pixels:
            raise Refused("too_large", f"TIFF page is {page.width}x{page.height}, over the pixel limit")
    verdict = Verdict(format="tiff", content="image")
    removed: Counter = Counter()
    findings: dict = {}
    for page in pages:
        _classify(t, page, removed, findings)
    trailing, gaps = _hidden_bytes(t, pages)
    if trailing:
        removed["trailing_data"] += 1
    if gaps and not removed:
        removed["unreferenced_data"] += 1
    return finish(verdict, removed, findings.values(), lambda: _rewrite(t, pages), data)


# --- pixels -----------------------------------------------------------------

# Compressions Pillow (libtiff) writes for any mode; others fall back to Deflate.
_WRITABLE = {"raw", "tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "packbits"}
_BILEVEL = {"group3", "group4", "tiff_ccitt"}  # only for mode "1"


def _transpose(orientation: int):
    from PIL import Image

    return {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}.get(orientation)


def decode(data: bytes, limits: EngineLimits) -> raster.Decoded:
    from PIL import Image, TiffImagePlugin

    t = _Tiff(data)
    pages = t.pages(max_pages=limits.max_frames + 1)
    if len(pages) > limits.max_frames:
        raise Refused("too_large", f"TIFF has {len(pages)} pages, over the frame limit")
    for page in pages:
        raster.check_size(page.width, page.height, 1, limits, "TIFF page")
    if sum(p.width * p.height for p in pages) > limits.max_total_pixels:
        raise Refused("too_large", "TIFF has too many pixels across its pages")
    frames, params = [], []
    # The directory chain parsed above is sound, so a picture Pillow cannot identify is
    # a pixel layout it has no decoder for (64-bit float, planar float, odd bit depths).
    with raster.decoding("TIFF", unidentified="TIFF pixel layout (bit depth, sample format or "
                                              "planar configuration) has no decoder"):
        with Image.open(io.BytesIO(data), formats=["TIFF"]) as im:
            if getattr(im, "n_frames", 1) != len(pages):
                raise Refused("corrupt", "TIFF pages do not match its directory chain")
            for i, page in enumerate(pages):
                im.seek(i)
                im.load()
                frame = im.copy()
                frame.info = {}
                compression = im.info.get("compression") or "raw"
                if compression in _BILEVEL and frame.mode != "1" or \
                        compression not in _WRITABLE | _BILEVEL:
                    compression = "tiff_adobe_deflate"  # JPEG and exotic codecs: lossless instead
                tags = im.tag_v2
                p = {"compression": compression, "icc_profile": im.info.get("icc_profile")}
                xres, yres = tags.get(282), tags.get(283)
                if page.orientation >= 5:
                    xres, yres = yres, xres
                if xres and yres:
                    p.update(x_resolution=xres, y_resolution=yres, resolution_unit=tags.get(296, 2))
                # Pillow applies the Orientation tag while loading a TIFF page; do it here
                # only if it evidently did not (the page is still in stored shape).
                method = _transpose(page.orientation)
                if method is not None and page.orientation >= 5 and page.width != page.height \
                        and frame.size == (page.width, page.height):
                    frame = frame.transpose(method)
                if frame.mode not in TiffImagePlugin.SAVE_INFO:
                    frame = frame.convert("RGBA" if "A" in frame.mode else "RGB")
                frames.append(frame)
                params.append(p)

    def encode(edited: list[Image.Image]) -> bytes:
        bare = raster.bare(edited, len(params))
        for b, p in zip(bare, params):
            b.encoderinfo = dict(p)
        buf = io.BytesIO()
        bare[0].save(buf, "TIFF", save_all=len(bare) > 1, append_images=bare[1:], **params[0])
        return buf.getvalue()

    return raster.Decoded(frames=frames, encode=encode)
