"""Burned-in text: find words and lines in a picture, with boxes.

Tesseract is the engine. In-process through tesserocr when it is installed
(no process spawn per call, the model loads once per worker), else through
pytesseract. Either way OMP_THREAD_LIMIT=1: Tesseract's OpenMP threads fight
the worker pool for the same cores and make it 5x slower, not faster.

One pass of Tesseract misses text that a human reads easily on a phone photo
of a screen, so `read_page` runs several *passes*, each a differently
prepared copy of the picture (see `_passes`), and returns the lines of all of
them. The caller treats them as a union: a word read in any pass counts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from functools import lru_cache

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import numpy as np  # noqa: E402
from PIL import Image, ImageFilter, ImageOps  # noqa: E402

from .boxes import intersects, union  # noqa: E402

DEFAULT_LANGUAGES = "eng+nld+deu+fra"
# Tesseract reads best with capital letters 20-40 px tall. Screenshots are
# upscaled towards that; huge photos are scaled down so a pass stays cheap.
_MIN_LONG_SIDE = 1600
_MAX_LONG_SIDE = 3200
_MIN_WORD_CONFIDENCE = 10.0  # below this Tesseract is reading noise, not text


@dataclass(frozen=True)
class Word:
    text: str
    box: tuple[int, int, int, int]  # x, y, w, h in the ORIGINAL picture's pixels
    confidence: float  # 0-100, Tesseract's


@dataclass
class Line:
    words: list[Word]
    source: str  # which pass read it

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    def offsets(self) -> list[tuple[int, int]]:
        """(start, end) of each word inside `text`."""
        out, pos = [], 0
        for w in self.words:
            out.append((pos, pos + len(w.text)))
            pos += len(w.text) + 1
        return out

    @property
    def box(self) -> tuple[int, int, int, int]:
        return union([w.box for w in self.words])

    @property
    def confidence(self) -> float:
        """Mean of the words' Tesseract confidences (0-100)."""
        return sum(w.confidence for w in self.words) / len(self.words)

    @property
    def height(self) -> int:
        return int(np.median([w.box[3] for w in self.words]))


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

    def words(self, image: Image.Image, psm: int = 11) -> list[tuple[int, str, float, tuple[int, int, int, int]]]:
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

    def words(self, image: Image.Image, psm: int = 11) -> list[tuple[int, str, float, tuple[int, int, int, int]]]:
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


# --- passes ---------------------------------------------------------------------------
#
# Every pass reads a differently prepared copy of the picture; lines from all
# of them are returned (a union). Measured on phone photos of screens, the
# cheap, broad passes do most of the work:
#   plain     Tesseract's own global Otsu: clean screenshots, dark text on light
#             (Tesseract inverts a line it reads badly and tries again);
#   stretched low-contrast grey-on-grey text (only when the picture is flat);
#   region    every text-like region no pass read surely, cropped with its own
#             polarity and threshold, enlarged: white-on-dark overlays, small print;
#   tiles     photos: 2x2 overlapping tiles, each with its own polarity and
#             threshold, for screens lit unevenly (a global threshold loses the
#             dim corner where the patient banner usually is);
#   reread    photos: each line read with low confidence is cropped, enlarged
#             and read again as a single line.
# Background division ("flattening") was tried and dropped: on moire it turns
# the whole screen into letter-like noise and costs 5x the time. So was a
# whole-page inverted pass: next to the region pass it found nothing more
# (identical leaks per image on the 119-image quality corpus, 0 of 179 on the
# DICOM corpus) and took 30% of the OCR time. And so was flattening everything
# far from a text region before the page passes (30% faster on photos, but 16
# more identifiers left legible: the region detector misses some print).


def _polarised(gray: Image.Image) -> Image.Image:
    """Dark text on light: invert when most of the picture is dark (Otsu decides what is dark)."""
    return ImageOps.invert(gray) if np.median(np.asarray(gray)) < 110 else gray


def _tiles(gray: Image.Image, overlap: float = 0.15):
    w, h = gray.size
    tw, th = int(w / 2 * (1 + overlap)), int(h / 2 * (1 + overlap))
    for x0 in (0, w - tw):
        for y0 in (0, h - th):
            yield (x0, y0), gray.crop((x0, y0, x0 + tw, y0 + th))


def text_regions(gray: Image.Image) -> list[tuple[int, int, int, int]]:
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


def working_scale(size: tuple[int, int]) -> float:
    long_side = max(size)
    if long_side < _MIN_LONG_SIDE:
        return min(3.0, _MIN_LONG_SIDE / long_side)
    if long_side > _MAX_LONG_SIDE:
        return _MAX_LONG_SIDE / long_side
    return 1.0


_MIN_LINE_CONFIDENCE = 30.0
_REREAD_BELOW = 75.0  # photos: lines read with less confidence than this are read again
_MAX_REREADS = 40
_MAX_REGION_READS = 120
_MIN_SKEW, _MAX_SKEW = 2.0, 25.0  # degrees: below, Tesseract copes; above, it is not a tilt
_COVERED_CONFIDENCE = 85.0  # a region the page passes read this surely needs no second look
_LINE_HEIGHT_TARGET = 36  # px: Tesseract's comfortable capital height, roughly


@dataclass
class Page:
    lines: list[Line]  # every line any pass read (a union: passes overlap)
    regions: list[tuple[int, int, int, int]]  # where text-like marks are, read or not
    unread: list[tuple[int, int, int, int]]  # regions no pass read with any confidence


# Seconds this process has spent in read_page: the engine reports the share of
# each file (scrubgate_ocr_duration_seconds).
ocr_seconds = 0.0


def read_page(image: Image.Image, *, photographic: bool = False,
              languages: str = DEFAULT_LANGUAGES) -> Page:
    """Every line of text any pass reads, and the text-like regions; boxes in
    `image`'s pixel coordinates."""
    global ocr_seconds
    started = time.perf_counter()
    try:
        return _read_page(image, photographic, languages)
    finally:
        ocr_seconds += time.perf_counter() - started


def _read_page(image: Image.Image, photographic: bool, languages: str) -> Page:
    gray = image.convert("L")
    scale = working_scale(gray.size)
    if scale != 1.0:
        gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))),
                           Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)
    engine = backend(languages)
    lines, regions = _read_frame(gray, photographic, engine)
    mapped = [_map_line(ln, lambda b: _unscale(b, scale)) for ln in lines]
    originals = [_unscale(r, scale) for r in regions]
    if photographic:
        # A phone held at an angle: Tesseract reads lines tilted by more than a
        # couple of degrees badly, and small tilted print not at all. Level the
        # picture by the median slant of its text and read it all once more.
        angle = skew_angle(gray, regions)
        if _MIN_SKEW <= abs(angle) <= _MAX_SKEW:
            background = int(np.median(np.asarray(gray)))
            level = gray.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC, fillcolor=background)
            back = _unrotate(angle, gray.size, level.size)
            more, more_regions = _read_frame(level, photographic, engine)
            mapped += [_map_line(ln, lambda b: _unscale(back(b), scale), "deskewed ") for ln in more]
            # The rotated picture's filled corners make edges of their own; what
            # maps back onto the picture's border is that seam, not text.
            w, h = image.size
            originals += [r for r in (_unscale(back(r), scale) for r in more_regions)
                          if r[0] > 2 and r[1] > 2 and r[0] + r[2] < w - 2 and r[1] + r[3] < h - 2]
    believed = [w.box for ln in mapped for w in ln.words if w.confidence >= _MIN_LINE_CONFIDENCE * 2]
    unread = [r for r in originals if not any(intersects(r, b) for b in believed)]
    return Page(mapped, originals, unread)


def _read_frame(gray: Image.Image, photographic: bool, engine) -> tuple[list[Line], list]:
    """All passes over one prepared picture; boxes in that picture's pixels."""
    lines: list[Line] = []

    def words_of(picture: Image.Image, offset=(0, 0), factor: float = 1.0, psm: int = 11) -> list[Word]:
        words = []
        for _line_no, text, conf, (x, y, w, h) in engine.words(picture, psm):
            text = text.strip()
            if not text or conf < _MIN_WORD_CONFIDENCE:
                continue
            box = (x / factor + offset[0], y / factor + offset[1], max(1.0, w / factor), max(1.0, h / factor))
            words.append(Word(text, box, conf))
        return words

    def emit(name: str, words: list[Word]) -> None:
        for seg in group_lines(words):
            if max(w.confidence for w in seg) >= _MIN_LINE_CONFIDENCE:
                lines.append(Line(seg, name))

    def read(name: str, picture: Image.Image, offset=(0, 0), factor: float = 1.0, psm: int = 11) -> None:
        emit(name, words_of(picture, offset, factor, psm))

    read("plain", gray)
    a = np.asarray(gray)
    if np.percentile(a, 98) - np.percentile(a, 2) < 110:
        read("stretched", _polarised(ImageOps.autocontrast(gray, cutoff=2)))
    # Regions: a full-page pass can garble a banner that it reads perfectly
    # when cropped (an EHR's orange header next to its menus), or miss small
    # text altogether. Every text-like region that no pass read confidently is
    # cropped, given its own polarity and threshold, enlarged, and read again.
    read_confidently = [w.box for ln in lines for w in ln.words if w.confidence >= _COVERED_CONFIDENCE]
    regions = text_regions(gray)
    todo = [r for r in regions if not _covered(r, read_confidently)]
    region_words: list[Word] = []
    for x, y, w, h in sorted(todo, key=lambda r: r[1])[:_MAX_REGION_READS]:
        crop, origin, factor, single_line = _crop_for_reading(gray, (x, y, w, h), max(3, h // 4))
        region_words += words_of(crop, origin, factor, psm=7 if single_line else 6)
    emit("region", region_words)  # one pass: a label and its value in two regions make one line
    if photographic:
        for offset, tile in _tiles(gray):
            read("tiles", _polarised(tile), offset)
        weak = sorted((ln for ln in lines if ln.confidence < _REREAD_BELOW),
                      key=lambda ln: ln.confidence)[:_MAX_REREADS]
        for ln in weak:
            x, y, w, h = ln.box
            crop, origin, factor, _ = _crop_for_reading(gray, (x, y, w, h), max(4, h // 2), force_line=True)
            read("reread", crop, origin, factor, psm=7)
    return lines, regions


def _crop_for_reading(gray: Image.Image, box, pad: int, force_line: bool = False):
    """A region cut out with a margin, stretched, made dark-on-light, and enlarged
    so a single line stands about _LINE_HEIGHT_TARGET pixels tall."""
    x, y, w, h = (int(round(v)) for v in box)
    x0, y0 = max(0, x - pad), max(0, y - pad)
    crop = gray.crop((x0, y0, min(gray.width, x + w + pad), min(gray.height, y + h + pad)))
    single_line = force_line or (h < 3 * _LINE_HEIGHT_TARGET and w > 2 * h)
    factor = max(1.0, min(4.0, _LINE_HEIGHT_TARGET / max(h, 1))) if single_line else 1.0
    if factor > 1.0:
        crop = crop.resize((round(crop.width * factor), round(crop.height * factor)), Image.Resampling.BICUBIC)
    return _polarised(ImageOps.autocontrast(crop, cutoff=1)), (x0, y0), factor, single_line


def _map_line(line: Line, to_original, prefix: str = "") -> Line:
    return Line([Word(w.text, to_original(w.box), w.confidence) for w in line.words], prefix + line.source)


def _unscale(box, scale: float) -> tuple[int, int, int, int]:
    x, y, w, h = box
    return int(x / scale), int(y / scale), max(1, round(w / scale)), max(1, round(h / scale))


def skew_angle(gray: Image.Image, regions) -> float:
    """Median slant of the long text regions, in degrees with PIL's rotate() sign."""
    import cv2

    a = np.asarray(gray)
    angles = []
    for x, y, w, h in regions:
        if w < 4 * h or w < 40:
            continue
        _, ink = cv2.threshold(a[y:y + h, x:x + w], 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        if np.mean(ink) > 127:  # letters must be the white pixels
            ink = 255 - ink
        pts = cv2.findNonZero(ink)
        if pts is None or len(pts) < 20:
            continue
        vx, vy, _, _ = cv2.fitLine(pts, cv2.DIST_L2, 0, 0.01, 0.01).ravel()
        angle = float(np.degrees(np.arctan2(vy, vx)))
        angles.append(angle - 180 if angle > 90 else angle + 180 if angle < -90 else angle)
    return float(np.median(angles)) if len(angles) >= 3 else 0.0


def _unrotate(angle: float, size, rotated_size):
    """Map a box in the rotate(angle, expand=True) picture back to the original."""
    t = np.radians(angle)
    c, s = float(np.cos(t)), float(np.sin(t))
    cx, cy, ncx, ncy = size[0] / 2, size[1] / 2, rotated_size[0] / 2, rotated_size[1] / 2

    def back(box):
        x, y, w, h = box
        corners = [(px - ncx, py - ncy) for px, py in ((x, y), (x + w, y), (x, y + h), (x + w, y + h))]
        xs = [c * dx - s * dy + cx for dx, dy in corners]
        ys = [s * dx + c * dy + cy for dx, dy in corners]
        return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
    return back


def _covered(region, boxes) -> bool:
    """True when confident words span most of the region's width."""
    x, y, w, h = region
    spans = sorted((max(bx, x), min(bx + bw, x + w)) for bx, by, bw, bh in boxes
                   if by < y + h and by + bh > y and bx < x + w and bx + bw > x)
    covered, end = 0.0, x
    for a, b in spans:
        a = max(a, end)
        if b > a:
            covered += b - a
            end = b
    return covered >= 0.8 * w


def group_lines(words: list[Word]) -> list[list[Word]]:
    """Words into lines by geometry, not by Tesseract's layout.

    In sparse mode Tesseract cuts "VAN DE BRINK,   JULIUS" or "Acc:   95914193"
    into separate lines wherever the spacing is wide (monospaced overlays), and
    the recognizers then never see a label next to its value. Reading left to
    right, a word joins the line whose last word it overlaps vertically by half
    a letter and follows within three letter-heights; a wider gap starts a new
    piece (the left and right overlays of a screen share rows but not lines).
    Following the last word, not a fixed row, keeps slanted photo lines whole.
    """
    lines: list[list[Word]] = []
    for w in sorted(words, key=lambda w: w.box[0]):
        x, y, ww, h = w.box
        best, best_gap = None, None
        for line in lines:
            lx, ly, lw, lh = line[-1].box
            overlap = min(y + h, ly + lh) - max(y, ly)
            gap = x - (lx + lw)
            if overlap >= 0.5 * min(h, lh) and -0.5 * lh <= gap <= 3 * max(h, lh) \
                    and (best_gap is None or gap < best_gap):
                best, best_gap = line, gap
        if best is None:
            lines.append([w])
        else:
            best.append(w)
    return lines
