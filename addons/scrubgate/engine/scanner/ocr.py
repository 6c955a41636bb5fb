"""Tesseract: the second-opinion line reader, and a cheap text-region finder.

The text pipeline (`engine.text`) finds lines with a neural detector and reads
them with PP-OCR; Tesseract reads again the lines PP-OCR is unsure of, in
single-line mode (`backend(...).words(image, 7)`), and the DICOM cine planner
uses it on a mosaic of changed regions. In-process through tesserocr when it
is installed (no process spawn per call, the model loads once per worker),
else through pytesseract. Either way OMP_THREAD_LIMIT=1: Tesseract's OpenMP
threads fight the worker pool for the same cores and make it 5x slower.

`text_regions` is a few milliseconds of OpenCV morphology: where text-like
marks are. The cine planner uses it to see whether a frame's text changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from ..boxes import Box

DEFAULT_LANGUAGES = "eng+nld+deu+fra"


# --- backends ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def tessdata_dir() -> str | None:
    """Where the Debian (or other) traineddata lives; tesserocr's wheel does not know."""
    env = os.environ.get("TESSDATA_PREFIX")
    if env and os.path.isdir(env):
        return env
    for candidate in ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                      "/usr/share/tessdata", "/usr/local/share/tessdata"):
        if os.path.exists(os.path.join(candidate, "eng.traineddata")):
            return candidate
    return None


class OcrUnavailable(RuntimeError):
    """Tesseract or its language data is missing: a deployment error, not bad input."""


class _Tesserocr:
    name = "tesserocr"

    def __init__(self, languages: str):
        import tesserocr

        path = tessdata_dir()
        if path is None:
            raise OcrUnavailable("Tesseract language data not found (install tesseract-ocr-eng)")
        self._t = tesserocr
        self._api = tesserocr.PyTessBaseAPI(path=path.rstrip("/") + "/", lang=languages,
                                            psm=tesserocr.PSM.SPARSE_TEXT,
                                            oem=tesserocr.OEM.LSTM_ONLY)

    def words(self, image: Image.Image, psm: int = 11) -> list[tuple[int, str, float, Box]]:
        """[(line number, text, confidence, box)] for one prepared picture."""
        t, api = self._t, self._api
        api.SetPageSegMode(psm)
        api.SetImage(image)
        api.Recognize()
        out = []
        it = api.GetIterator()
        line_no = -1
        level = t.RIL.WORD
        for r in t.iterate_level(it, level):
            if r.Empty(level):
                continue
            if r.IsAtBeginningOf(t.RIL.TEXTLINE):
                line_no += 1
            text = r.GetUTF8Text(level)
            box = r.BoundingBox(level)
            if not text or box is None:
                continue
            x0, y0, x1, y1 = box
            out.append((max(line_no, 0), text, float(r.Confidence(level)), (x0, y0, x1 - x0, y1 - y0)))
        api.Clear()
        return out


class _Pytesseract:
    name = "pytesseract"

    def __init__(self, languages: str):
        import pytesseract

        if shutil.which("tesseract") is None:
            raise OcrUnavailable("the tesseract program is not installed")
        self._p = pytesseract
        self._languages = languages

    def words(self, image: Image.Image, psm: int = 11) -> list[tuple[int, str, float, Box]]:
        d = self._p.image_to_data(image, lang=self._languages, config=f"--psm {psm} --oem 1",
                                  output_type=self._p.Output.DICT)
        out, keys = [], {}
        for i, text in enumerate(d["text"]):
            if not text or not text.strip():
                continue
            key = (d["block_num"][i], d["par_num"][i], d["line_num"][i])
            line_no = keys.setdefault(key, len(keys))
            out.append((line_no, text, float(d["conf"][i]),
                        (d["left"][i], d["top"][i], d["width"][i], d["height"][i])))
        return out


@lru_cache(maxsize=4)
def backend(languages: str = DEFAULT_LANGUAGES, prefer: str = "auto"):
    """The OCR engine for this process, built once (the models load once per worker)."""
    if prefer in ("auto", "tesserocr"):
        try:
            return _Tesserocr(languages)
        except ImportError:
            if prefer == "tesserocr":
                raise OcrUnavailable("tesserocr is not installed") from None
    return _Pytesseract(languages)


def tesseract_version() -> str:
    try:
        import tesserocr

        return tesserocr.tesseract_version().split()[1]
    except Exception:
        try:
            out = subprocess.run(["tesseract", "--version"], capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).split()[1]
        except Exception:
            return "unknown"


def text_regions(gray: Image.Image) -> list[Box]:
    """Boxes where text probably is, in `gray`'s pixels: a few milliseconds of OpenCV.

    Letters are dense edges in a row. A light blur takes sensor noise out, the
    morphological gradient finds edges, and a *local* threshold keeps those
    stronger than their surroundings -- a global (Otsu) one loses dim text on
    a photographed monitor to the bezel's edges. A closing with a wide, flat
    kernel joins letters into words and words into lines, but not lines into
    each other. Filled, line-shaped components are the candidates.
    """
    import cv2

    a = cv2.GaussianBlur(np.asarray(gray), (0, 0), 0.8)
    h, w = a.shape
    grad = cv2.morphologyEx(a, cv2.MORPH_GRADIENT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    edges = cv2.adaptiveThreshold(grad, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 31, -8)
    # Rules, bars and panel borders are long straight edges; left in, the
    # closing glues a banner's text to its bar into one huge, discarded blob.
    for kernel in ((max(25, w // 25), 1), (1, max(25, h // 25))):
        edges = cv2.subtract(edges, cv2.morphologyEx(
            edges, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, kernel)))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (max(7, w // 100), max(1, h // 600)))
    closed = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, kernel)
    n, _, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    boxes = []
    for x, y, bw, bh, area in stats[1:]:
        if 6 <= bh <= h / 5 and 1.2 * bh <= bw <= 0.9 * w and area >= 0.25 * bw * bh:
            boxes.append((int(x), int(y), int(bw), int(bh)))
    return boxes


# Seconds this process has spent reading text (detector, recogniser, Tesseract):
# the engine reports each file's share (scrubgate_ocr_duration_seconds).
ocr_seconds = 0.0
