"""Burned-in text in DICOM pixel data: which images to scan, every frame, and how it goes back.

Which images: see `needs_scan`.

How a frame is read. pydicom's pixel plugins decode one frame at a time
(`iter_pixels`), colour arrives as RGB (YBR_FULL, YBR_FULL_422, YBR_RCT/ICT
are converted by the decoder). Each frame becomes an 8-bit picture for the
image engine's scanner (`engine.pixels.scan_frame`: text lines detected, read
and judged by the named rules with the header values as hints; barcodes):

- MONOCHROME2 up to 8 bits: the stored values; MONOCHROME1 (and a Presentation
  LUT Shape of INVERSE) inverted, so the picture looks as a viewer shows it;
- more than 8 bits: the file's own VOI window (Window Center/Width after the
  rescale) when it has one, else the first frame's min..max stretched over
  0..255. One mapping per file, so frames of a cine compare. When the window
  was used, the full-range view gets the text-region detector too, and is read
  as well when it shows text regions the window hides (text burned in at a
  value outside the window);
- PALETTE COLOR: the LUT applied, 16-bit entries cut to 8;
- RGB with more than 8 bits per sample: the top 8 bits.

Redaction paints the scanner's boxes into the ORIGINAL decoded array, never
the 8-bit view: black as displayed. RGB gets 0; MONOCHROME2 the smallest value
in the frame (MONOCHROME1 and INVERSE: the largest); PALETTE COLOR the index
whose colour is darkest. The smallest value *present* rather than the smallest
*representable*: on signed data the latter (-32768) is black too, but it
wrecks every min/max auto-window a viewer or a downstream model applies.

Cine loops are not read frame by frame. The first frame is scanned; later
frames are compared with the last scanned one, and a frame is scanned again
only when text may have changed:

1. runs of (near-)identical frames share one decision;
2. pixels that changed (by more than a JPEG's noise) since the last scanned
   frame, outside the boxes already painted, are looked at through the text
   region detector (`ocr.text_regions`, ~10 ms); a region holding changed
   pixels counts as new text when
   - the change lies where nothing moved before (pixels that changed between
     earlier frames or into the next frame are "active": the beating heart,
     the speckle): text appearing over a still background or banner; or
   - inside the active area, the changed pixels hold still into the next
     distinct frame (overlay text stays put, speckle does not); or
   - it is the last frame (nothing to compare it with);
3. a barcode found by the (cheap) barcode reader outside the painted boxes
   also forces a scan.
Boxes are sticky: a box painted in one frame is painted in every later
frame (an OCR pass that misses a name at frame 40 must not un-redact it).
`ScanStats` reports how many frames were read.

Writing back: see codecs.py. Nothing about the pixel data is touched when no
frame needs a box.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
from PIL import Image

from ..boxes import Box, overlap, polygon_box
from ..formats.raster import check_size
from ..limits import EngineLimits
from ..scanner import PixelOptions, barcodes, dedupe, merge_boxes, ocr, scan_frame
from ..verdict import Finding, Refused
from . import codecs

__all__ = ["ScanStats", "check_pixels", "clean_pixels", "needs_scan"]

# --- which images --------------------------------------------------------------------------

_TEXT_PRONE_MODALITIES = frozenset({
    "US", "IVUS",  # ultrasound: the patient banner is burned in by design
    "OT", "SC",  # other / secondary capture: screenshots, scanned documents
    "XA", "RF", "XRF",  # angiography and fluoroscopy: annotated on the modality
    "ES", "XC", "GM", "OP", "SM",  # endoscopy, photographs, microscopy, ophthalmology, slide labels
    "DOC",
})
_TEXT_PRONE_SOP_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.7.",  # multi-frame secondary capture (.7.1 - .7.4)
    "1.2.840.10008.5.1.4.1.1.77.",  # visible light: endoscopy, microscopy, photography, ophthalmic
    "1.2.840.10008.5.1.4.1.1.6.",  # ultrasound, 3D ultrasound
    "1.2.840.10008.5.1.4.1.1.3.",  # ultrasound multi-frame
    "1.2.840.10008.5.1.4.1.1.12.",  # XA, enhanced XA, RF, enhanced XRF
)
_TEXT_PRONE_SOP_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.7",  # secondary capture
    "1.2.840.10008.5.1.4.1.1.6",  # ultrasound (retired)
    "1.2.840.10008.5.1.4.1.1.3",  # ultrasound multi-frame (retired)
})
_SCREEN_WORDS = ("SCREEN", "CAPTURE", "SNAPSHOT", "REPORT", "DOSE", "SAVE", "DISPLAY", "PRINT")


def needs_scan(ds) -> bool:
    """True when the image's pixels may carry burned-in text and must be scanned.

    The rule (fail closed: anything not vouched for is scanned):

    - no Pixel Data: False (nothing to scan);
    - Burned In Annotation is anything but "NO" (YES, absent, empty, garbage): True;
    - even with Burned In Annotation "NO", True for images whose makers burn
      text in routinely and are known to set the flag wrongly: modality US,
      IVUS, OT, SC, XA, RF, ES, XC, GM, OP, SM, DOC; the SOP classes of
      secondary capture (1.2.840.10008.5.1.4.1.1.7 and .7.x), ultrasound
      (.6.x, .3.1), visible light (.77.x: endoscopy, photography,
      microscopy), XA/RF (.12.x); anything with a Conversion Type (a
      secondary capture by definition); and an Image Type naming a screen
      capture (SCREEN, CAPTURE, SNAPSHOT, REPORT, DOSE, SAVE, DISPLAY, PRINT,
      e.g. a CT dose screen);
    - otherwise (CT, MR, PT, NM, CR, DX, MG ... saying "NO"): False; their
      pixels are still checked cheaply by `check_pixels`.
    """
    if "PixelData" not in ds:
        return False
    if str(ds.get("BurnedInAnnotation", "") or "").strip().upper() != "NO":
        return True
    if str(ds.get("Modality", "") or "").strip().upper() in _TEXT_PRONE_MODALITIES:
        return True
    sop = str(ds.get("SOPClassUID", "") or "").strip()
    if sop in _TEXT_PRONE_SOP_CLASSES or sop.startswith(_TEXT_PRONE_SOP_PREFIXES):
        return True
    if str(ds.get("ConversionType", "") or "").strip():
        return True
    image_type = ds.get("ImageType", None)
    values = [str(v).upper() for v in (image_type if isinstance(image_type, (list, tuple)) or
                                       type(image_type).__name__ == "MultiValue" else [image_type or ""])]
    return any(word in v for v in values for word in _SCREEN_WORDS)


# --- checks ----------------------------------------------------------------------------------


def _geometry(ds, limits: EngineLimits) -> codecs.Geometry:
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        raise Refused("corrupt", "the DICOM file has no transfer syntax")
    geom = codecs.geometry(ds)
    check_size(geom.columns, geom.rows, geom.frames, limits, "the DICOM image")
    return geom


def check_pixels(ds, limits: EngineLimits) -> None:
    """For images that are not scanned: refuse pixel bombs and truncated or inconsistent
    pixel data from the header and the encapsulation alone, without decoding."""
    if "PixelData" not in ds:
        return
    geom = _geometry(ds, limits)
    codecs.validate(ds, geom)


# --- decoding and 8-bit views -----------------------------------------------------------------


def _decoder_ready(uid: str, name: str) -> None:
    from pydicom.pixels import get_decoder

    if codecs.is_video(uid):
        raise Refused("unsupported_format", f"{name} pixel data (video) cannot be decoded here, "
                                            "so its burned-in text cannot be checked")
    try:
        decoder = get_decoder(uid)
    except (NotImplementedError, ValueError):
        raise Refused("unsupported_format", f"no decoder for {name} pixel data: "
                                            "its burned-in text cannot be checked") from None
    if not decoder.is_available:
        raise Refused("unsupported_format", f"the decoder for {name} pixel data is not installed: "
                                            "its burned-in text cannot be checked")


def _frames(ds, name: str) -> Iterator[np.ndarray]:
    """Every frame, decoded one at a time; Refused("corrupt") when decoding fails."""
    from pydicom.pixels import iter_pixels

    it = iter_pixels(ds)
    while True:
        try:
            arr = next(it)
        except StopIteration:
            return
        except Refused:
            raise
        except MemoryError:
            raise Refused("too_large", f"the DICOM image's {name} pixel data does not fit in memory") from None
        except Exception as e:  # noqa: BLE001 -- every plugin raises its own
            raise Refused("corrupt", f"the DICOM image's {name} pixel data cannot be decoded "
                                     f"({type(e).__name__})") from None
        yield arr


class _Viewer:
    """Turns decoded frames into 8-bit pictures, the same way for every frame of a file."""

    def __init__(self, ds, geom: codecs.Geometry, first: np.ndarray):
        self.geom = geom
        self.palette = geom.photometric == "PALETTE COLOR" and geom.samples == 1
        self.colour = geom.samples == 3
        self.invert = (geom.photometric == "MONOCHROME1"
                       or str(ds.get("PresentationLUTShape", "")).strip().upper() == "INVERSE")
        self.window: tuple[float, float, float, float] | None = None  # slope, intercept, lo, hi
        self.stretch: tuple[float, float] | None = None  # lo, hi of stored values
        self.lut8: np.ndarray | None = None
        self.darkest_index = 0
        if self.palette:
            self._palette(ds, geom)
        elif not self.colour and (geom.bits_stored != 8 or geom.signed or first.dtype.itemsize > 1):
            self.window = _window(ds)
            lo, hi = float(first.min()), float(first.max())
            self.stretch = (lo, hi if hi > lo else lo + 1.0)

    def _palette(self, ds, geom) -> None:
        from pydicom.pixels import apply_color_lut

        n = 2 ** min(geom.bits_stored, 16)
        try:
            lut = apply_color_lut(np.arange(n, dtype=np.uint16 if n > 256 else np.uint8), ds)
        except Exception as e:  # noqa: BLE001
            raise Refused("corrupt", f"the DICOM image's palette cannot be applied ({type(e).__name__})") from None
        lut = np.asarray(lut).reshape(n, 3)
        self.darkest_index = int(np.argmin(lut.astype(np.int64).sum(axis=1)))
        self.lut8 = (lut >> 8).astype(np.uint8) if lut.dtype.itemsize > 1 else lut.astype(np.uint8)

    def view(self, arr: np.ndarray) -> tuple[Image.Image, Image.Image | None]:
        """(picture for the scanner, full-range picture when a window made the first, else None)."""
        if self.palette:
            idx = np.clip(arr, 0, len(self.lut8) - 1)
            return Image.fromarray(self.lut8[idx], "RGB"), None
        if self.colour:
            a = arr
            if a.dtype.itemsize > 1:
                a = (a.astype(np.uint32) >> max(0, self.geom.bits_stored - 8)).clip(0, 255)
            return Image.fromarray(np.ascontiguousarray(a, dtype=np.uint8), "RGB"), None
        if self.stretch is None:
            a = np.ascontiguousarray(arr, dtype=np.uint8)
            return Image.fromarray(255 - a if self.invert else a, "L"), None
        full = self._gray(_linear(arr.astype(np.float32), *self.stretch))
        if self.window is None:
            return full, None
        slope, intercept, lo, hi = self.window
        return self._gray(_linear(arr.astype(np.float32) * slope + intercept, lo, hi)), full

    def _gray(self, a: np.ndarray) -> Image.Image:
        return Image.fromarray(255 - a if self.invert else a, "L")

    def fill_value(self, frame: np.ndarray):
        if self.palette:
            return self.darkest_index
        if self.colour:
            return 0
        return frame.max() if self.invert else frame.min()


def _linear(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((a - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def _window(ds) -> tuple[float, float, float, float] | None:
    """(slope, intercept, lo, hi) of the first VOI window, in rescaled units (PS3.3 C.11.2.1.2)."""
    def first(value):
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            value = value[0] if len(value) else None
        return float(value)

    try:
        centre, width = first(ds.WindowCenter), first(ds.WindowWidth)
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
    except (AttributeError, TypeError, ValueError, IndexError):
        return None
    if not np.isfinite([centre, width, slope, intercept]).all() or width <= 1:
        return None
    lo, hi = centre - 0.5 - (width - 1) / 2, centre - 0.5 + (width - 1) / 2
    return slope, intercept, lo, hi


# --- cine: which frames to read ------------------------------------------------------------------

_CHANGED = 24  # 8-bit levels: above a JPEG's noise, below any legible text's contrast
_STILL = 16  # levels: a pixel that moved less than this between frames held still
_STABLE_FRACTION = 0.8
_ACTIVE_GROW = 9  # px: speckle flickers pixel by pixel; its neighbourhood is active as a whole
_MIN_CHANGED_PIXELS = 12
_MIN_CHANGED_SHARE = 0.04  # of a region's box: a new word's ink is a quarter of it
_MAX_MOSAIC_CROPS = 40
_LETTER_HEIGHT = 36  # px: Tesseract's comfortable line height
_MOSAIC_CONFIDENCE = 70.0  # speckle read as "Eur", "Den" scores 60-65; a word in a crop scores 85+
_MOSAIC_MIN_CHARACTERS = 3  # "Ss", "FA": speckle read as letters comes in pairs, names do not


@dataclass
class ScanStats:
    """What one `clean_pixels` call did (for tests and benchmarks; holds no pixel values)."""

    frames: int = 0
    runs: int = 0  # runs of (near-)identical frames
    ocr_frames: int = 0  # frames read by the scanner (OCR)
    region_reads: int = 0  # frames whose changed regions alone were read (one small OCR pass)
    second_views: int = 0  # full-range views read besides the windowed one
    redacted_frames: int = 0
    scanned: list[int] = field(default_factory=list)  # indices of the frames read


@dataclass
class _Run:
    start: int
    count: int
    view: Image.Image
    alt: Image.Image | None
    gray: np.ndarray


def _runs(views: Iterator[tuple[int, Image.Image, Image.Image | None]]) -> Iterator[_Run]:
    import cv2

    run: _Run | None = None
    for i, view, alt in views:
        gray = np.asarray(view.convert("L") if view.mode != "L" else view)
        if run is not None and not np.any(cv2.absdiff(gray, run.gray) > _CHANGED):
            run.count += 1
            continue
        if run is not None:
            yield run
        run = _Run(i, 1, view, alt, gray)
    if run is not None:
        yield run


class _Planner:
    """Decides, run by run, which frames are read and which boxes every frame gets."""

    def __init__(self, shape: tuple[int, int], options: PixelOptions, stats: ScanStats):
        self.options = options
        self.stats = stats
        self.fills: list[Box] = []
        self.fill_mask = np.zeros(shape, dtype=bool)
        self.active = np.zeros(shape, dtype=np.uint8)
        self.ref: np.ndarray | None = None  # gray of the last frame read
        self.prev: np.ndarray | None = None  # gray of the previous run
        self.findings: list[Finding] = []
        self.frames_seen = 0

    def step(self, run: _Run, nxt: _Run | None) -> None:
        import cv2

        if self.ref is None or self._text_changed(run, nxt):
            self._read(run)
        if self.prev is not None:
            self.active |= (cv2.absdiff(run.gray, self.prev) > _CHANGED).astype(np.uint8)
        self.prev = run.gray
        self.frames_seen += run.count
        self.stats.runs += 1

    def _read(self, run: _Run) -> None:
        result = scan_frame(run.view, self.options)
        # A frame's text is level: a polygon (on a tilted line) is painted as its upright box.
        fills = list(result.fills) + [polygon_box(q, run.view.size) for q in result.polygons]
        findings = list(result.findings)
        self.stats.ocr_frames += 1
        self.stats.scanned.append(run.start)
        if run.alt is not None:
            # Text burned in at a value outside the window is flat in the windowed view.
            seen = ocr.text_regions(run.view.convert("L"))
            hidden = [r for r in ocr.text_regions(run.alt) if not any(overlap(r, s) > 0.5 for s in seen)]
            if hidden:
                more = scan_frame(run.alt, self.options)
                fills += more.fills + [polygon_box(q, run.alt.size) for q in more.polygons]
                findings += more.findings
                self.stats.second_views += 1
        self.findings.extend(findings)
        if fills:
            self.fills = merge_boxes(self.fills + fills)
            for x, y, w, h in fills:
                self.fill_mask[y:y + h, x:x + w] = True
        self.ref = run.gray

    def _text_changed(self, run: _Run, nxt: _Run | None) -> bool:
        import cv2

        changed = (cv2.absdiff(run.gray, self.ref) > _CHANGED) & ~self.fill_mask
        if not changed.any():
            return False
        active = self.active.copy()
        if nxt is not None:
            active |= (cv2.absdiff(nxt.gray, run.gray) > _CHANGED).astype(np.uint8)
        active = cv2.dilate(active, np.ones((_ACTIVE_GROW, _ACTIVE_GROW), np.uint8)).astype(bool)
        candidates: list[tuple[int, Box]] = []  # (priority, region)
        for x, y, w, h in ocr.text_regions(Image.fromarray(run.gray)):
            box = changed[y:y + h, x:x + w]
            enough = max(_MIN_CHANGED_PIXELS, _MIN_CHANGED_SHARE * w * h)
            if box.sum() < enough:
                continue
            if (box & ~active[y:y + h, x:x + w]).sum() >= enough:
                candidates.append((0, (x, y, w, h)))  # text where nothing moves
            elif nxt is None or self._holds_still(run.gray, nxt.gray, box, (x, y, w, h)):
                candidates.append((1, (x, y, w, h)))  # overlay over motion; or the last frame
        if candidates:
            self.stats.region_reads += 1
            ordered = [b for _, b in sorted(candidates, key=lambda c: (c[0], -c[1][2] * c[1][3]))]
            if _reads_text(run.gray, ordered[:_MAX_MOSAIC_CROPS], self.options.languages):
                return True
        for box, _ in barcodes.tighten(run.view, barcodes.find(run.view)):  # the boxes scan_frame paints
            x, y, w, h = box
            if not self.fill_mask[max(0, y):y + h, max(0, x):x + w].all():
                return True
        return False

    def _holds_still(self, gray: np.ndarray, nxt: np.ndarray, changed: np.ndarray, box: Box) -> bool:
        """Does the region's new ink stay put into the next distinct frame? Ink is the
        brightest (or darkest) of the region's changed pixels: overlay text is drawn in one
        saturated colour, whatever moves behind it."""
        import cv2

        x, y, w, h = box
        patch = gray[y:y + h, x:x + w]
        still = cv2.absdiff(patch, nxt[y:y + h, x:x + w]) <= _STILL
        values = patch[changed]
        enough = max(_MIN_CHANGED_PIXELS, _MIN_CHANGED_SHARE * w * h / 2)
        for ink in (changed & (patch >= int(values.max()) - _CHANGED),
                    changed & (patch <= int(values.min()) + _CHANGED)):
            count = ink.sum()
            if count >= enough and (ink & still).sum() >= _STABLE_FRACTION * count:
                return True
        return False


def _reads_text(gray: np.ndarray, boxes: list[Box], languages: str) -> bool:
    """Do these regions hold legible text? One Tesseract pass over a mosaic of their crops,
    each stretched, made dark on light and enlarged to a comfortable letter height."""
    from PIL import ImageOps

    crops = []
    for x, y, w, h in boxes:
        pad = max(3, h // 4)
        crop = Image.fromarray(gray[max(0, y - pad):y + h + pad, max(0, x - pad):x + w + pad])
        crop = ImageOps.autocontrast(crop, cutoff=1)
        if np.median(np.asarray(crop)) < 128:
            crop = ImageOps.invert(crop)
        factor = max(1.0, min(4.0, _LETTER_HEIGHT / max(h, 1)))
        if factor > 1:
            crop = crop.resize((round(crop.width * factor), round(crop.height * factor)),
                               Image.Resampling.BICUBIC)
        crops.append(crop)
    gap = 16
    mosaic = Image.new("L", (max(c.width for c in crops) + 2 * gap,
                             sum(c.height for c in crops) + gap * (len(crops) + 1)), 255)
    top = gap
    for crop in crops:
        mosaic.paste(crop, (gap, top))
        top += crop.height + gap
    for _line, text, confidence, _box in ocr.backend(languages).words(mosaic, 11):
        if confidence >= _MOSAIC_CONFIDENCE and sum(c.isalnum() for c in text) >= _MOSAIC_MIN_CHARACTERS:
            return True
    return False


# --- the scan ------------------------------------------------------------------------------------


def clean_pixels(ds, options: PixelOptions, limits: EngineLimits,
                 stats: ScanStats | None = None) -> tuple[bool, list[Finding]]:
    """Scan every frame, paint out what the scanner finds, write the pixels back in place.

    Returns (changed, findings). When nothing is painted the dataset's pixel
    elements are not touched at all (the encoded Pixel Data stays byte for byte).
    Raises Refused: too_large (limits, checked before decoding), corrupt
    (truncated, inconsistent or undecodable pixel data), unsupported_format
    (no decoder for the transfer syntax, e.g. video).
    """
    stats = stats if stats is not None else ScanStats()
    if "PixelData" not in ds:
        return False, []
    geom = _geometry(ds, limits)
    codecs.validate(ds, geom)
    uid = str(ds.file_meta.TransferSyntaxUID)
    name = codecs.syntax_name(uid)
    _decoder_ready(uid, name)
    source = codecs.describe(ds, geom)
    stats.frames = geom.frames

    # Pass 1: decode frame by frame, read the frames whose text may have changed.
    frames = _frames(ds, name)
    first = next(frames, None)
    if first is None:
        raise Refused("corrupt", f"the DICOM image's {name} pixel data holds no frame")
    viewer = _Viewer(ds, geom, first)

    def views():
        yield (0, *viewer.view(first))
        for i, arr in enumerate(frames, start=1):
            yield (i, *viewer.view(arr))

    planner = _Planner((geom.rows, geom.columns), options, stats)
    runs = _runs(views())
    current = next(runs)
    for upcoming in runs:
        planner.step(current, upcoming)
        current = upcoming
    planner.step(current, None)
    del first, current, runs
    if planner.frames_seen != geom.frames:
        raise Refused("corrupt", f"the DICOM image's {name} pixel data holds a different number of "
                                 "frames than Number of Frames says")
    findings = dedupe(planner.findings)
    # Every box found on any frame is painted on every frame. A banner that one
    # frame's OCR misread was there, unread, in the frames before the one that
    # read it; text that appears mid-loop costs a little picture earlier on,
    # never an identifier.
    boxes = planner.fills
    if not boxes:
        return False, findings

    # Pass 2: decode again into one array, paint, write back.
    out: np.ndarray | None = None
    for i, arr in enumerate(_frames(ds, name)):
        if out is None:
            # Big-endian sources decode to big-endian dtypes; what is written is little endian.
            out = np.empty((geom.frames, *arr.shape), dtype=arr.dtype.newbyteorder("="))
        frame = out[i]
        frame[...] = arr
        value = viewer.fill_value(frame)
        for x, y, w, h in boxes:
            frame[y:y + h, x:x + w] = value
        stats.redacted_frames += 1
    ds["PixelData"].value = b""  # the encoded original is no longer needed: one copy fewer in memory
    photometric = "RGB" if geom.samples == 3 else geom.photometric
    if photometric not in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB"):
        photometric = "MONOCHROME2"
    bits_stored = geom.bits_stored if out.dtype.itemsize * 8 >= geom.bits_stored else out.dtype.itemsize * 8
    try:
        codecs.store(ds, out if geom.multiframe else out[0], photometric, bits_stored, source)
    except Refused:
        raise
    except (ValueError, TypeError, NotImplementedError) as e:
        raise Refused("corrupt", f"the redacted {name} pixel data could not be written back "
                                 f"({type(e).__name__})") from None
    return True, findings
