"""multipart/form-data, parsed into byte offsets so it can be rebuilt exactly.

mitmproxy's `multipart_form` drops file names and re-encodes parts, which
changes what the upstream sees. Here a part is a window into the original
body: rebuilding copies the boundary lines, the part headers and the part
order untouched and swaps only the contents that were cleaned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..engine.verdict import Refused

MAX_PARTS = 1000
_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,200})"|([^;,\s]{1,200}))', re.IGNORECASE)
_PARAM = re.compile(rb'\b(name|filename)="([^"]*)"', re.IGNORECASE)
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*\d+[ \t]*$")


def boundary_of(content_type: str) -> bytes | None:
    if not content_type.lower().lstrip().startswith("multipart/"):
        return None
    m = _BOUNDARY.search(content_type)
    if not m:
        return None
    return (m.group(1) or m.group(2)).encode("latin-1", "replace")


@dataclass
class Part:
    header_start: int  # offset of the first header byte
    content_start: int
    content_end: int
    headers: bytes  # raw header block, without the blank line

    def header(self, name: bytes) -> bytes | None:
        for line in self.headers.split(b"\r\n"):
            k, _, v = line.partition(b":")
            if k.strip().lower() == name:
                return v.strip()
        return None

    @property
    def filename(self) -> bytes | None:
        disp = self.header(b"content-disposition") or b""
        for key, value in _PARAM.findall(disp):
            if key.lower() == b"filename":
                return value
        return None


def parse(body: bytes, boundary: bytes) -> list[Part]:
    """Split a multipart body; raises Refused('undecodable') on anything malformed."""
    delim = b"--" + boundary
    if body.startswith(delim):
        pos = 0
    else:
        pos = body.find(b"\r\n" + delim)
        if pos < 0:
            raise Refused("undecodable", "multipart body does not contain its boundary")
        pos += 2  # skip the preamble's CRLF
    parts: list[Part] = []
    next_delim = b"\r\n" + delim
    while True:
        pos += len(delim)
        if body[pos:pos + 2] == b"--":
            return parts  # closing delimiter; the epilogue is kept as-is by rebuild()
        # transport padding, then CRLF
        while body[pos:pos + 1] in (b" ", b"\t"):
            pos += 1
        if body[pos:pos + 2] != b"\r\n":
            raise Refused("undecodable", "multipart boundary line is malformed")
        header_start = pos + 2
        header_end = body.find(b"\r\n\r\n", header_start)
        if body[header_start:header_start + 2] == b"\r\n":
            header_end = header_start - 2  # a part with no headers
        if header_end < 0:
            raise Refused("undecodable", "multipart part headers are not terminated")
        content_start = header_end + 4
        content_end = body.find(next_delim, content_start)
        if content_end < 0:
            raise Refused("undecodable", "multipart body is truncated (no closing boundary)")
        parts.append(Part(header_start, content_start, content_end,
                          body[header_start:max(header_end, header_start)]))
        if len(parts) > MAX_PARTS:
            raise Refused("too_large", "multipart body has too many parts")
        pos = content_end + 2


def rebuild(body: bytes, parts: list[Part], contents: dict[int, bytes]) -> bytes:
    """Copy `body`, replacing the content of part i with contents[i].

    A part-level Content-Length header, where present, is corrected.
    """
    out: list[bytes] = []
    cursor = 0
    for i, part in enumerate(parts):
        if i not in contents:
            continue
        new = contents[i]
        headers = part.headers
        if _CONTENT_LENGTH.search(headers):
            headers = _CONTENT_LENGTH.sub(b"Content-Length: %d" % len(new), headers)
            out.append(body[cursor:part.header_start])
            out.append(headers)
            out.append(b"\r\n\r\n")
        else:
            out.append(body[cursor:part.content_start])
        out.append(new)
        cursor = part.content_end
    out.append(body[cursor:])
    return b"".join(out)
