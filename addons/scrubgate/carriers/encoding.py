"""HTTP Content-Encoding, decoded with a ceiling.

mitmproxy's own decoder inflates without limit, so a 50 kB gzip bomb would
become gigabytes in the proxy. Here every codec stops at `max_size` and the
upload is refused instead.
"""

from __future__ import annotations

import zlib

import brotli
import zstandard

from ..engine.verdict import Refused

SUPPORTED = ("identity", "gzip", "x-gzip", "deflate", "br", "zstd")
_CHUNK = 1 << 16


def parse(header: str) -> list[str]:
    """'gzip, br' -> ['gzip', 'br'] (applied in that order by the sender)."""
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    return [c for c in codings if c != "identity"]


def _inflate(data: bytes, wbits: int, max_size: int) -> bytes:
    d = zlib.decompressobj(wbits)
    out = d.decompress(data, max_size + 1)
    if len(out) > max_size:
        raise Refused("too_large", "compressed body expands past the size limit")
    if not d.eof:
        raise Refused("undecodable", "compressed body is truncated")
    return out


def _unzstd(data: bytes, max_size: int) -> bytes:
    # Fed in small steps: one 4 kB step can expand to at most ~128 MB, then we check.
    parts, total, pos = [], 0, 0
    d = zstandard.ZstdDecompressor().decompressobj()
    while pos < len(data):
        step = data[pos:pos + 4096]
        pos += len(step)
        out = d.decompress(step)
        parts.append(out)
        total += len(out)
        if total > max_size:
            raise Refused("too_large", "compressed body expands past the size limit")
        if d.eof:  # next frame, if any
            rest = d.unused_data
            data, pos = rest + data[pos:], 0
            d = zstandard.ZstdDecompressor().decompressobj()
            if not data:
                return b"".join(parts)
    raise Refused("undecodable", "compressed body is truncated")


def _decode_one(data: bytes, coding: str, max_size: int) -> bytes:
    try:
        if coding in ("gzip", "x-gzip"):
            return _inflate(data, 16 + zlib.MAX_WBITS, max_size)
        if coding == "deflate":
            # RFC 9110 says zlib-wrapped; some servers and clients send raw deflate.
            try:
                return _inflate(data, zlib.MAX_WBITS, max_size)
            except zlib.error:
                return _inflate(data, -zlib.MAX_WBITS, max_size)
        if coding == "br":
            d = brotli.Decompressor()
            parts, total = [], 0
            chunk = d.process(data, output_buffer_limit=_CHUNK)
            while True:
                parts.append(chunk)
                total += len(chunk)
                if total > max_size:
                    raise Refused("too_large", "compressed body expands past the size limit")
                if d.is_finished() or d.can_accept_more_data():
                    break
                chunk = d.process(b"", output_buffer_limit=_CHUNK)
            if not d.is_finished():
                raise Refused("undecodable", "compressed body is truncated")
            return b"".join(parts)
        if coding == "zstd":
            return _unzstd(data, max_size)
    except (zlib.error, brotli.error, zstandard.ZstdError) as e:
        raise Refused("undecodable", f"{coding} body does not decode ({type(e).__name__})") from e
    raise Refused("undecodable", f"unsupported Content-Encoding '{coding[:32]}'")


def decode(data: bytes, header: str, max_size: int) -> bytes:
    for coding in reversed(parse(header)):
        data = _decode_one(data, coding, max_size)
    if len(data) > max_size:
        raise Refused("too_large", "body is over the size limit")
    return data


def encode(data: bytes, header: str) -> bytes:
    """Re-apply the client's encodings so the upstream sees what it was promised."""
    for coding in parse(header):
        if coding in ("gzip", "x-gzip"):
            c = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            data = c.compress(data) + c.flush()
        elif coding == "deflate":
            data = zlib.compress(data, 6)
        elif coding == "br":
            data = brotli.compress(data, quality=5)
        elif coding == "zstd":
            data = zstandard.ZstdCompressor(level=3).compress(data)
        else:
            raise Refused("undecodable", f"unsupported Content-Encoding '{coding[:32]}'")
    return data
