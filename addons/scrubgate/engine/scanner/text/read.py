"""Stage 2: read each detected line, with recognisers made for line crops.

Every line is cut out along its rotated rectangle (so a tilted photo line is
read level) and read by two recognisers of different families:

- Tesseract in single-line mode (English, Dutch, German, French), made dark on
  light: ~15 ms a line, and sure of itself on screenshots;
- PP-OCR's CRNN recogniser (CTC-decoded; its alphabet covers the four
  languages' diacritics): ~50 ms a line, and it reads photographed, small or
  faint print that Tesseract cannot.

The cheaper-for-the-picture one reads first -- Tesseract on screenshots,
PP-OCR on photographs -- and the other reads again only the lines the first
was unsure of. Both readings are kept and the rules look at both: a line is
only as unreadable as the best of its readings.

Each reading carries word boxes (Tesseract's own; for PP-OCR, from where the
CTC decoder placed each character), so findings point at the identifier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ...boxes import Box
from . import models
from .detect import Detection


@dataclass(frozen=True)
class ReaderTuning:
    height: int = 48  # the recogniser's input height
    max_ratio: float = 40.0  # width/height beyond which a crop is squeezed (very long lines)
    batch_width: int = 3200  # px of padded input per batch (memory, not speed)
    second_opinion_below: float = 0.9  # first reader's confidence under which the other reads too
    tesseract_height: int = 40  # px: Tesseract's comfortable line height


TUNING = ReaderTuning()


@dataclass(frozen=True)
class Word:
    text: str
    box: Box


@dataclass(frozen=True)
class Reading:
    text: str
    confidence: float  # 0-1
    engine: str  # "tesseract" or "ppocr"
    words: tuple[Word, ...] = ()  # with boxes in the picture's pixels


@dataclass(frozen=True)
class Line:
    """A detected line and what the readers made of it."""
    detection: Detection
    readings: tuple[Reading, ...]

    @property
    def box(self) -> Box:
        return self.detection.box

    @property
    def text(self) -> str:
        """The surest reading."""
        return max(self.readings, key=lambda r: r.confidence).text if self.readings else ""

    @property
    def confidence(self) -> float:
        """The best reading's confidence: how sure anyone is of what this line says."""
        return max((r.confidence for r in self.readings if r.text.strip()), default=0.0)

    @property
    def height(self) -> float:
        return self.detection.height


def crop_line(rgb: np.ndarray, det: Detection) -> np.ndarray:
    """The line cut out and levelled: a perspective warp of its rotated rectangle."""
    import cv2

    quad = np.array(det.quad, dtype=np.float32)
    width = int(round(max(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[2] - quad[3]))))
    height = int(round(max(np.linalg.norm(quad[3] - quad[0]), np.linalg.norm(quad[2] - quad[1]))))
    width, height = max(width, 2), max(height, 2)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad, target)
    return cv2.warpPerspective(rgb, matrix, (width, height), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)


def read_lines(image: Image.Image, detections: list[Detection], languages: str,
               photographic: bool = False, tuning: ReaderTuning = TUNING) -> list[Line]:
    if not detections:
        return []
    rgb = np.asarray(image.convert("RGB"))
    crops = [crop_line(rgb, d) for d in detections]

    def tesseract(indices: list[int]) -> list[Reading | None]:
        return [_tesseract(crops[i], detections[i], languages, tuning) for i in indices]

    def ppocr(indices: list[int]) -> list[Reading | None]:
        return _ppocr([crops[i] for i in indices], [detections[i] for i in indices], tuning)

    first_reader, second_reader = (ppocr, tesseract) if photographic else (tesseract, ppocr)
    every = list(range(len(detections)))
    first = first_reader(every)
    unsure = [i for i in every if first[i] is None or first[i].confidence < tuning.second_opinion_below]
    second = dict(zip(unsure, second_reader(unsure)))
    lines = []
    for i, det in enumerate(detections):
        readings = tuple(r for r in (first[i], second.get(i)) if r is not None and r.text.strip())
        lines.append(Line(det, readings))
    return lines


def _ppocr(crops: list[np.ndarray], detections: list[Detection], tuning: ReaderTuning) -> list[Reading]:
    """PP-OCR's reading of each crop. Crops are batched by similar width, so padding
    stays small (batching saves nothing on one core; it only bounds the calls)."""
    import cv2

    session = models.session(models.RECOGNISER_FILE)
    alphabet = models.alphabet()
    h = tuning.height
    widths = [min(int(math.ceil(h * c.shape[1] / max(c.shape[0], 1))), int(h * tuning.max_ratio)) for c in crops]
    order = sorted(range(len(crops)), key=lambda i: widths[i])
    results: list[Reading | None] = [None] * len(crops)
    start = 0
    while start < len(order):
        batch = [order[start]]
        while start + len(batch) < len(order) and \
                widths[order[start + len(batch)]] * (len(batch) + 1) <= tuning.batch_width:
            batch.append(order[start + len(batch)])
        start += len(batch)
        width = max(max(widths[i] for i in batch), h)
        x = np.zeros((len(batch), 3, h, width), dtype=np.float32)
        for k, i in enumerate(batch):
            resized = cv2.resize(crops[i], (widths[i], h), interpolation=cv2.INTER_LINEAR)
            x[k, :, :, :widths[i]] = (resized.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)
        probs = session.run(None, {"x": x})[0]
        for k, i in enumerate(batch):
            text, confidence, xs = _ctc(probs[k], alphabet, widths[i] / width)
            results[i] = Reading(text, confidence, "ppocr", _words(text, xs, detections[i]))
    return results  # type: ignore[return-value]


def _ctc(probs: np.ndarray, alphabet: tuple[str, ...], used: float) -> tuple[str, float, list[float]]:
    """Greedy CTC decoding: best class per time step, repeats collapsed, blanks dropped."""
    steps = probs.shape[0]
    best = probs.argmax(axis=1)
    score = probs.max(axis=1)
    chars, confs, xs = [], [], []
    previous = 0
    for t in range(steps):
        c = int(best[t])
        if c != 0 and c != previous and c < len(alphabet):
            chars.append(alphabet[c])
            confs.append(float(score[t]))
            xs.append(min(1.0, (t + 0.5) / steps / max(used, 1e-6)))
        previous = c
    text = "".join(chars)
    if not text.strip():
        return "", 0.0, []
    return text, float(np.mean(confs)), xs


def _words(text: str, xs: list[float], det: Detection) -> tuple[Word, ...]:
    """Word boxes from character positions (fractions of the line's length)."""
    if not text:
        return ()
    out = []
    start = None
    for i, ch in enumerate(text + " "):
        if ch != " " and start is None:
            start = i
        elif ch == " " and start is not None:
            # half a character's pitch beyond the first and last character centres
            pitch = (xs[min(i, len(xs)) - 1] - xs[start]) / max(i - 1 - start, 1) if i - 1 > start else 0.02
            a = max(0.0, xs[start] - pitch / 2 - 0.01)
            b = min(1.0, xs[i - 1] + pitch / 2 + 0.01)
            out.append(Word(text[start:i], _stretch(det, a, b)))
            start = None
    return tuple(out)


def _stretch(det: Detection, a: float, b: float) -> Box:
    """The box of the part of a line between fractions a and b of its length."""
    quad = np.array(det.quad)
    along, down = quad[1] - quad[0], quad[3] - quad[0]
    corners = np.array([quad[0] + along * a, quad[0] + along * b, quad[0] + along * b + down,
                        quad[0] + along * a + down])
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
    return int(x0), int(y0), int(max(1, x1 - x0)), int(max(1, y1 - y0))


def _tesseract(crop: np.ndarray, det: Detection, languages: str, tuning: ReaderTuning) -> Reading | None:
    """Tesseract, single-line mode, on the levelled crop made dark on light."""
    from PIL import ImageOps

    from .. import ocr

    gray = Image.fromarray(crop).convert("L")
    gray = ImageOps.autocontrast(gray, cutoff=1)
    if np.median(np.asarray(gray)) < 128:
        gray = ImageOps.invert(gray)
    factor = tuning.tesseract_height / max(gray.height, 1)
    if not 0.5 <= factor <= 1.2:
        gray = gray.resize((max(1, round(gray.width * factor)), max(1, round(gray.height * factor))),
                           Image.Resampling.BICUBIC)
    else:
        factor = 1.0
    margin = 8
    framed = Image.new("L", (gray.width + 2 * margin, gray.height + 2 * margin), 255)
    framed.paste(gray, (margin, margin))
    words = [(t.strip(), c, b) for _, t, c, b in ocr.backend(languages).words(framed, 7) if t.strip()]
    if not words:
        return None
    length = max(crop.shape[1] * factor, 1)
    boxes = tuple(Word(t, _stretch(det, max(0.0, (x - margin) / length), min(1.0, (x + w - margin) / length)))
                  for t, _, (x, _, w, _) in words)
    return Reading(" ".join(t for t, _, _ in words), sum(c for _, c, _ in words) / len(words) / 100,
                   "tesseract", boxes)
