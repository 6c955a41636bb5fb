"""Find the files inside a request body, and put cleaned ones back.

A body is parsed into a small tree of carriers -- raw bytes, multipart parts,
JSON string fields, form fields, base64 / data: URLs -- whose leaves are
`Payload`s. The cleaner sets `payload.replacement`; `rebuild()` then writes
the body again around the new bytes. Untouched bodies are never rebuilt.

The carrier is chosen by looking at the body, not by trusting Content-Type:
the header is only used for the multipart boundary.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from ..engine.sniff import Sniffed, looks_like_text, sniff
from ..engine.verdict import Refused
from . import multipart

MAX_PAYLOADS = 256
MAX_DEPTH = 3
MIN_EMBEDDED = 64  # shorter base64 strings cannot hold a meaningful image
_B64 = re.compile(rb"^[A-Za-z0-9+/_\-\r\n]+={0,2}\s*$")
_URLSAFE_TO_STD = bytes.maketrans(b"-_", b"+/")
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*)(;base64)?,", re.I)


@dataclass
class Payload:
    data: bytes
    carrier: str  # "raw", "multipart", "json", "form", "base64"
    label: str  # where it sat, value-free: "part 2", "json field 1"
    kind: Sniffed
    replacement: bytes | None = None


class Node:
    def payloads(self) -> list[Payload]:
        return []

    def rebuild(self) -> bytes:
        raise NotImplementedError


@dataclass
class Opaque(Node):
    """Text that carries nothing we recognise (a chat message)."""
    data: bytes

    def rebuild(self) -> bytes:
        return self.data


@dataclass
class Raw(Node):
    payload: Payload

    def payloads(self) -> list[Payload]:
        return [self.payload]

    def rebuild(self) -> bytes:
        p = self.payload
        return p.data if p.replacement is None else p.replacement


@dataclass
class Base64(Node):
    """A base64 string, optionally with a data: URL prefix, wrapping a file."""
    prefix: str
    urlsafe: bool
    child: Node

    def payloads(self) -> list[Payload]:
        return self.child.payloads()

    def rebuild_text(self) -> str:
        enc = base64.urlsafe_b64encode if self.urlsafe else base64.b64encode
        return self.prefix + enc(self.child.rebuild()).decode("ascii")

    def rebuild(self) -> bytes:
        return self.rebuild_text().encode("ascii")


@dataclass
class Multipart(Node):
    body: bytes
    parts: list[multipart.Part]
    children: dict[int, Node] = field(default_factory=dict)

    def payloads(self) -> list[Payload]:
        return [p for c in self.children.values() for p in c.payloads()]

    def rebuild(self) -> bytes:
        changed = {i: c.rebuild() for i, c in self.children.items()
                   if any(p.replacement is not None for p in c.payloads())}
        return multipart.rebuild(self.body, self.parts, changed) if changed else self.body


@dataclass
class Json(Node):
    data: bytes
    document: object
    slots: list[tuple[object, object, Base64]] = field(default_factory=list)

    def payloads(self) -> list[Payload]:
        return [p for _, _, c in self.slots for p in c.payloads()]

    def rebuild(self) -> bytes:
        if not any(p.replacement is not None for p in self.payloads()):
            return self.data
        for container, key, child in self.slots:
            container[key] = child.rebuild_text()  # type: ignore[index]
        return json.dumps(self.document, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class Form(Node):
    data: bytes
    pairs: list[list[str]]
    slots: list[tuple[int, Base64]] = field(default_factory=list)

    def payloads(self) -> list[Payload]:
        return [p for _, c in self.slots for p in c.payloads()]

    def rebuild(self) -> bytes:
        if not any(p.replacement is not None for p in self.payloads()):
            return self.data
        for i, child in self.slots:
            self.pairs[i][1] = child.rebuild_text()
        return urlencode([tuple(p) for p in self.pairs]).encode()


def _embedded(text: str, label: str, carrier: str) -> Base64 | None:
    """A base64 string or data: URL that decodes to a recognisable file."""
    if len(text) < MIN_EMBEDDED:
        return None
    prefix = ""
    m = _DATA_URL.match(text)
    if m:
        if not m.group(3):
            return None  # percent-encoded data URL: text, not a file
        prefix, text = text[:m.end()], text[m.end():]
    raw = text.encode("ascii", "ignore")
    if len(raw) != len(text) or not _B64.match(raw[:4096]):
        return None
    urlsafe = b"-" in raw or b"_" in raw
    compact = raw.strip().replace(b"\r", b"").replace(b"\n", b"")  # MIME-style line breaks
    if urlsafe:
        compact = compact.translate(_URLSAFE_TO_STD)
    try:
        # validate=True: a string that is base64 only at its start is text, and must not be
        # replaced wholesale by a re-encoded file on rebuild.
        data = base64.b64decode(compact + b"=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    kind = sniff(data)
    if kind.format == "unknown" and not prefix:
        return None  # a long token or hash, not a file
    return Base64(prefix, urlsafe, Raw(Payload(data, carrier, label, kind)))


def _walk_json(node: object, slots: list, depth: int = 0) -> None:
    if depth > 64:
        raise Refused("undecodable", "JSON body is nested too deeply")
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if isinstance(value, str):
            # Labels never quote field names or values: they come from the client.
            child = _embedded(value, f"json field {len(slots) + 1}", "json")
            if child is not None:
                slots.append((node, key, child))
        elif isinstance(value, (dict, list)):
            _walk_json(value, slots, depth + 1)


def _as_json(data: bytes) -> Json | None:
    if data.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    node = Json(data, document)
    _walk_json(document, node.slots)
    return node


def _as_form(data: bytes) -> Form | None:
    if b"=" not in data[:256] or not looks_like_text(data):
        return None
    try:
        text = data.decode("ascii")
        pairs = [list(p) for p in parse_qsl(text, keep_blank_values=True, strict_parsing=True)]
    except (UnicodeDecodeError, ValueError):
        return None
    node = Form(data, pairs)
    for i, (key, value) in enumerate(pairs):
        child = _embedded(value, f"form field {i + 1}", "form")
        if child is not None:
            node.slots.append((i, child))
    return node


def _parse(data: bytes, content_type: str, label: str, carrier: str, depth: int,
           is_file: bool) -> Node:
    kind = sniff(data)
    if kind.format != "unknown":
        return Raw(Payload(data, carrier, label, kind))
    if depth < MAX_DEPTH:
        boundary = multipart.boundary_of(content_type) if content_type else None
        if boundary:
            parts = multipart.parse(data, boundary)
            node = Multipart(data, parts)
            for i, part in enumerate(parts):
                content = data[part.content_start:part.content_end]
                ctype = (part.header(b"content-type") or b"").decode("latin-1")
                # On an upload endpoint a binary part is a file too; a text part without a
                # file name is a form field (a channel id, a comment).
                part_is_file = part.filename is not None or (is_file and not looks_like_text(content))
                child = _parse(content, ctype, f"part {i + 1}", "multipart", depth + 1, part_is_file)
                if child.payloads():
                    node.children[i] = child
            return node
        for parser in (_as_json, _as_form):
            node = parser(data)
            if node is not None:
                return node
    if looks_like_text(data):
        embedded = _embedded(data.decode("utf-8", "replace").strip(), label, "base64")
        if embedded is not None:
            return embedded
    if is_file:
        # A file we cannot name -- binary, or text such as a CSV of patients: kind "other".
        return Raw(Payload(data, carrier, label, kind))
    return Opaque(data)  # a chat message, or an API's binary message (protobuf, ciphertext)


def extract(body: bytes, content_type: str = "", upload: bool = False) -> Node:
    """Parse a decoded request body into its carrier tree.

    Recognised files (images, DICOM, archives) are payloads wherever they sit.
    Anything else counts as a file (kind "other") only where a file is
    expected: on a service's upload endpoint (`upload=True`) or in a multipart
    part with a file name. Raises Refused for malformed carriers.
    """
    node = _parse(body, content_type, "body", "raw", 0, upload)
    if len(node.payloads()) > MAX_PAYLOADS:
        raise Refused("too_large", "request carries too many files")
    return node
