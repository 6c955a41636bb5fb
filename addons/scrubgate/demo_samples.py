"""Synthetic uploads for `scrubgate demo`: made in code, no patient ever involved.

Every sample carries invented identifiers (the NHS number 943 476 5919 is a
well-known valid-checksum test number). The demo never prints these values.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu/", "/usr/share/fonts/dejavu/", "/usr/share/fonts/TTF/")

NAME = "KOWALSKI, Anna"
DICOM_NAME = "KOWALSKI^ANNA^MARIA"
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


def viewer_screen(size=(1280, 960), text_px=18) -> Image.Image:
    """A PACS viewer: patient banner top-left, technical text top-right, an 'organ'."""
    w, h = size
    im = Image.new("RGB", size, (0, 0, 0))
    d = ImageDraw.Draw(im)
    d.ellipse((w * 0.3, h * 0.22, w * 0.72, h * 0.82), fill=(70, 70, 70))
    d.ellipse((w * 0.4, h * 0.36, w * 0.62, h * 0.66), fill=(125, 125, 125))
    f, fm = font(text_px), font(text_px - 2, mono=True)
    step = int(text_px * 1.45)
    for i, t in enumerate(["KOWALSKI^ANNA", f"NHS {NHS}", "DOB: 04-Mar-1962", f"MRN: {MRN}",
                           "St Mary's Hospital"]):
        d.text((12, 10 + i * step), t, fill=(235, 235, 235), font=f)
    for i, t in enumerate(["kVp 120 mAs 250", "W 400 L 40", "Se: 3 Im: 12/240"]):
        d.text((w - 14 * text_px, 10 + i * step), t, fill=(230, 230, 140), font=fm)
    return im


def phone_photo(im: Image.Image, seed: int = 1) -> Image.Image:
    """The screen as a phone camera sees it: bezel, perspective, vignetting, blur, noise."""
    import cv2

    rng = np.random.default_rng(seed)
    a = np.asarray(im.convert("RGB")).astype(np.float32)
    h, w = a.shape[:2]
    ow, oh = int(w * 1.4), int(h * 1.45)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[0.12 * ow, 0.13 * oh], [0.89 * ow, 0.10 * oh], [0.90 * ow, 0.87 * oh],
                      [0.11 * ow, 0.85 * oh]])
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(a, m, (ow, oh))
    mask = cv2.warpPerspective(np.ones((h, w), np.float32), m, (ow, oh))[..., None]
    out = np.full((oh, ow, 3), (62, 56, 50), np.float32) * (1 - mask) + warped * mask
    yy, xx = np.mgrid[0:oh, 0:ow]
    out *= (0.75 + 0.35 * np.exp(-((xx - ow / 2) ** 2 + (yy - oh / 2) ** 2) / (2 * (0.45 * ow) ** 2)))[..., None]
    out = cv2.GaussianBlur(out, (0, 0), 0.9) + rng.normal(0, 4, out.shape)
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


def wristband_photo() -> bytes:
    """A wristband: printed name, DOB and MRN, plus a QR code of the MRN when zxing-cpp can write one."""
    im = Image.new("RGB", (1400, 700), (196, 170, 150))
    d = ImageDraw.Draw(im)
    d.rounded_rectangle((40, 140, 1360, 560), 40, fill=(250, 250, 250))
    f = font(30)
    d.text((80, 170), NAME, fill=(0, 0, 0), font=f)
    d.text((80, 215), f"DOB: {DOB}", fill=(0, 0, 0), font=f)
    d.text((80, 260), f"MRN: {MRN}", fill=(0, 0, 0), font=f)
    try:
        import zxingcpp

        code = zxingcpp.create_barcode(MRN, zxingcpp.BarcodeFormat.QRCode)
        pic = Image.fromarray(np.asarray(code.to_image(scale=6))).convert("RGB")
        im.paste(pic, (1340 - pic.width - 40, 350 - pic.height // 2))
    except Exception:  # no writer in this zxing-cpp: a printed label only
        d.text((80, 320), "Ward 7B  Allergies: none known", fill=(0, 0, 0), font=f)
    return encode(im, "JPEG", quality=92)


def secondary_capture() -> bytes:
    """A DICOM Secondary Capture with the patient in the header and a banner burned in."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sc = "1.2.840.10008.5.1.4.1.1.7"
    w, h = 640, 480
    im = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(im)
    d.ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=90)
    f = font(22)
    d.text((12, 10), "KOWALSKI^ANNA", font=f, fill=255)
    d.text((12, 40), f"ID: {MRN}", font=f, fill=255)
    d.text((12, 70), f"DOB {DOB}", font=f, fill=255)
    d.text((w - 170, h - 36), "Gain 54  12 cm", font=font(20), fill=230)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sc
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sc
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.ConversionType = "OT", "WSD"
    ds.PatientName = DICOM_NAME
    ds.PatientID = MRN
    ds.PatientBirthDate = "19620304"
    ds.PatientSex = "F"
    ds.InstitutionName = "Riverside Royal Infirmary"
    ds.ReferringPhysicianName = "OKONJO^BEATRICE"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20261103"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC77812"
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "S1", 1, 1
    ds.StudyDescription = "US abdomen"
    ds.set_pixel_data(np.asarray(im), "MONOCHROME2", 8)
    ds.BurnedInAnnotation = "YES"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def dicom_frame(data: bytes) -> Image.Image:
    """Frame 0 of a DICOM file as an 8-bit picture."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data))
    arr = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[0]
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
