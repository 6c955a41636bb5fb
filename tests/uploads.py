"""Uploads with identifiers planted everywhere, and what the upstream sink received.

Shared by the fault-injection and odd-HTTP tests. Every upload carries planted
identifiers in EXIF (Artist, Copyright, ImageDescription), a JPEG comment and
the pixels (a PACS banner), and its own bytes (no worker has it cached).
"""

from __future__ import annotations

import concurrent.futures
import io
import re
import socket
import ssl
import threading
import uuid

import httpx
from PIL import Image

from evaluation.judges import legible, read_text
from scrubgate.samples import viewer_screen

EXIF_VALUES = ["PLANTEDARTIST Okonjo", "PLANTEDCOPYRIGHT St Elsewhere", "PLANTEDDESCRIPTION KOWALSKI RX0042113"]
COMMENT = b"PLANTEDCOMMENT DOB 04/03/1962"
PLANTED = [v.encode() for v in EXIF_VALUES] + [COMMENT]
BANNER = ["KOWALSKI^ANNA", "RX0042113"]


def planted_jpeg() -> bytes:
    im = viewer_screen(size=(640, 480), text_px=16)
    exif = Image.Exif()
    exif[0x013B], exif[0x8298], exif[0x010E] = EXIF_VALUES  # Artist, Copyright, ImageDescription
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    data = buf.getvalue()
    com = b"\xff\xfe" + (len(COMMENT) + 2).to_bytes(2, "big") + COMMENT
    return data[:2] + com + data[2:]  # a comment segment right after SOI


JPEG = planted_jpeg()


def fresh(tag: str) -> bytes:
    """JPEG with one more comment naming the upload: bytes no worker has cached."""
    note = f"upload {tag}".encode()
    return JPEG[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + JPEG[2:]


def upload(gw, tag: str, data: bytes | None = None, path: str = "/api/files.upload") -> httpx.Response:
    data = fresh(tag) if data is None else data
    with gw.client() as c:
        return c.post(f"https://slack.com{path}?fid={tag}", files=[("file", ("scan.jpg", data, "image/jpeg"))])


def many(gw, tags: list[str], **kw) -> dict[str, httpx.Response | Exception]:
    with concurrent.futures.ThreadPoolExecutor(len(tags)) as pool:
        futures = {t: pool.submit(upload, gw, t, **kw) for t in tags}
        out = {}
        for t, f in futures.items():
            try:
                out[t] = f.result()
            except Exception as e:  # an unanswered request: the test reports it
                out[t] = e
        return out


def in_background(gw, prefix: str, n: int) -> tuple[threading.Thread, list[str], dict]:
    """n uploads started on their own thread: (thread, tags, answers by tag once it ends)."""
    tags = [f"{prefix}-{i}-{uuid.uuid4().hex[:6]}" for i in range(n)]
    answers: dict = {}
    runner = threading.Thread(target=lambda: answers.update(many(gw, tags)))
    runner.start()
    return runner, tags, answers


def received(upstream, tag: str) -> list:
    return [r for r in upstream.requests if f"fid={tag}" in r.path]


def assert_answered(results: dict, allowed_reasons: set[str]) -> dict[str, int]:
    """Every request answered: 200, or a 403 whose reason is one of `allowed_reasons`."""
    counts: dict[str, int] = {}
    for tag, r in results.items():
        assert isinstance(r, httpx.Response), f"{tag}: no answer ({type(r).__name__}: {r})"
        if r.status_code == 200:
            key = "cleaned"
        else:
            assert r.status_code == 403, (tag, r.status_code, r.text[:200])
            key = r.headers["x-scrubgate-reason"]
            assert key in allowed_reasons, (tag, key)
        counts[key] = counts.get(key, 0) + 1
    return counts


def assert_sink_clean(upstream, tags: list[str], judge_pixels: int = 1) -> None:
    """No planted byte reached the sink; nothing was forwarded twice; the first
    `judge_pixels` forwarded pictures are read by the OCR judge too."""
    judged = 0
    for tag in tags:
        got = received(upstream, tag)
        assert len(got) <= 1, f"{tag} forwarded {len(got)} times"
        for r in got:
            for value in PLANTED:
                assert value not in r.body, f"{tag}: {value[:14]!r}... reached the upstream"
            if judged < judge_pixels:
                start = r.body.index(b"\xff\xd8")
                lines = read_text(r.body[start:r.body.rindex(b"\xff\xd9") + 2])
                assert not [b for b in BANNER if legible(b, lines)], f"{tag}: banner legible upstream"
                judged += 1


def metric(gw, name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.compile(re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" ([0-9.e+-]+)$", re.M)
    m = pattern.search(gw.metrics())
    return float(m.group(1)) if m else 0.0


def tunnel(gw, host: str = "slack.com") -> ssl.SSLSocket:
    """A TLS connection to `host` through the gateway, as a client would open it by hand."""
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=30)
    s.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head[:60]
    ctx = ssl.create_default_context(cafile=str(gw.trust_pem))
    return ctx.wrap_socket(s, server_hostname=host)
