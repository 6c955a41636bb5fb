#!/usr/bin/env python3
"""Write the fuzz seed corpus (tests/fuzz_seeds/*.seed): small, valid files and bodies of
every kind the gateway parses, with identifiers planted in their metadata. Committed;
rerun only to change them: `.venv/bin/python tests/fuzz_seeds/make_seeds.py`."""

from __future__ import annotations

import base64
import gzip
import io
import json
import zipfile
import zlib
from pathlib import Path

from PIL import Image, PngImagePlugin

from scrubgate.samples import secondary_capture, viewer_screen

HERE = Path(__file__).resolve().parent


def picture() -> Image.Image:
    return viewer_screen(size=(64, 48), text_px=9)


def save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def seeds() -> dict[str, bytes]:
    im = picture()
    exif = Image.Exif()
    exif[0x013B] = "PLANTED Artist"
    exif[0x8825] = {2: (51.0, 30.0, 0.0), 1: "N"}  # GPS
    jpeg = save(im, "JPEG", quality=80, exif=exif.tobytes())
    jpeg = jpeg[:2] + b"\xff\xfe\x00\x10PLANTED note\x00" + jpeg[2:]
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "PLANTED png text")
    png = save(im, "PNG", pnginfo=info, exif=exif.tobytes())
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("scan.png", png)
        z.writestr("notes.txt", b"patient KOWALSKI")
    boundary = "fuzzboundary42"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nhello\r\n"
                 f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
                 f"Content-Type: image/jpeg\r\n\r\n").encode() + jpeg + f"\r\n--{boundary}--\r\n".encode()
    as_json = json.dumps({"caption": "ward round", "image": "data:image/png;base64," + base64.b64encode(png).decode()})
    return {
        "jpeg": jpeg,
        "png": png,
        "gif": save(im.convert("P"), "GIF", comment=b"PLANTED gif"),
        "tiff": save(im, "TIFF", exif=exif.tobytes()),
        "bmp": save(im, "BMP"),
        "webp": save(im, "WEBP", quality=70, exif=exif.tobytes()),
        "dicom": secondary_capture(size=(64, 48)),
        "zip": zbuf.getvalue(),
        "multipart": multipart,
        "json": as_json.encode(),
        "form": b"caption=hi&image=" + base64.urlsafe_b64encode(png),
        "gzip-json": gzip.compress(as_json.encode(), mtime=0),
        "deflate-json": zlib.compress(as_json.encode()),
    }


if __name__ == "__main__":
    for name, data in seeds().items():
        (HERE / f"{name}.seed").write_bytes(data)
        print(f"{name}.seed: {len(data)} bytes")
