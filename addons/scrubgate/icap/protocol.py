"""ICAP (RFC 3507) framing: strict, bounded, no I/O policy of its own.

Reads one ICAP request from an asyncio stream: the ICAP head, the encapsulated
HTTP request head (REQMOD) and the chunked body, with Preview and `ieof`.
Writes ICAP responses. Everything that is not well formed raises `IcapError`
with the ICAP status to answer; nothing is guessed.

What is checked: the request line, header sizes and counts, the Encapsulated
header (known sections only, in order, offsets increasing, the body last and
the heads exactly as long as the offsets say), chunk-size lines, chunk
terminators, and the total body size.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

MAX_HEAD_BYTES = 64 * 1024  # an ICAP head, and an encapsulated HTTP head, each
MAX_HEADERS = 200
MAX_CHUNK_LINE = 256

_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_SECTIONS = ("req-hdr", "res-hdr", "req-body", "res-body", "null-body", "opt-body")
_BODIES = ("req-body", "res-body", "null-body", "opt-body")
_URI = re.compile(r"^icaps?://[^/]+/([^?#]*)", re.I)
# ASCII digits only: str.isdigit() also takes "²", which int() refuses.
_SECTION = re.compile(r"[ \t]*(req-hdr|res-hdr|req-body|res-body|null-body|opt-body)=([0-9]{1,9})[ \t]*")
_NUMBER = re.compile(r"[0-9]{1,9}")


class IcapError(Exception):
    """A request that cannot be served: answer `status` and close the connection."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class BodyTooLarge(Exception):
    """The encapsulated body grew past the limit: the request is refused, not the protocol."""


@dataclass
class IcapRequest:
    method: str
    uri: str
    service: str
    headers: dict[str, str]  # lowercase names; repeated headers joined with ", "
    encapsulated: list[tuple[str, int]]
    http_head: bytes = b""  # the encapsulated HTTP request head, CRLFCRLF included
    preview: int | None = None  # bytes of body in the preview, when the client sent one
    has_body: bool = False
    # Set while the body is read:
    body: bytearray = field(default_factory=bytearray)
    ieof: bool = False  # the preview held the whole body

    @property
    def body_offset(self) -> int:
        """Bytes of encapsulated heads between the ICAP head and the body."""
        return self.encapsulated[-1][1]

    @property
    def allow_204(self) -> bool:
        allow = {a.strip() for a in self.headers.get("allow", "").split(",")}
        return "204" in allow or self.preview is not None


async def _read_head(reader: asyncio.StreamReader, limit: int, what: str) -> bytes:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise IcapError(400, f"{what} is longer than {limit} bytes")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            raise EOFError
        raise IcapError(400, f"{what} ends before its blank line")


def _headers(lines: list[bytes], what: str) -> dict[str, str]:
    if len(lines) > MAX_HEADERS:
        raise IcapError(400, f"more than {MAX_HEADERS} {what} headers")
    out: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.match(name):
            raise IcapError(400, f"malformed {what} header line")
        try:
            text = value.strip().decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover (latin-1 decodes everything)
            raise IcapError(400, f"undecodable {what} header")
        key = name.decode("ascii").lower()
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


def parse_encapsulated(value: str) -> list[tuple[str, int]]:
    """`req-hdr=0, req-body=412` -> [("req-hdr", 0), ("req-body", 412)], validated."""
    parts: list[tuple[str, int]] = []
    for item in value.split(","):
        m = _SECTION.fullmatch(item)
        if not m:
            raise IcapError(400, "malformed Encapsulated header")
        parts.append((m.group(1), int(m.group(2))))
    names = [n for n, _ in parts]
    offsets = [o for _, o in parts]
    if names[-1] not in _BODIES or any(n in _BODIES for n in names[:-1]):
        raise IcapError(400, "Encapsulated must end with exactly one body section")
    if offsets[0] != 0 or any(b <= a for a, b in zip(offsets, offsets[1:])):
        raise IcapError(400, "Encapsulated offsets must start at 0 and increase")
    if len(set(names)) != len(names):
        raise IcapError(400, "Encapsulated names a section twice")
    return parts


def parse_head(raw: bytes) -> IcapRequest:
    """An ICAP head (its blank line included) -> the request, its encapsulated heads not yet
    attached. The one parser both the stream reader and the connection's quick path use."""
    lines = raw[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] != b"ICAP/1.0" or not _TOKEN.match(parts[0]):
        raise IcapError(400, "malformed ICAP request line")
    method = parts[0].decode("ascii")
    uri = parts[1].decode("latin-1")
    m = _URI.match(uri)
    if not m:
        raise IcapError(400, "the ICAP URI must be icap://host[:port]/service")
    headers = _headers(lines[1:], "ICAP")
    if "encapsulated" not in headers:
        if method != "OPTIONS":
            raise IcapError(400, "no Encapsulated header")
        headers["encapsulated"] = "null-body=0"  # Squid's OPTIONS leaves it out
    encapsulated = parse_encapsulated(headers["encapsulated"])
    preview = None
    if "preview" in headers:
        if not _NUMBER.fullmatch(headers["preview"]):
            raise IcapError(400, "malformed Preview header")
        preview = int(headers["preview"])
    if encapsulated[-1][1] > 2 * MAX_HEAD_BYTES:
        raise IcapError(400, "encapsulated heads are too long")
    return IcapRequest(method, uri, m.group(1).strip("/"), headers, encapsulated, preview=preview)


def attach_heads(req: IcapRequest, heads: bytes) -> None:
    """The bytes before the body, exactly as many as the offsets say: check that each is a
    whole HTTP head (a wrong offset is an error, never a guess) and keep the request's."""
    for (name, start), (_, end) in zip(req.encapsulated, req.encapsulated[1:]):
        section = heads[start:end]
        if not section.endswith(b"\r\n\r\n") or b"\r\n\r\n" in section[:-4]:
            raise IcapError(400, f"Encapsulated offset of {name} does not match its head")
        if name == "req-hdr":
            req.http_head = section
    req.has_body = req.encapsulated[-1][0] in ("req-body", "res-body", "opt-body")


async def read_request(reader: asyncio.StreamReader) -> IcapRequest:
    """The ICAP head and the encapsulated heads; the body is left for `read_chunks`.
    Raises EOFError when the client closed the connection between requests."""
    req = parse_head(await _read_head(reader, MAX_HEAD_BYTES, "the ICAP head"))
    attach_heads(req, await _read_exactly(reader, req.body_offset))
    return req


async def _read_exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        raise IcapError(400, "the client closed the connection in the middle of a request")


async def read_chunks(reader: asyncio.StreamReader, req: IcapRequest, limit: int) -> bool:
    """Append chunks to req.body until the last chunk. True if that chunk carried `ieof`
    (in a preview: the whole body is there). Raises BodyTooLarge past `limit` bytes; the
    rest of the body is then still in the stream (the caller closes the connection)."""
    while True:
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError:
            raise IcapError(400, "chunk-size line too long")
        except asyncio.IncompleteReadError:
            raise IcapError(400, "the client closed the connection in the middle of the body")
        if len(line) > MAX_CHUNK_LINE:
            raise IcapError(400, "chunk-size line too long")
        size_text, _, ext = line[:-2].partition(b";")
        size_text = size_text.strip()
        if not size_text or len(size_text) > 8 or not re.fullmatch(rb"[0-9A-Fa-f]+", size_text):
            raise IcapError(400, "malformed chunk size")
        size = int(size_text, 16)
        if size == 0:
            if await _read_exactly(reader, 2) != b"\r\n":
                raise IcapError(400, "the last chunk is not followed by a blank line")
            return ext.strip() == b"ieof"
        if len(req.body) + size > limit:
            raise BodyTooLarge
        req.body += await _read_exactly(reader, size)
        if await _read_exactly(reader, 2) != b"\r\n":
            raise IcapError(400, "a chunk is not followed by CRLF")


# -- the quick look ------------------------------------------------------------------------------
# A strict subset of REQMOD, recognised with a few regular expressions instead of the full
# parse: the canonical form Squid and c-icap-client send for a request whose body, if any,
# stays with the client (null-body, or an empty Preview). Whatever falls outside it goes to
# the full parser above. tests/test_fuzz.py checks, on mutated and fragmented input, that
# every request this recognises the full parser reads too, ending at the same byte.
MORE = 0  # recognise(): the request is not all here yet
_QUICK_HEAD = re.compile(
    rb"REQMOD icap://[^/\s]+/(?:reqmod|scrubgate) ICAP/1\.0\r\n"
    rb"((?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n]*\r\n){1," + str(MAX_HEADERS).encode() + rb"})\r\n")
# From the line break before each header line (the request line's ends the region's first).
_QUICK_FIELDS = re.compile(rb"\n(encapsulated|allow|preview|connection):([^\r\n]*)\r", re.I)
_QUICK_ENCAPSULATED = re.compile(rb"req-hdr=0, (null-body|req-body)=([1-9][0-9]{0,8})")
_QUICK_NUMBER = re.compile(rb"[0-9]{1,9}")
_EMPTY_PREVIEWS = (b"0\r\n\r\n", b"0; ieof\r\n\r\n")  # the last chunk of an empty preview


def recognise(buf: bytearray) -> tuple[int, bytes] | int | None:
    """A whole quick-path request at the start of `buf`: (its length in bytes, the
    encapsulated HTTP head). MORE: it may be one, and is not all here yet. None: it is not
    one (or not well formed); the full parser must read it."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None if len(buf) > MAX_HEAD_BYTES else MORE
    start = end + 4
    if end > MAX_HEAD_BYTES:
        return None
    m = _QUICK_HEAD.fullmatch(buf, 0, start)
    if not m:
        return None
    pairs = _QUICK_FIELDS.findall(buf, m.start(1) - 1, m.end(1))
    fields = {name.lower(): value.strip() for name, value in pairs}
    if len(fields) != len(pairs):
        return None  # a header repeated: the full parser joins them, and judges
    encapsulated = _QUICK_ENCAPSULATED.fullmatch(fields.get(b"encapsulated", b""))
    if not encapsulated:
        return None
    preview = fields.get(b"preview")
    if preview is not None and not _QUICK_NUMBER.fullmatch(preview):
        return None
    allow = fields.get(b"allow", b"")
    if preview is None and allow != b"204" and b"204" not in {a.strip() for a in allow.split(b",")}:
        return None  # the client wants the request back, not a 204
    if fields.get(b"connection", b"").lower() == b"close":
        return None
    length = int(encapsulated.group(2))
    if length > 2 * MAX_HEAD_BYTES:
        return None
    stop = start + length
    if len(buf) < stop:
        return MORE
    head = bytes(buf[start:stop])
    if head.find(b"\r\n\r\n") != length - 4:  # one head, ending exactly at the offset
        return None
    if encapsulated.group(1) == b"null-body":
        return stop, head
    if preview is None:
        return None  # a whole body follows: read it in full
    rest = bytes(buf[stop:stop + 11])
    for empty in _EMPTY_PREVIEWS:
        if rest.startswith(empty):
            return stop + len(empty), head
    if any(empty.startswith(rest) for empty in _EMPTY_PREVIEWS):
        return MORE
    return None  # a preview with bytes in it


def chunked(data: bytes) -> bytes:
    return (f"{len(data):x}\r\n".encode() + data + b"\r\n" if data else b"") + b"0\r\n\r\n"


def response(status: int, reason: str, headers: dict[str, str], encapsulated: list[tuple[str, bytes]] | None = None,
             body: bytes | None = None) -> bytes:
    """An ICAP response: `encapsulated` are (section name, head bytes) before the body;
    `body` None means null-body."""
    parts = []
    offset = 0
    chunks = b""
    for name, head in encapsulated or []:
        parts.append(f"{name}={offset}")
        offset += len(head)
        chunks += head
    if body is None:
        parts.append(f"null-body={offset}")
        payload = chunks
    else:
        body_name = "req-body" if any(n == "req-hdr" for n, _ in encapsulated or []) else "res-body"
        parts.append(f"{body_name}={offset}")
        payload = chunks + chunked(body)
    lines = [f"ICAP/1.0 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items()),
             f"Encapsulated: {', '.join(parts)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
