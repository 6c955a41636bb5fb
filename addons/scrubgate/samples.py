"""Synthetic pictures and studies with invented identifiers: the one set of sample
builders that `scrubgate demo`, the tests and the benchmarks share.

Made in code, no patient ever involved: the NHS number 943 476 5919 is a
well-known valid-checksum test number, the rest is made up. The demo never
prints these values. The quality harness (evaluation/) has its own corpus
generator: many fonts, layouts, languages and photo conditions, with every
planted value's box recorded for its judges.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu/", "/usr/share/fonts/dejavu/", "/usr/share/fonts/TTF/")

NAME = "KOWALSKI, Anna"
NHS = "943 476 5919"
MRN = "RX0042113"
DOB = "04/03/1962"
# What must never reach the demo's own output.
SECRETS = ["KOWALSKI", "Anna", NHS, NHS.replace(" ", ""), MRN, DOB, "04-Mar-1962", "1962"]


def font(size: int, mono: bool = False) -> ImageFont.ImageFont:
    name = "DejaVuSansMono.ttf" if mono else "DejaVuSans.ttf"
    for d in FONT_DIRS:
        if os.path.exists(d + name):
            return ImageFont.truetype(d + name, size)
    try:
        return ImageFont.load_default(size)
    except TypeError:  # very old Pillow
        return ImageFont.load_default()


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


# A PACS viewer's patient banner and technical overlay.
BANNER = ("KOWALSKI^ANNA", f"NHS {NHS}", "DOB: 04-Mar-1962", f"MRN: {MRN}", "St Mary's Hospital")
OVERLAY = ("kVp 120 mAs 250", "W 400 L 40", "Se: 3 Im: 12/240")


def viewer_screen(identifiers=BANNER, technical=OVERLAY, size=(1280, 960), text_px=18,
                  dark=True) -> Image.Image:
    """A PACS viewer: patient banner top-left, technical text top-right, an 'organ'."""
    w, h = size
    bg, fg, fg2 = ((0, 0, 0), (235, 235, 235), (230, 230, 140)) if dark else \
        ((245, 245, 240), (20, 20, 20), (40, 40, 120))
    im = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(im)
    d.ellipse((w * 0.3, h * 0.22, w * 0.72, h * 0.82), fill=(70, 70, 70) if dark else (200, 200, 200))
    d.ellipse((w * 0.4, h * 0.36, w * 0.62, h * 0.66), fill=(125, 125, 125))
    f, fm = font(text_px), font(text_px - 2, mono=True)
    step = int(text_px * 1.45)
    for i, t in enumerate(identifiers):
        d.text((12, 10 + i * step), t, fill=fg, font=f)
    for i, t in enumerate(technical):
        d.text((w - 14 * text_px, 10 + i * step), t, fill=fg2, font=fm)
    return im


@dataclass(frozen=True)
class PhoneLook:
    """How a phone camera sees a screen: the canvas around it, where its corners land,
    and what the optics and sensor add."""
    canvas: tuple[float, float]  # the photo's size, as multiples of the screen's
    corners: tuple[tuple[float, float], ...]  # screen corners in the photo, fractions, clockwise from top-left
    jitter: float = 0.0  # random shift of each corner, fraction of the screen
    moire: float = 0.0  # amplitude of the screen-door pattern
    vignette: tuple[float, float] = (0.75, 0.35)  # centre gain = a + b
    blur: float = 0.9  # Gaussian sigma, px
    noise: float = 4.0  # sensor noise, grey levels


# The demo's photo: a steady hand, good light.
STEADY = PhoneLook((1.4, 1.45), ((0.12, 0.13), (0.89, 0.10), (0.90, 0.87), (0.11, 0.85)))
# The tests' photo: a little tilt, moire, more blur and noise.
HANDHELD = PhoneLook((1.55, 1.65), ((0.13, 0.14), (0.88, 0.11), (0.9, 0.86), (0.115, 0.83)), jitter=0.03,
                     moire=10.0, vignette=(0.7, 0.4), blur=1.1, noise=5.0)


def phone_photo(im: Image.Image, seed: int = 1, look: PhoneLook = STEADY) -> Image.Image:
    """The screen as a phone camera sees it: bezel, perspective, moire, vignetting, blur, noise."""
    import cv2

    rng = np.random.default_rng(seed)
    a = np.asarray(im.convert("RGB")).astype(np.float32)
    h, w = a.shape[:2]
    ow, oh = int(w * look.canvas[0]), int(h * look.canvas[1])
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[x * ow, y * oh] for x, y in look.corners])
    if look.jitter:
        dst += (rng.uniform(-look.jitter, look.jitter, (4, 2)) * [w, h]).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(a, m, (ow, oh))
    mask = cv2.warpPerspective(np.ones((h, w), np.float32), m, (ow, oh))[..., None]
    out = np.full((oh, ow, 3), (62, 56, 50), np.float32) * (1 - mask) + warped * mask
    yy, xx = np.mgrid[0:oh, 0:ow]
    if look.moire:
        out += look.moire * np.sin(xx * 0.9 + yy * 0.35)[..., None]
    gain, spot = look.vignette
    out *= (gain + spot * np.exp(-((xx - ow / 2) ** 2 + (yy - oh / 2) ** 2) / (2 * (0.45 * ow) ** 2)))[..., None]
    out = cv2.GaussianBlur(out, (0, 0), look.blur) + rng.normal(0, look.noise, out.shape)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def phone_photo_jpeg() -> bytes:
    """JPEG with camera EXIF (make, model, date), as a phone would send it."""
    im = phone_photo(viewer_screen())
    exif = Image.Exif()
    exif[0x010F] = "DemoPhone"          # Make
    exif[0x0110] = "DemoPhone 12"       # Model
    exif[0x0132] = "2026:11:03 10:15:00"  # DateTime
    return encode(im, "JPEG", quality=90, exif=exif.tobytes())


def ehr_screenshot() -> bytes:
    """An EHR-like patient summary screenshot (PNG)."""
    im = Image.new("RGB", (1200, 720), (244, 246, 250))
    d = ImageDraw.Draw(im)
    d.rectangle((0, 0, 1200, 56), fill=(0, 94, 184))
    d.text((20, 14), "Patient summary - Ward 7B", fill=(255, 255, 255), font=font(24))
    d.rectangle((20, 76, 1180, 250), fill=(255, 255, 255), outline=(200, 205, 215))
    f = font(24)
    d.text((40, 92), f"Name: {NAME}", fill=(20, 20, 20), font=f)
    d.text((40, 132), f"NHS number: {NHS}", fill=(20, 20, 20), font=f)
    d.text((40, 172), "DOB: 04-Mar-1962 (64 y)", fill=(20, 20, 20), font=f)
    d.text((40, 212), f"MRN: {MRN}", fill=(20, 20, 20), font=f)
    d.rectangle((20, 270, 1180, 700), fill=(255, 255, 255), outline=(200, 205, 215))
    g = font(22)
    for i, t in enumerate(["Observations", "Heart rate 82 bpm", "Blood pressure 128/76",
                           "Temperature 37.1 C", "SpO2 97 % on air", "Plan: repeat bloods"]):
        d.text((40, 290 + i * 40), t, fill=(40, 40, 40), font=g)
    return encode(im, "PNG")


def wristband(codes=("QRCode", "Code128", "DataMatrix"), *, codes_required: bool = True) -> Image.Image:
    """A hospital wristband: printed name, DOB and MRN, and machine-readable codes of the
    MRN (zxing-cpp writes them). Without `codes_required`, a zxing-cpp that cannot write
    codes leaves a printed line instead."""
    im = Image.new("RGB", (1400, 700), (196, 170, 150))  # skin-ish background
    d = ImageDraw.Draw(im)
    d.rounded_rectangle((40, 140, 1360, 560), 40, fill=(250, 250, 250))
    f = font(30)
    d.text((80, 170), NAME, fill=(0, 0, 0), font=f)
    d.text((80, 215), f"DOB: {DOB}", fill=(0, 0, 0), font=f)
    d.text((80, 260), f"MRN: {MRN}", fill=(0, 0, 0), font=f)
    try:
        import zxingcpp

        pictures = []
        for kind in codes:
            code = zxingcpp.create_barcode(MRN, getattr(zxingcpp.BarcodeFormat, kind))
            pic = Image.fromarray(np.asarray(code.to_image(scale=3 if kind == "Code128" else 6)))
            pictures.append((kind, pic.resize((pic.width, 110)) if kind == "Code128" else pic))
    except Exception:
        if codes_required:
            raise
        d.text((80, 320), "Ward 7B  Allergies: none known", fill=(0, 0, 0), font=f)
        return im
    x = 80
    for kind, pic in pictures:
        im.paste(pic.convert("RGB"), (x, 320 if kind == "Code128" else 300))
        x += pic.width + 60
    return im


def wristband_photo() -> bytes:
    """The demo's wristband, with a QR code of the MRN, as a JPEG."""
    return encode(wristband(("QRCode",), codes_required=False), "JPEG", quality=92)


# The invented patient of the DICOM samples.
PATIENT = {
    "name": "KOWALSKI^ANNA^MARIA",
    "id": "RX0042113",
    "other_id": "9434765919",
    "birth": "19620304",
    "institution": "Riverside Royal Infirmary",
    "physician": "OKONJO^BEATRICE",
}
# What must not survive anywhere in a cleaned header (strings searched case-insensitively).
PLANTED = ["KOWALSKI", "ANNA", "RX0042113", "9434765919", "19620304", "Riverside", "OKONJO",
           "+44 20 7946 0958", "12 Acacia Avenue"]
BURNED_IN = ["KOWALSKI^ANNA", "RX0042113", "04/03/1962"]
SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"


def secondary_capture(study_uid: str | None = None, series_uid: str | None = None, *, banner: bool = True,
                      frames: int = 1, size: tuple[int, int] = (640, 480)) -> bytes:
    """A DICOM Secondary Capture (8-bit greyscale) with a patient banner burned in and
    identifiers all over the header: names, IDs, dates, address, free text, a private
    tag, a nested sequence."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    w, h = size
    images = []
    for k in range(frames):
        im = Image.new("L", size, 0)
        d = ImageDraw.Draw(im)
        d.ellipse((w // 4 + 3 * k, h // 4, 3 * w // 4 + 3 * k, 3 * h // 4), fill=90)  # "anatomy" that moves
        if banner:
            f = font(22)
            d.text((12, 10), "KOWALSKI^ANNA", font=f, fill=255)
            d.text((12, 40), "ID: RX0042113", font=f, fill=255)
            d.text((12, 70), "DOB 04/03/1962", font=f, fill=255)
        d.text((w - 170, h - 36), "Gain 54  12 cm", font=font(20), fill=230)
        images.append(np.asarray(im))
    arr = np.stack(images) if frames > 1 else images[0]

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SC_CLASS
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SC_CLASS
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.PatientName = PATIENT["name"]
    ds.PatientID = PATIENT["id"]
    ds.PatientBirthDate = PATIENT["birth"]
    ds.PatientSex = "F"
    ds.PatientAddress = "12 Acacia Avenue, Leeds"
    ds.PatientTelephoneNumbers = "+44 20 7946 0958"
    ds.OtherPatientIDsSequence = Sequence([Dataset()])
    ds.OtherPatientIDsSequence[0].PatientID = PATIENT["other_id"]
    ds.OtherPatientIDsSequence[0].IssuerOfPatientID = "NHS"
    ds.InstitutionName = PATIENT["institution"]
    ds.ReferringPhysicianName = PATIENT["physician"]
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20261103"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC77812"
    ds.StudyID = "S1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.StudyDescription = "US abdomen for KOWALSKI ANNA RX0042113"
    ds.ImageComments = "Seen by Dr OKONJO, patient Kowalski"
    ds.ReferencedStudySequence = Sequence([Dataset()])
    ds.ReferencedStudySequence[0].ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    ds.ReferencedStudySequence[0].ReferencedSOPInstanceUID = ds.StudyInstanceUID
    ds.add_new(0x00090010, "LO", "ACME_PRIVATE")
    ds.add_new(0x00091001, "LO", "KOWALSKI ANNA")
    ds.set_pixel_data(arr, "MONOCHROME2", 8)
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.BurnedInAnnotation = "YES"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def dicom_frame(data: bytes, index: int = 0) -> Image.Image:
    """One frame of a DICOM file as an 8-bit picture (for a side-by-side or an OCR judge)."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data))
    arr = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[index]
    arr = arr.astype(np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    arr = (arr - lo) * (255.0 / (hi - lo or 1.0))
    return Image.fromarray(arr.astype(np.uint8))


def side_by_side(before: Image.Image, after: Image.Image, height: int = 600) -> Image.Image:
    """Original left, what the messenger received right, labelled."""
    def fit(im: Image.Image) -> Image.Image:
        im = im.convert("RGB")
        return im.resize((max(1, round(im.width * height / im.height)), height))

    a, b = fit(before), fit(after)
    gap, top = 16, 40
    out = Image.new("RGB", (a.width + b.width + gap, height + top), (255, 255, 255))
    out.paste(a, (0, top))
    out.paste(b, (a.width + gap, top))
    d = ImageDraw.Draw(out)
    f = font(22)
    d.text((8, 8), "before (sent by the user)", fill=(0, 0, 0), font=f)
    d.text((a.width + gap + 8, 8), "after (received by the messenger)", fill=(0, 0, 0), font=f)
    return out


def opaque_blob(n: int = 24_000) -> bytes:
    """What an E2EE client uploads: ciphertext, deterministic here."""
    return np.random.default_rng(7).integers(0, 256, n, dtype=np.uint8).tobytes()
