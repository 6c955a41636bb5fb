"""Barcodes, QR codes and DataMatrix: always an identifier.

A wristband's Code128 or DataMatrix holds the MRN or NHS number; a QR code on
a letter holds a link with a patient token. We never read what they say (the
decoded text is dropped on the spot); we only need where they are.
"""

from __future__ import annotations

from PIL import Image

from ..boxes import Box

# Above this, scanning the full-resolution picture costs more than it finds:
# a barcode that small in a 12 MP photo is not legible to anyone else either.
_MAX_SCAN_SIDE = 2400


def find(image: Image.Image) -> list[tuple[Box, str]]:
    """[(box, symbology family)] for every barcode zxing-cpp can decode.

    Candidates that fail their checksum are not taken: on photo noise the
    DataMatrix detector "finds" codes everywhere, and a code zxing cannot
    decode is one a phone camera app will not read either."""
    import zxingcpp

    gray = image.convert("L")
    scale = 1.0
    if max(gray.size) > _MAX_SCAN_SIDE:
        scale = _MAX_SCAN_SIDE / max(gray.size)
        gray = gray.resize((round(gray.width * scale), round(gray.height * scale)), Image.Resampling.BILINEAR)
    found = []
    for code in zxingcpp.read_barcodes(gray):
        p = code.position
        xs = [p.top_left.x, p.top_right.x, p.bottom_left.x, p.bottom_right.x]
        ys = [p.top_left.y, p.top_right.y, p.bottom_left.y, p.bottom_right.y]
        x0, y0, x1, y1 = min(xs) / scale, min(ys) / scale, max(xs) / scale, max(ys) / scale
        # Linear codes report a thin scan line; the bars span far more height.
        if y1 - y0 < 0.25 * (x1 - x0):
            extra = 0.4 * (x1 - x0)
            y0, y1 = y0 - extra, y1 + extra
        found.append(((int(x0), int(y0), int(x1 - x0) + 1, int(y1 - y0) + 1), _family(code)))
    return found


def _family(code) -> str:
    name = str(code.format).split(".")[-1].lower()
    if "qr" in name:
        return "qr"
    if "matrix" in name:
        return "datamatrix"
    if "pdf417" in name or "aztec" in name or "maxi" in name:
        return "2d"
    return "linear"
