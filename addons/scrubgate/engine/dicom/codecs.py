"""Transfer syntaxes: check encoded pixel data cheaply, and write redacted frames back.

Checking (`validate`) never decodes: native pixel data must be as long as its
frames; encapsulated pixel data must parse into items, hold as many frames as
Number of Frames says, and every frame must start (and, for the JPEG family,
end) with its codec's marker. That refuses truncated files and frame-count
lies without spending a second on a 500-frame volume that nobody will scan.

Writing (`store`) takes the redacted frames as decoded (colour already RGB)
and chooses the output syntax:

    source                                   output
    Explicit / Implicit VR Little Endian     the same (native)
    Deflated Explicit VR Little Endian       the same (the deflate is file-level)
    Explicit VR Big Endian (retired)         Explicit VR Little Endian
    RLE Lossless                             RLE Lossless
    JPEG-LS Lossless                         JPEG-LS Lossless
    JPEG-LS Near-Lossless                    JPEG-LS Near-Lossless, NEAR=0 (no further loss)
    JPEG 2000 Lossless                       JPEG 2000 Lossless
    JPEG 2000 (lossy)                        JPEG 2000, reversible codestream (no further loss)
    JPEG Baseline / Extended / Lossless,     Explicit VR Little Endian
    HTJ2K, anything else decodable
    any of the above the encoder refuses     Explicit VR Little Endian
    (RLE of 32-bit samples, say)

Photometric: colour is written as RGB with Planar Configuration 0 (the
decoders convert YBR_FULL, YBR_FULL_422, YBR_RCT/ICT to RGB; writing
YBR_FULL_422 back would be pydicom's 4:2:2 down-sampling, a second lossy
step). PALETTE COLOR stays indices with its LUT untouched; MONOCHROME1/2,
Bits Stored and the signedness stay as they were.

pydicom 3 has no JPEG (10918) or HTJ2K encoder; rather than add a
generation of loss with some other encoder, those leave as native pixels.
Whatever the route, a source that was lossy keeps saying so: Lossy Image
Compression "01", with the method (and the ratio, when missing) of the
source's own compression appended to what the file already recorded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..verdict import Refused

# Transfer syntax UIDs (pydicom.uid has them all, but importing pydicom at
# module import costs ~0.3 s in every worker that never sees a DICOM file).
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR = "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_LOSSLESS_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
RLE = "1.2.840.10008.1.2.5"

NATIVE_KEPT = (EXPLICIT_LE, IMPLICIT_LE, DEFLATED_LE)
REENCODED = (RLE, JPEG_LS_LOSSLESS, JPEG_LS_NEAR, J2K_LOSSLESS, J2K)

_JPEG_FAMILY = {"1.2.840.10008.1.2.4." + s for s in ("50", "51", "52", "53", "54", "55", "56", "57", "58", "59",
                                                         "60", "61", "62", "63", "64", "65", "66", "70", "80", "81")}
_J2K_FAMILY = {"1.2.840.10008.1.2.4." + s for s in ("90", "91", "92", "93", "201", "202", "203")}
_JPEG_LOSSY = {"1.2.840.10008.1.2.4." + s for s in ("50", "51", "52", "53", "54", "55", "56",
                                                        "59", "60", "61", "62", "63", "64")}
# MPEG-2, MPEG-4 AVC/H.264, HEVC/H.265: one video stream, not one item per frame.
_VIDEO = {"1.2.840.10008.1.2.4." + s for s in ("100", "100.1", "101", "101.1", "102", "102.1", "103", "103.1",
                                               "104", "104.1", "105", "105.1", "106", "106.1", "107", "108")}


def syntax_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name and name != uid else "an unknown transfer syntax"


def is_video(uid: str) -> bool:
    return uid in _VIDEO


# --- geometry --------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    rows: int
    columns: int
    frames: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    planar: int
    multiframe: bool  # Number of Frames is present (kept on write even when it is 1)

    @property
    def frame_bytes(self) -> int:
        """Bytes of one native frame (YBR_FULL_422 stores two samples per pixel)."""
        samples = 2 if self.photometric == "YBR_FULL_422" and self.samples == 3 else self.samples
        bits = self.rows * self.columns * samples * self.bits_allocated
        return bits // 8 if self.bits_allocated != 1 else (bits + 7) // 8


def geometry(ds) -> Geometry:
    """The Image Pixel module's numbers, checked; Refused("corrupt") when they make no image."""
    def number(keyword: str, default=None) -> int:
        value = ds.get(keyword, default)
        if value is None or value == "":
            if default is not None:
                return default
            raise Refused("corrupt", f"the DICOM image has no {keyword}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise Refused("corrupt", f"the DICOM image's {keyword} is not a number") from None

    rows, columns = number("Rows"), number("Columns")
    samples = number("SamplesPerPixel", 1)
    bits_allocated = number("BitsAllocated")
    bits_stored = number("BitsStored", bits_allocated)
    signed = number("PixelRepresentation", 0) == 1
    multiframe = "NumberOfFrames" in ds and ds.NumberOfFrames not in (None, "")
    frames = number("NumberOfFrames", 1) if multiframe else 1
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    planar = number("PlanarConfiguration", 0) if samples > 1 else 0
    if rows <= 0 or columns <= 0 or frames <= 0:
        raise Refused("corrupt", "the DICOM image has no rows, columns or frames")
    if samples not in (1, 3):
        raise Refused("corrupt", "the DICOM image has an unsupported number of samples per pixel")
    if bits_allocated not in (1, 8, 16, 32) or not 0 < bits_stored <= bits_allocated:
        raise Refused("corrupt", "the DICOM image has inconsistent bits allocated and bits stored")
    if not photometric:
        raise Refused("corrupt", "the DICOM image has no photometric interpretation")
    return Geometry(rows, columns, frames, samples, bits_allocated, bits_stored, signed, photometric,
                    planar, multiframe)


# --- cheap structural checks -------------------------------------------------------------


def validate(ds, geom: Geometry) -> None:
    """Refuse truncated or inconsistent pixel data without decoding it."""
    uid = str(ds.file_meta.TransferSyntaxUID)
    name = syntax_name(uid)
    elem = ds["PixelData"]
    value = elem.value
    if value is None or len(value) == 0:
        raise Refused("corrupt", f"the DICOM image's pixel data ({name}) is empty")
    encapsulated = uid in _JPEG_FAMILY or uid in _J2K_FAMILY or uid == RLE or is_video(uid) \
        or getattr(elem, "is_undefined_length", False)
    if not encapsulated:
        if len(value) < geom.frame_bytes * geom.frames:
            raise Refused("corrupt", f"the DICOM image's pixel data ({name}) is truncated: "
                                     "it is shorter than its frames")
        return
    if uid in NATIVE_KEPT or uid == EXPLICIT_BE:
        raise Refused("corrupt", f"the DICOM image's pixel data is encapsulated but the transfer syntax "
                                 f"({name}) is not a compressed one")
    try:
        items = _items(value)
    except ValueError as e:
        raise Refused("corrupt", f"the DICOM image's encapsulated pixel data ({name}) is damaged: {e}") from None
    if len(items) < 2:
        raise Refused("corrupt", f"the DICOM image's encapsulated pixel data ({name}) holds no fragments")
    bot_start, bot_len = items[0]
    if bot_len % 4:
        raise Refused("corrupt", f"the DICOM image's basic offset table ({name}) is damaged")
    fragments = items[1:]
    if is_video(uid):
        return  # one stream over all fragments; frames are only known to a video decoder
    starts = _frame_starts(ds, value, bot_start, bot_len, fragments, geom.frames, uid, name)
    if len(starts) != geom.frames:
        raise Refused("corrupt", f"the DICOM image's encapsulated pixel data ({name}) holds a different "
                                 "number of frames than Number of Frames says")
    bounds = starts + [len(fragments)]
    for k in range(geom.frames):
        first = fragments[bounds[k]]
        last = fragments[bounds[k + 1] - 1]
        head = bytes(value[first[0]:first[0] + 64])
        tail = bytes(value[max(last[0], last[0] + last[1] - 16):last[0] + last[1]])
        if not _frame_ok(uid, head, tail, first[1]):
            raise Refused("corrupt", f"a frame of the DICOM image's {name} pixel data is damaged or truncated")


def _items(value: bytes) -> list[tuple[int, int]]:
    """(value offset, length) of every item, the Basic Offset Table first."""
    out: list[tuple[int, int]] = []
    pos, size = 0, len(value)
    while pos + 8 <= size:
        group, element, length = struct.unpack_from("<HHL", value, pos)
        tag = group << 16 | element
        if tag == 0xFFFEE0DD:
            break
        if tag != 0xFFFEE000:
            raise ValueError("an item tag is missing")
        if length == 0xFFFFFFFF:
            raise ValueError("an item has undefined length")
        if pos + 8 + length > size:
            raise ValueError("the last fragment is truncated")
        out.append((pos + 8, length))
        pos += 8 + length
    else:
        if pos != size and not (size - pos < 8 and not any(value[pos:])):
            raise ValueError("the fragments end in the middle of an item")
    return out


def _frame_starts(ds, value, bot_start, bot_len, fragments, nframes, uid, name) -> list[int]:
    """Index of each frame's first fragment."""
    positions = {off - 8 - (bot_start + bot_len): i for i, (off, _) in enumerate(fragments)}
    if "ExtendedOffsetTable" in ds and ds.ExtendedOffsetTable:
        raw = ds.ExtendedOffsetTable
        if len(raw) % 8:
            raise Refused("corrupt", f"the DICOM image's extended offset table ({name}) is damaged")
        offsets = list(struct.unpack(f"<{len(raw) // 8}Q", raw))
    elif bot_len:
        offsets = list(struct.unpack_from(f"<{bot_len // 4}L", value, bot_start))
    else:
        offsets = None
    if offsets is not None:
        try:
            starts = [positions[o] for o in offsets]
        except KeyError:
            raise Refused("corrupt", f"the DICOM image's offset table ({name}) points outside its fragments") from None
        if starts != sorted(set(starts)) or starts[0] != 0:
            raise Refused("corrupt", f"the DICOM image's offset table ({name}) is out of order")
        return starts
    if len(fragments) == nframes:
        return list(range(nframes))
    if nframes == 1:
        return [0]
    if uid == RLE:
        raise Refused("corrupt", f"the DICOM image's {name} pixel data does not hold one fragment per frame")
    # Several fragments per frame and no table: a frame starts where a codestream does.
    return [i for i, (off, length) in enumerate(fragments) if _starts_codestream(uid, bytes(value[off:off + 12]))]


def _starts_codestream(uid: str, head: bytes) -> bool:
    if uid in _J2K_FAMILY:
        return head[:4] == b"\xff\x4f\xff\x51" or head[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n"
    return head[:2] == b"\xff\xd8"


def _frame_ok(uid: str, head: bytes, tail: bytes, first_length: int) -> bool:
    if uid == RLE:
        if len(head) < 64:
            return False
        n, *offsets = struct.unpack_from("<16L", head)
        return 1 <= n <= 15 and offsets[0] == 64 and all(
            offsets[i] < offsets[i + 1] for i in range(n - 1))
    if not _starts_codestream(uid, head):
        return False
    if uid in _J2K_FAMILY and head[:4] != b"\xff\x4f\xff\x51":
        return True  # a JP2 file: boxes may follow the codestream
    return b"\xff\xd9" in tail  # EOI / EOC, maybe followed by padding


# --- what the source was ----------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    uid: str
    name: str
    lossy: bool  # the pixel data in the file has been through lossy compression
    method: str | None  # the defined term of the source's own lossy compression, if it is
    ratio: float | None  # of the source's own compression


def describe(ds, geom: Geometry) -> Source:
    uid = str(ds.file_meta.TransferSyntaxUID)
    method = None
    value = ds.PixelData
    if uid in _JPEG_LOSSY:
        method = "ISO_10918_1"
    elif uid == JPEG_LS_NEAR and _jpeg_ls_near(_first_frame(value)) != 0:
        method = "ISO_14495_1"
    elif uid in (J2K, HTJ2K, "1.2.840.10008.1.2.4.93") and _j2k_irreversible(_first_frame(value)):
        method = "ISO_15444_15" if uid == HTJ2K else "ISO_15444_1"
    lossy = method is not None or str(ds.get("LossyImageCompression", "")).strip() == "01"
    ratio = None
    if method is not None and value:
        raw = geom.rows * geom.columns * geom.samples * geom.bits_allocated // 8 * geom.frames
        ratio = raw / max(1, len(value))
    return Source(uid, syntax_name(uid), lossy, method, ratio)


def _first_frame(value: bytes) -> bytes:
    try:
        items = _items(value)
    except (ValueError, struct.error):
        return b""
    if len(items) < 2:
        return b""
    off, length = items[1]
    return bytes(value[off:off + min(length, 65536)])


def _jpeg_ls_near(data: bytes) -> int | None:
    """NEAR of the first scan of a JPEG-LS codestream (0 = lossless), None if not found."""
    pos = 2 if data[:2] == b"\xff\xd8" else None
    while pos is not None and pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:  # SOS: Ls Ns (Cs Tm)*Ns NEAR ILV
            ns = data[pos + 4]
            near = pos + 5 + 2 * ns
            return data[near] if near < len(data) else None
        pos += 2 + length
    return None


def _j2k_irreversible(data: bytes) -> bool:
    """True when the first codestream uses the 9-7 irreversible wavelet (COD SPcod transform 0)."""
    start = data.find(b"\xff\x4f\xff\x51")
    if start < 0:
        return True  # cannot tell: assume the worst
    pos = start + 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return True
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0x52:  # COD
            transform = pos + 13
            return transform >= len(data) or data[transform] == 0
        if marker in (0x90, 0x93):  # SOT / SOD: main header over
            return True
        pos += 2 + length
    return True


# --- writing back -------------------------------------------------------------------------


def store(ds, arr: np.ndarray, photometric: str, bits_stored: int, source: Source) -> str:
    """Write `arr` (frames as decoded, with the frame axis when Number of Frames was present)
    into `ds` and encode it as the table above says. Returns the output transfer syntax UID."""
    from pydicom.uid import UID

    if source.uid == EXPLICIT_BE:
        _to_little_endian(ds)
    for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if keyword in ds:  # they describe the old fragments; compress() adds new ones if needed
            del ds[keyword]
    _set_native(ds, arr, photometric, bits_stored)
    out = str(ds.file_meta.TransferSyntaxUID)
    if source.uid in REENCODED:
        out = _reencode(ds, source.uid)
    elif source.uid in NATIVE_KEPT:
        if out != source.uid:
            ds.file_meta.TransferSyntaxUID = UID(source.uid)
            out = source.uid
    else:
        ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_LE)
        out = EXPLICIT_LE
    _record_lossy(ds, source)
    return out


def _set_native(ds, arr: np.ndarray, photometric: str, bits_stored: int) -> None:
    from pydicom.uid import UID

    if arr.dtype.itemsize <= 2 and arr.dtype.kind in "ui" and int(ds.get("BitsAllocated", 8)) != 1:
        lo, hi = (0, 2 ** bits_stored - 1) if arr.dtype.kind == "u" else (
            -(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1)
        if arr.size and (arr.min() < lo or arr.max() > hi):
            np.clip(arr, lo, hi, out=arr)  # bits above Bits Stored: no viewer shows them
        ds.set_pixel_data(arr, photometric, bits_stored, generate_instance_uid=False)
        return
    # 1-bit and 32-bit data: pydicom's set_pixel_data takes 8 and 16 bits only.
    from pydicom.pixels import pack_bits

    if int(ds.get("BitsAllocated", 8)) == 1:
        data = pack_bits(arr.astype(np.uint8), pad=False)
    else:
        data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    ds.PixelData = data if len(data) % 2 == 0 else data + b"\x00"
    elem = ds["PixelData"]
    elem.VR = "OB" if int(ds.BitsAllocated) <= 8 else "OW"
    elem.is_undefined_length = False
    ds.PhotometricInterpretation = photometric
    if int(ds.get("SamplesPerPixel", 1)) > 1:
        ds.PlanarConfiguration = 0
    ds._pixel_array = None
    ds._pixel_id = {}
    if str(ds.file_meta.TransferSyntaxUID) not in NATIVE_KEPT:
        ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_LE)


def _reencode(ds, uid: str) -> str:
    from pydicom.uid import UID

    try:
        if uid == J2K:
            # The JPEG 2000 syntax holds reversible codestreams too: no second generation of loss.
            ds.compress(UID(J2K_LOSSLESS), generate_instance_uid=False)
            ds.file_meta.TransferSyntaxUID = UID(J2K)
        elif uid == JPEG_LS_NEAR:
            ds.compress(UID(JPEG_LS_NEAR), jls_error=0, generate_instance_uid=False)
        else:
            ds.compress(UID(uid), generate_instance_uid=False)
        return uid
    except (RuntimeError, ValueError, NotImplementedError):
        # No plugin for this bit depth / colour model: native pixels are always possible.
        ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_LE)
        return EXPLICIT_LE


def _record_lossy(ds, source: Source) -> None:
    if not source.lossy:
        return
    ds.LossyImageCompression = "01"
    if source.method is None:
        return
    methods = [str(m) for m in _as_list(ds.get("LossyImageCompressionMethod"))]
    ratios = [str(r) for r in _as_list(ds.get("LossyImageCompressionRatio"))]
    if methods and methods[-1] == source.method:
        if not ratios and source.ratio and len(methods) == 1:
            ds.LossyImageCompressionRatio = _ds_ratio(source.ratio)
        return
    if len(ratios) == len(methods) and source.ratio:
        ratios.append(_ds_ratio(source.ratio))
        ds.LossyImageCompressionRatio = ratios if len(ratios) > 1 else ratios[0]
    methods.append(source.method)
    ds.LossyImageCompressionMethod = methods if len(methods) > 1 else methods[0]


def _as_list(value) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [v for v in value if str(v).strip()]
    return [value]


def _ds_ratio(ratio: float) -> str:
    return f"{ratio:.2f}"[:16]


def _to_little_endian(ds) -> None:
    """Re-encode a big-endian dataset's binary values so it can be written little endian.

    Numbers (US, SS, FL ...) are held decoded and the writer encodes them; OW,
    OF, OL, OD and OV values are held as raw bytes in the file's byte order,
    and are swapped here. (UN values cannot be: their structure is unknown;
    the header profile removes private and unknown elements anyway.)"""
    from pydicom.uid import UID

    _swap_words(ds)
    ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_LE)
    ds.set_original_encoding(False, True, ds.original_character_set)


_WORD = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def _swap_words(ds, depth: int = 0) -> None:
    for elem in ds:
        if elem.VR == "SQ" and depth < 16:
            for item in elem.value:
                _swap_words(item, depth + 1)
                if hasattr(item, "set_original_encoding"):
                    item.set_original_encoding(False, True, getattr(item, "original_character_set", None))
        elif elem.VR in _WORD and elem.tag != 0x7FE00010 and isinstance(elem.value, (bytes, bytearray)):
            size = _WORD[elem.VR]
            raw = bytes(elem.value)
            if len(raw) % size == 0:
                elem.value = np.frombuffer(raw, dtype=f">u{size}").astype(f"<u{size}").tobytes()
