"""HEIC / HEIF / AVIF: keep the primary picture, re-encode it without metadata.

Removing EXIF and XMP items from an ISOBMFF container in place means
rewriting `iinf`, `iloc`, `iref` and `ipma` consistently; instead, when the
file carries anything besides the primary picture, the picture is decoded and
encoded afresh. That is NOT lossless: HEVC (via pillow_heif/libheif) and AV1
(via Pillow's AVIF plugin) are re-encoded at quality 90 with the original
chroma subsampling where known; bit depth above 8 survives for HEIC.

What the container says is read first, without decoding (`_Container`):
EXIF and XMP items, other metadata items, thumbnails, auxiliary images
(depth maps, gain maps, mattes; an alpha plane is kept), further top-level
images, image-sequence tracks, unknown top-level boxes and trailing bytes.
If there is none of that, the file is returned unchanged.

Orientation is applied exactly once: libheif applies `irot`/`imir` while
decoding HEIC; Pillow reports them for AVIF as an EXIF orientation, which is
applied here. The output is stored upright with no rotation and no EXIF, so
no viewer can rotate it again. The ICC (or nclx) colour profile is kept.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..limits import EngineLimits
from ..verdict import Finding, Refused, Verdict
from . import raster
from .metadata import inspect_exif, inspect_xmp

_HEVC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_AVIF_BRANDS = {b"avif", b"avis"}
_IMAGE_ITEMS = {b"hvc1", b"hev1", b"av01", b"grid", b"iden", b"iovl", b"jpeg", b"unci", b"avc1",
                b"j2k1", b"vvc1", b"hvt1", b"tmap", b"mski"}
_TOP_LEVEL = {b"ftyp", b"meta", b"mdat", b"free", b"skip", b"moov", b"wide"}
_QUALITY = 90
# x265's default preset spends 2.4 s on a 2 MP photo; "ultrafast" takes 0.33 s
# at quality 90, 56 dB PSNR against the decoded original (63 dB for the default)
# and a slightly smaller file. The upload waits for this encode, so speed wins.
_X265 = {"preset": "ultrafast"}
_MAX_ITEMS = 10_000


@dataclass
class _Item:
    type: bytes
    content_type: bytes = b""
    hidden: bool = False


@dataclass
class _Container:
    avif: bool
    items: dict[int, _Item] = field(default_factory=dict)
    refs: list[tuple[bytes, int, list[int]]] = field(default_factory=list)
    primary: int | None = None
    unknown_boxes: int = 0
    sequence: bool = False
    trailing: bool = False

    def from_items(self, ref_type: bytes) -> set[int]:
        return {src for typ, src, _ in self.refs if typ == ref_type}

    def to_items(self, ref_type: bytes) -> set[int]:
        return {dst for typ, _, dsts in self.refs if typ == ref_type for dst in dsts}

    def is_xmp(self, item: _Item) -> bool:
        return item.type == b"mime" and (b"xmp" in item.content_type or b"rdf" in item.content_type)

    def counts(self, primary_has_alpha: bool) -> Counter:
        """What a re-encode of the primary picture leaves behind."""
        removed: Counter = Counter()
        thumbnails = self.from_items(b"thmb")
        aux = self.from_items(b"auxl")
        inputs = self.to_items(b"dimg") | self.to_items(b"base")
        for item_id, item in self.items.items():
            if item.type == b"Exif":
                removed["exif"] += 1
            elif self.is_xmp(item):
                removed["xmp"] += 1
            elif item.type in (b"mime", b"uri "):
                removed["heif_metadata"] += 1
        if thumbnails:
            removed["heif_thumbnail"] += len(thumbnails)
        alpha_of_primary = any(typ == b"auxl" and self.primary in dsts for typ, _, dsts in self.refs)
        extra_aux = len(aux) - (1 if primary_has_alpha and alpha_of_primary else 0)
        if extra_aux > 0:
            removed["heif_aux_image"] += extra_aux
        top = [i for i, it in self.items.items()
               if it.type in _IMAGE_ITEMS and not it.hidden and i not in thumbnails | aux | inputs]
        extra = len([i for i in top if i != self.primary])
        if extra:
            removed["heif_extra_images"] += extra
        if self.unknown_boxes:
            removed["heif_box"] += self.unknown_boxes
        if self.trailing:
            removed["trailing_data"] += 1
        return removed


def _boxes(data: bytes, start: int, end: int, lenient: bool = False):
    """(type, payload start, box end) for each box in data[start:end]."""
    pos = start
    while pos < end:
        if pos + 8 > end:
            if lenient:
                return
            raise Refused("corrupt", "HEIF box header is truncated")
        size, typ = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise Refused("corrupt", "HEIF box header is truncated")
            (size,) = struct.unpack(">Q", data[pos + 8:pos + 16])
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end or not all(0x20 <= c < 0x7F for c in typ):
            if lenient:
                return
            raise Refused("corrupt", "HEIF box runs past the end of its container")
        yield typ, pos + header, pos + size
        pos += size


def _cstring(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    nul = data.find(b"\x00", pos, end)
    return (data[pos:end], end) if nul < 0 else (data[pos:nul], nul + 1)


def _parse_meta(c: _Container, data: bytes, start: int, end: int) -> None:
    for typ, p, e in _boxes(data, start + 4, end):  # meta is a full box
        if e - p < 4:
            continue
        version = data[p]
        if typ == b"pitm":
            fmt = ">H" if version == 0 else ">I"
            if p + 4 + struct.calcsize(fmt) <= e:
                (c.primary,) = struct.unpack(fmt, data[p + 4:p + 4 + struct.calcsize(fmt)])
        elif typ == b"iinf":
            q = p + 4 + (2 if version == 0 else 4)
            for ityp, ip, ie in _boxes(data, q, e):
                if ityp != b"infe" or ie - ip < 4:
                    continue
                iversion, flags = data[ip], int.from_bytes(data[ip + 1:ip + 4], "big")
                if iversion < 2:
                    continue  # no item types before version 2
                idfmt = ">H" if iversion == 2 else ">I"
                q2 = ip + 4
                size = struct.calcsize(idfmt)
                if q2 + size + 6 > ie:
                    raise Refused("corrupt", "HEIF item entry is truncated")
                (item_id,) = struct.unpack(idfmt, data[q2:q2 + size])
                item_type = data[q2 + size + 2:q2 + size + 6]
                _, q3 = _cstring(data, q2 + size + 6, ie)  # item name: never read
                content_type = _cstring(data, q3, ie)[0] if item_type == b"mime" else b""
                c.items[item_id] = _Item(item_type, content_type.lower(), bool(flags & 1))
                if len(c.items) > _MAX_ITEMS:
                    raise Refused("too_large", "HEIF has too many items")
        elif typ == b"iref":
            idfmt = ">H" if version == 0 else ">I"
            size = struct.calcsize(idfmt)
            for rtyp, rp, re_ in _boxes(data, p + 4, e):
                if rp + size + 2 > re_:
                    raise Refused("corrupt", "HEIF item reference is truncated")
                (src,) = struct.unpack(idfmt, data[rp:rp + size])
                (n,) = struct.unpack(">H", data[rp + size:rp + size + 2])
                q = rp + size + 2
                if q + n * size > re_:
                    raise Refused("corrupt", "HEIF item reference is truncated")
                dsts = list(struct.unpack(">" + idfmt[1] * n, data[q:q + n * size]))
                c.refs.append((rtyp, src, dsts))
                if len(c.refs) > _MAX_ITEMS:
                    raise Refused("too_large", "HEIF has too many item references")


def _container(data: bytes) -> _Container:
    if len(data) < 16 or data[4:8] != b"ftyp":
        raise Refused("corrupt", "HEIF file type box missing")
    (ftyp_size,) = struct.unpack(">I", data[:4])
    if ftyp_size < 16 or ftyp_size > len(data):
        raise Refused("corrupt", "HEIF file type box is malformed")
    major = data[8:12]
    brands = {major} | {data[i:i + 4] for i in range(16, ftyp_size - 3, 4)}
    avif = major in _AVIF_BRANDS or (bool(brands & _AVIF_BRANDS) and major not in _HEVC_BRANDS)
    c = _Container(avif=avif)
    seen: set[bytes] = set()
    pos = 0
    for typ, p, e in _boxes(data, 0, len(data), lenient=True):
        pos = e
        seen.add(typ)
        if typ == b"meta":
            _parse_meta(c, data, p, e)
        elif typ == b"moov":
            c.sequence = True
        elif typ not in _TOP_LEVEL:
            c.unknown_boxes += 1
    if b"meta" not in seen:
        raise Refused("corrupt", "HEIF has no metadata box (truncated?)")
    if pos < len(data):
        if b"mdat" not in seen:
            raise Refused("corrupt", "HEIF is truncated")
        c.trailing = bool(data[pos:].strip(b"\x00"))
    if c.primary is None or c.primary not in c.items:
        raise Refused("corrupt", "HEIF has no primary image")
    return c


# --- decoders ---------------------------------------------------------------

_DECODE_ERRORS = raster.DECODE_ERRORS + (RuntimeError,)
_registered = False


def _pillow_heif():
    global _registered
    import pillow_heif

    if not _registered:
        pillow_heif.register_heif_opener()
        _registered = True
    return pillow_heif


def _errors() -> tuple:
    from PIL import Image

    return _DECODE_ERRORS + (Image.DecompressionBombError,)


def _failed(e: Exception, what: str) -> Refused:
    from PIL import Image

    if isinstance(e, Image.DecompressionBombError) or "security limit" in str(e).lower():
        return Refused("too_large", f"{what} is over a size limit")
    return Refused("corrupt", f"{what} could not be decoded ({type(e).__name__})")


_KEEP_INFO = ("icc_profile", "icc_profile_type", "nclx_profile", "bit_depth", "pixel_aspect_ratio",
              "content_light_level", "mastering_display_colour_volume")


def _heic(data: bytes, hdr: bool):
    """The primary HeifImage; its size and info are known before any pixel is decoded."""
    heif = _pillow_heif().open_heif(data, convert_hdr_to_8bit=not hdr)
    return heif[heif.primary_index]


def _avif(data: bytes):
    from PIL import AvifImagePlugin, Image

    if not AvifImagePlugin.SUPPORTED:
        raise Refused("unsupported_format", "AVIF support is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data), formats=["AVIF"])


def _avif_frames(im) -> tuple[list, list[int]]:
    """All frames of an AVIF, upright, without metadata; and their durations.

    Pillow reports the container's irot/imir as an EXIF orientation and leaves
    the pixels as stored, so the transform is applied here, once.
    """
    method = _transpose(im.getexif().get(0x0112, 1))
    frames, durations = [], []
    for i in range(getattr(im, "n_frames", 1)):
        im.seek(i)
        im.load()
        durations.append(int(im.info.get("duration", 0) or 0))
        frame = im.copy()
        frame.info = {}
        if method is not None:
            frame = frame.transpose(method)
        frames.append(frame)
    return frames, durations


def _transpose(orientation: int):
    from PIL import Image

    return {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}.get(orientation)


def _exif_tiff(exif: bytes | None) -> bytes | None:
    if not exif:
        return None
    return exif[6:] if exif.startswith(b"Exif\x00\x00") else exif


def _save_avif(frames, durations, icc) -> bytes:
    buf = io.BytesIO()
    bare = raster.bare(frames, len(frames))
    kw = {"quality": _QUALITY}
    if icc:
        kw["icc_profile"] = icc
    if len(bare) > 1:
        kw.update(save_all=True, append_images=bare[1:], duration=durations)
    bare[0].save(buf, "AVIF", **kw)
    return buf.getvalue()


def _save_heic(mode: str, size, pixels, stride: int, info: dict, chroma) -> bytes:
    ph = _pillow_heif()
    out = ph.HeifFile()
    added = out.add_frombytes(mode, size, pixels, stride=stride)
    added.info.update({k: info[k] for k in _KEEP_INFO if info.get(k) is not None})
    kw = {"quality": _QUALITY, "exif": None, "xmp": None, "enc_params": _X265}
    if chroma in (420, 422, 444):
        kw["chroma"] = chroma
    buf = io.BytesIO()
    out.save(buf, **kw)
    return buf.getvalue()


def strip(data: bytes, max_pixels: int) -> Verdict:
    verdict, finish = strip_deferred(data, max_pixels)
    if finish is not None:
        verdict.output = finish()
        verdict.actions.append("metadata_removed")
    return verdict


def strip_deferred(data: bytes, max_pixels: int) -> tuple[Verdict, Callable[[], bytes] | None]:
    """strip() without its re-encode: (verdict, finish), where finish() returns the
    metadata-free file, or is None when there was nothing to remove.

    Removing HEIF metadata means encoding the picture again. When the pixels are
    scanned too, the engine calls finish() only if the scan did not redact (and
    so re-encode from the original, without metadata) anyway: one encode, not two."""
    c = _container(data)
    verdict = Verdict(format="heif", content="image")
    findings: list[Finding] = []
    try:
        if c.avif:
            im = _avif(data)
            w, h = im.size
            has_alpha = im.mode in ("RGBA", "LA")
            exif, xmp = im.info.get("exif"), im.info.get("xmp")
        else:
            img = _heic(data, hdr=True)
            w, h = img.size
            has_alpha = img.has_alpha
            exif, xmp = img.info.get("exif"), img.info.get("xmp")
    except Refused:
        raise
    except _errors() as e:
        raise _failed(e, "HEIF") from None
    count = getattr(im, "n_frames", 1) if c.avif else 1  # an AVIF sequence is re-encoded whole
    raster.check_size(w, h, count, EngineLimits(max_pixels=max_pixels), "HEIF")
    removed = c.counts(has_alpha)
    if c.sequence and not (c.avif and count > 1):
        removed["heif_sequence"] += 1
    if removed["exif"]:
        tiff = _exif_tiff(exif)
        findings.extend(inspect_exif(tiff or b"").findings)
    if removed["xmp"]:
        findings.extend(inspect_xmp(xmp or b""))
    if removed["heif_metadata"]:
        findings.append(Finding("free_text", "heif_metadata", "heif.metadata_item"))
    verdict.removed = removed
    verdict.findings = findings
    if not removed:
        verdict.output = data
        return verdict, None
    # output stays None until finish() or a pixel re-encode supplies it

    def finish() -> bytes:
        try:
            if c.avif:
                frames, durations = _avif_frames(im)
                return _save_avif(frames, durations, im.info.get("icc_profile"))
            return _save_heic(img.mode, img.size, img.data, img.stride, img.info, img.info.get("chroma"))
        except Refused:
            raise
        except _errors() as e:
            raise _failed(e, "HEIF") from None
    return verdict, finish


def decode(data: bytes, limits: EngineLimits) -> raster.Decoded:
    c = _container(data)
    try:
        if c.avif:
            im = _avif(data)
            raster.check_size(*im.size, getattr(im, "n_frames", 1), limits, "AVIF")
            frames, durations = _avif_frames(im)
            icc = im.info.get("icc_profile")

            def encode(edited):
                if len(edited) != len(frames):
                    raise ValueError("frame count changed between decode and encode")
                return _save_avif(edited, durations, icc)
        else:
            img = _heic(data, hdr=False)
            raster.check_size(*img.size, 1, limits, "HEIF")
            info = dict(img.info)
            chroma = info.get("chroma")
            frame = img.to_pillow()  # libheif has applied irot/imir: this is display orientation
            frame.info = {}
            frames = [frame]

            def encode(edited):
                (f,) = edited
                f.load()
                return _save_heic(f.mode, f.size, f.tobytes(), 0, info, chroma)
    except Refused:
        raise
    except _errors() as e:
        raise _failed(e, "HEIF") from None
    notes = []
    if c.counts(False)["heif_extra_images"]:
        notes.append("heif: only the primary image is decoded")
    return raster.Decoded(frames=frames, encode=encode, photographic=True, camera=True, notes=notes)
