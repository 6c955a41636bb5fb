"""GIF: walk the block structure and copy the blocks that draw the picture.

Kept: header, logical screen descriptor, global colour table, image
descriptors with their colour tables and LZW data, graphic control extensions
(timing, disposal, transparency), the NETSCAPE2.0/ANIMEXTS1.0 loop extension
and the ICCRGBG1012 colour profile. Dropped: comment extensions, plain-text
extensions (text drawn over the picture by almost no viewer, and with it the
graphic control block that belongs to it), XMP, ImageMagick IPTC/8BIM
profiles, every other application extension, and bytes after the trailer
(where polyglot ZIPs hide). Nothing is decoded to strip, so it is lossless.

`decode` hands out every frame composited the way Pillow does (RGB, or RGBA
when any frame is transparent). `encode` writes each frame as a full canvas
with its own exact palette when it has at most 256 colours (so painting a
black box on a GIF frame is lossless) and keeps frame count, delays, loop
count and the colour profile. It assembles the file itself from single-frame
Pillow encodes, because Pillow's animated writer merges identical frames.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections import Counter
from dataclasses import dataclass, field

from ..limits import EngineLimits
from ..verdict import Finding, Refused, Verdict, finish
from . import raster
from .metadata import inspect_iptc, inspect_xmp

_LOOP_APPS = (b"NETSCAPE2.0", b"ANIMEXTS1.0")
_ICC_APP = b"ICCRGBG1012"
_XMP_APP = b"XMP DataXMP"
_IPTC_APPS = (b"MGKIPTC0000", b"MGK8BIM0000")  # ImageMagick's IPTC / Photoshop profiles
_TRAILER = 0x3B


@dataclass
class _Frame:
    left: int
    top: int
    width: int
    height: int
    delay: int = 0  # centiseconds, from the graphic control extension
    disposal: int = 0


@dataclass
class _Parsed:
    screen: bytes  # header + logical screen descriptor + global colour table
    width: int
    height: int
    blocks: list[tuple[str, bytes]] = field(default_factory=list)  # (kind, raw bytes)
    frames: list[_Frame] = field(default_factory=list)
    loop: int | None = None
    icc_block: bytes | None = None
    end: int = 0  # offset just past the trailer

    @property
    def canvas(self) -> tuple[int, int]:
        """Pillow grows the canvas to hold frames that stick out of the screen."""
        w = max([self.width] + [f.left + f.width for f in self.frames])
        h = max([self.height] + [f.top + f.height for f in self.frames])
        return w, h


def _sub_blocks(data: bytes, pos: int) -> int:
    """Skip a chain of data sub-blocks; return the offset after its terminator."""
    n = len(data)
    while True:
        if pos >= n:
            raise Refused("corrupt", "GIF is truncated inside a data block")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos


def _payload(raw: bytes, start: int) -> bytes:
    """The concatenated sub-block contents of an extension, from `start` (a size byte)."""
    out, pos = [], start
    while pos < len(raw) and raw[pos]:
        out.append(raw[pos + 1:pos + 1 + raw[pos]])
        pos += 1 + raw[pos]
    return b"".join(out)


def _parse(data: bytes) -> _Parsed:
    if len(data) < 13 or data[:6] not in (b"GIF87a", b"GIF89a"):
        raise Refused("corrupt", "GIF header missing")
    width, height, packed = struct.unpack("<HHB", data[6:11])
    pos = 13
    if packed & 0x80:
        pos += 3 << ((packed & 7) + 1)
    if pos > len(data):
        raise Refused("corrupt", "GIF is truncated inside the colour table")
    parsed = _Parsed(screen=data[:pos], width=width, height=height)
    pending: _Frame | None = None  # timing from the last graphic control extension
    n = len(data)
    while True:
        if pos >= n:
            raise Refused("corrupt", "GIF is truncated (no trailer)")
        start, introducer = pos, data[pos]
        if introducer == _TRAILER:
            parsed.end = pos + 1
            break
        if introducer == 0x2C:  # image descriptor
            if pos + 10 > n:
                raise Refused("corrupt", "GIF is truncated inside an image descriptor")
            left, top, w, h, ipacked = struct.unpack("<HHHHB", data[pos + 1:pos + 10])
            pos += 10
            if ipacked & 0x80:
                pos += 3 << ((ipacked & 7) + 1)
            if pos >= n:
                raise Refused("corrupt", "GIF is truncated inside an image")
            if not 1 <= data[pos] <= 12:
                raise Refused("corrupt", "GIF image has an invalid LZW code size")
            pos = _sub_blocks(data, pos + 1)
            frame = pending or _Frame(0, 0, 0, 0)
            frame.left, frame.top, frame.width, frame.height = left, top, w, h
            parsed.frames.append(frame)
            pending = None
            parsed.blocks.append(("image", data[start:pos]))
            continue
        if introducer != 0x21 or pos + 2 > n:
            raise Refused("corrupt", f"GIF block expected at byte {pos}")
        label = data[pos + 1]
        pos = _sub_blocks(data, pos + 2)
        raw = data[start:pos]
        if label == 0xF9:
            kind = "gce"
            if len(raw) >= 8 and raw[2] >= 4:
                pending = _Frame(0, 0, 0, 0, delay=struct.unpack("<H", raw[4:6])[0],
                                 disposal=(raw[3] >> 2) & 7)
        elif label == 0xFE:
            kind = "comment"
        elif label == 0x01:
            kind = "plain_text"
            pending = None  # that control block was for the text
        elif label == 0xFF:
            ident = raw[3:14] if len(raw) >= 14 and raw[2] == 11 else b""
            if ident in _LOOP_APPS:
                kind = "loop"
                body = _payload(raw, 14)
                if len(body) >= 3 and body[0] == 1:
                    parsed.loop = struct.unpack("<H", body[1:3])[0]
            elif ident == _ICC_APP:
                kind = "icc"
                parsed.icc_block = raw
            elif ident == _XMP_APP:
                kind = "xmp"
            elif ident in _IPTC_APPS:
                kind = "iptc"
            else:
                kind = "application"
        else:
            kind = "unknown_extension"
        parsed.blocks.append((kind, raw))
    if not parsed.frames:
        raise Refused("corrupt", "GIF has no image data")
    return parsed


def _check_pixels(parsed: _Parsed, max_pixels: int) -> None:
    w, h = parsed.canvas
    if w == 0 or h == 0:
        raise Refused("corrupt", "GIF has zero width or height")
    if w * h > max_pixels:
        raise Refused("too_large", f"GIF is {w}x{h}, over the pixel limit")


def strip(data: bytes, max_pixels: int) -> Verdict:
    parsed = _parse(data)
    _check_pixels(parsed, max_pixels)
    verdict = Verdict(format="gif", content="image")
    removed: Counter = Counter()
    findings: list[Finding] = []
    out = [parsed.screen]
    gce: bytes | None = None  # held until we know what it controls
    for kind, raw in parsed.blocks:
        if kind == "gce":
            if gce is not None:
                out.append(gce)
            gce = raw
        elif kind == "image":
            if gce is not None:
                out.append(gce)
                gce = None
            out.append(raw)
        elif kind in ("loop", "icc"):
            out.append(raw)
        elif kind == "comment":
            if _payload(raw, 2).strip(b"\x00 "):
                findings.append(Finding("free_text", "comment", "gif.comment"))
            removed["comment"] += 1
        elif kind == "plain_text":
            gce = None
            findings.append(Finding("free_text", "gif_plain_text", "gif.plain_text"))
            removed["gif_plain_text"] += 1
        elif kind == "xmp":
            findings.extend(inspect_xmp(raw[14:]))
            removed["xmp"] += 1
        elif kind == "iptc":
            findings.extend(inspect_iptc(_payload(raw, 14)))
            removed["iptc"] += 1
        elif kind == "application":
            removed["gif_application"] += 1
        else:
            removed["unknown_extension"] += 1
    out.append(bytes((_TRAILER,)))
    if data[parsed.end:].strip(b"\x00"):
        removed["trailing_data"] += 1
    return finish(verdict, removed, findings, lambda: b"".join(out), data)


# --- pixels -----------------------------------------------------------------



def decode(data: bytes, limits: EngineLimits) -> raster.Decoded:
    from PIL import Image

    parsed = _parse(data)
    w, h = parsed.canvas
    raster.check_size(w, h, len(parsed.frames), limits, "GIF")
    frames = []
    with raster.decoding("GIF"):
        with Image.open(io.BytesIO(data), formats=["GIF"]) as im:
            if getattr(im, "n_frames", 1) != len(parsed.frames):
                raise Refused("corrupt", "GIF frames do not match its block structure")
            for i in range(len(parsed.frames)):
                im.seek(i)
                frame = im.convert("RGBA")
                frame.info = {}
                frames.append(frame)
    if all(f.getextrema()[3][0] == 255 for f in frames):
        frames = [f.convert("RGB") for f in frames]
    delays = [f.delay for f in parsed.frames]
    disposals = [f.disposal if f.disposal <= 3 else 0 for f in parsed.frames]

    def encode(edited: list[Image.Image]) -> bytes:
        return _encode(edited, delays, disposals, parsed.loop, parsed.icc_block)

    return raster.Decoded(frames=frames, encode=encode)


def _to_palette(frame, reserve_transparent: bool):
    """A "P" image with an exact palette when the frame has few enough colours."""
    import numpy as np
    from PIL import Image

    if frame.mode == "RGBA":
        rgba = np.asarray(frame)
        rgb, opaque = rgba[..., :3], rgba[..., 3] >= 128
    else:
        rgb, opaque = np.asarray(frame.convert("RGB")), None
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    room = 255 if reserve_transparent else 256
    colours, inverse = np.unique(packed if opaque is None else packed[opaque], return_inverse=True)
    if len(colours) <= room:
        index = np.zeros(packed.shape, dtype=np.uint8)
        if opaque is None:
            index[...] = inverse.reshape(packed.shape)
        else:
            index[opaque] = inverse
        palette = [int(c) for c in colours]
        triples = b"".join(struct.pack(">I", c)[1:] for c in palette)
    else:  # more colours than GIF can hold: quantise, as any GIF writer must
        q = Image.fromarray(np.ascontiguousarray(rgb)).quantize(colors=room, dither=Image.Dither.NONE)
        index = np.array(q, dtype=np.uint8)
        triples = bytes(q.getpalette()[:3 * room])
    transparent = None
    if reserve_transparent:
        transparent = len(triples) // 3
        triples += b"\x00\x00\x00"
        if opaque is not None:
            index[~opaque] = transparent
    p = Image.frombytes("P", frame.size, np.ascontiguousarray(index).tobytes())
    p.putpalette(triples)
    return p, transparent


def _frame_block(p) -> bytes:
    """Encode one "P" frame with Pillow; return an image block carrying its own colour table."""
    buf = io.BytesIO()
    p.save(buf, "GIF", optimize=False)
    single = _parse(buf.getvalue())
    (image,) = [raw for kind, raw in single.blocks if kind == "image"]
    if image[9] & 0x80:  # already has a local table
        return image
    gct_flags = single.screen[10]
    if not gct_flags & 0x80:
        return image
    packed = (image[9] & 0x40) | 0x80 | (gct_flags & 7)
    return image[:9] + bytes((packed,)) + single.screen[13:] + image[10:]


def _encode(frames, delays, disposals, loop, icc_block) -> bytes:
    if len(frames) != len(delays):
        raise ValueError("frame count changed between decode and encode")
    width, height = frames[0].size
    transparent_any = any(f.mode == "RGBA" and f.getextrema()[3][0] < 128 for f in frames)
    out = [b"GIF89a", struct.pack("<HHBBB", width, height, 0x70, 0, 0)]
    if loop is not None:
        out.append(b"\x21\xff\x0b" + b"NETSCAPE2.0" + b"\x03\x01" + struct.pack("<H", loop) + b"\x00")
    if icc_block:
        out.append(icc_block)
    for frame, delay, disposal in zip(frames, delays, disposals):
        p, transparent = _to_palette(frame, transparent_any)
        if transparent_any:
            # Every frame is a full canvas: clearing to transparent before the next one
            # reproduces the composited frame exactly, in browsers and in Pillow alike.
            disposal = 2
        if delay or disposal or transparent is not None:
            flags = (disposal << 2) | (1 if transparent is not None else 0)
            out.append(b"\x21\xf9\x04" + struct.pack("<BHB", flags, delay, transparent or 0) + b"\x00")
        out.append(_frame_block(p))
    out.append(bytes((_TRAILER,)))
    return b"".join(out)
