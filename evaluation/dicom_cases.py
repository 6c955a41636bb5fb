#!/usr/bin/env python3
"""Build the DICOM corpus for the quality harness: input files plus what was planted where.

    .venv/bin/python -m evaluation.dicom_cases --out /tmp/dcorpus [--seed 1] [--generated 24] [--quick]

Three families, one record per file in `cases.jsonl`:

- `ultrasound_real`: the deid-data ultrasounds, unchanged. Their burned-in PHI
  (which does not match their headers) is labelled in `dicom_labels.json`,
  written after reading frame 0 with RapidOCR and looking at the renders.
- `transfer_syntax`: pydicom's bundled test files, one per transfer syntax or
  pixel layout, with identifiers planted in the header and burned into the
  pixels, then re-encoded in the file's own transfer syntax (pydicom's
  encoders for RLE, JPEG-LS and JPEG 2000; dcmtk's `dcmcjpeg` for the JPEG
  processes, else Pillow for baseline; where neither exists the pixels are left
  as they are and the record says so). Images too small to carry legible
  text are upscaled (nearest neighbour) first; the record says by how much.
- `generated`: secondary captures from Faker patients (several locales, some
  names made up), several fonts, 8/16-bit greyscale, RGB, MONOCHROME1 and
  multi-frame cines with a static banner, banners and corner blocks in every
  position, in pairs that share a study (the scorer checks that both get the
  same new Study Instance UID).

Every value is fake. Generation is deterministic per seed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from . import identifiers as ids
from . import render
from .common import HERE

GENERATOR_VERSION = 2
LABELS_FILE = HERE / "dicom_labels.json"
DEFAULT_GENERATED = 24
QUICK_GENERATED = 3

# (file in deid_data/data/ultrasounds, member of the zip or None)
ULTRASOUNDS = [("GREYSCALE_IMAGE.dcm", None), ("RGB_IMAGE.dcm", None), ("ultrasound-multiframe.dcm", None),
               ("GREYSCALE_CINE.zip", "GREYSCALE_CINE.dcm"), ("RGB_CINE.zip", "RGB_CINE.dcm")]
QUICK_ULTRASOUNDS = ["GREYSCALE_IMAGE.dcm", "RGB_IMAGE.dcm"]

# pydicom test file -> what it stands for. Re-encoding keeps the transfer syntax.
TS_CASES = [
    ("MR_small.dcm", "Explicit VR Little Endian, signed 16-bit MR"),
    ("MR_small_implicit.dcm", "Implicit VR Little Endian"),
    ("MR_small_bigendian.dcm", "Explicit VR Big Endian"),
    ("image_dfl.dcm", "Deflated Explicit VR Little Endian"),
    ("MR_small_RLE.dcm", "RLE Lossless, signed 16-bit"),
    ("SC_rgb_rle_2frame.dcm", "RLE Lossless, RGB, 2 frames"),
    ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS Lossless, signed 16-bit"),
    ("SC_rgb_jls_lossy_sample.dcm", "JPEG-LS Near-Lossless, RGB"),
    ("examples_jpeg2k.dcm", "JPEG 2000 Lossless, YBR_RCT ultrasound"),
    ("693_J2KI.dcm", "JPEG 2000 (lossy), signed 16-bit CT"),
    ("SC_rgb_jpeg_dcmtk.dcm", "JPEG Baseline, YBR_FULL"),
    ("examples_ybr_color.dcm", "JPEG Baseline, YBR_FULL_422, 30-frame ultrasound"),
    ("JPGExtended.dcm", "JPEG Extended (12-bit)"),
    ("SC_rgb_jpeg_gdcm.dcm", "JPEG Lossless SV1, RGB"),
    ("examples_palette.dcm", "PALETTE COLOR ultrasound"),
    ("SC_ybr_full_422_uncompressed.dcm", "YBR_FULL_422 uncompressed"),
    ("examples_overlay.dcm", "MR with an overlay plane (60xx)"),
]
QUICK_TS = ["MR_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm", "examples_jpeg2k.dcm"]

MIN_SIDE = 240  # upscale smaller test images (nearest neighbour) so planted text can be legible

# Transfer syntaxes (by UID)
EVRLE, IVRLE, EVRBE, DEFL = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"
RLE = "1.2.840.10008.1.2.5"
JLS, JLS_NEAR = "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS, J2K = "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"
JPEG_BASE, JPEG_EXT, JPEG_LL, JPEG_LL_SV1 = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                                             "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70")
NATIVE = {EVRLE, IVRLE, EVRBE, DEFL}
DCMCJPEG_FLAGS = {JPEG_BASE: "+eb", JPEG_EXT: "+ee", JPEG_LL: "+el", JPEG_LL_SV1: "+e1"}

SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"
SC_MF_BYTE, SC_MF_WORD, SC_MF_RGB = "1.2.840.10008.5.1.4.1.1.7.2", "1.2.840.10008.5.1.4.1.1.7.3", \
    "1.2.840.10008.5.1.4.1.1.7.4"
UID_ROOT = "1.2.826.0.1.3680043.10.1447."  # made-up root for the corpus (never a real org root)


def seed_for(seed: int, family: str, index: int) -> int:
    return int(hashlib.sha256(f"dicom:{seed}:{family}:{index}".encode()).hexdigest()[:15], 16)


def make_uid(*parts) -> str:
    """A deterministic, valid UID (<= 64 chars) from `parts`."""
    n = int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest(), 16)
    return (UID_ROOT + str(n))[:64].rstrip(".")


# --------------------------------------------------------------------------- sources


def deid_data_dir() -> Path | None:
    try:
        import deid_data
    except ImportError:
        return None
    d = Path(deid_data.__file__).resolve().parent / "data" / "ultrasounds"
    return d if d.is_dir() else None


def pydicom_test_file(name: str) -> Path | None:
    import pydicom

    p = Path(pydicom.__file__).resolve().parent / "data" / "test_files" / name
    return p if p.is_file() else None


def load_labels() -> dict:
    return json.loads(LABELS_FILE.read_text())


def ultrasound_bytes(fname: str, member: str | None) -> bytes | None:
    base = deid_data_dir()
    if base is None:
        return None
    path = base / fname
    if member:
        with zipfile.ZipFile(path) as zf:
            return zf.read(member)
    return path.read_bytes()


# --------------------------------------------------------------------------- header planting

PRIVATE_CREATOR = "SCRUBGATE QA"
DETACHED_STUDY = "1.2.840.10008.3.1.2.3.1"


def _charset_for(values: list[str], rng: random.Random) -> tuple[str, str]:
    """(SpecificCharacterSet, python codec) able to hold every value."""
    text = "".join(values)
    if all(ord(c) < 128 for c in text):
        return ("ISO_IR 192", "utf-8") if rng.random() < 0.3 else ("", "ascii")
    try:
        text.encode("latin-1")
        if rng.random() < 0.5:
            return "ISO_IR 100", "latin-1"
    except UnicodeEncodeError:
        pass
    return "ISO_IR 192", "utf-8"


def _lo(s: str, n: int = 64) -> str:
    return s[:n].rstrip()


def plant_header(ds, p: ids.Patient, rng: random.Random, uids: dict, modality: str) -> list[dict]:
    """Put `p`'s identifiers all over the header. Returns [{kind, value, where}]."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    planted: list[dict] = []

    def note(kind, value, where):
        planted.append({"kind": kind, "value": str(value), "where": where})

    other = ids.make_patient(rng, site=p.site)  # other people: the performing physician, the operator
    third = ids.make_patient(rng, site=p.site)
    phys_family = p.physician.split()[-1]
    phys_initial = rng.choice("ABCDEFGHJKLMNPRSTVW")
    referring = f"{phys_family}^{phys_initial}^^Dr"
    performing = f"{other.family}^{other.given}"
    operator = f"{third.family}^{third.given}"
    name_pn = f"{p.family}^{p.given}"
    dob = p.dob.strftime("%Y%m%d")
    study = p.study.strftime("%Y%m%d")
    nat = p.national_formatted(rng)
    nat_label = {"nhs": "NHS", "bsn": "BSN", "rrn": "RRN", "nir": "NIR", "ssn": "SSN", "kvnr": "KVNR"}[p.national_kind]
    dob_text = p.date(p.dob, rng)
    region = rng.choice(render.REGIONS.get(modality, ["ABDOMEN"]))
    texts = [name_pn, p.hospital, p.street, p.city, referring, performing, operator, p.physician]
    cs, codec = _charset_for(texts, rng)
    if cs:
        ds.SpecificCharacterSet = cs
    elif "SpecificCharacterSet" in ds:
        del ds.SpecificCharacterSet

    ds.PatientName = name_pn
    note("person_name", name_pn, "PatientName")
    ds.PatientID = p.mrn
    note("patient_id", p.mrn, "PatientID")
    ds.IssuerOfPatientID = "MRN"
    ds.OtherPatientIDs = p.national
    note("national_id", p.national, "OtherPatientIDs")
    ds.OtherPatientIDsSequence = Sequence([Dataset()])
    ds.OtherPatientIDsSequence[0].PatientID = nat
    ds.OtherPatientIDsSequence[0].TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence[0].IssuerOfPatientID = nat_label
    note("national_id", nat, "OtherPatientIDsSequence[0].PatientID")
    ds.PatientBirthDate = dob
    note("date_of_birth", dob, "PatientBirthDate")
    ds.PatientSex = "M" if p.male else "F"
    ds.PatientAddress = _lo(f"{p.street}, {p.postcode} {p.city}")
    note("address", p.street, "PatientAddress")
    ds.PatientTelephoneNumbers = p.phone
    note("phone", p.phone, "PatientTelephoneNumbers")
    for kw in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        setattr(ds, kw, study)
        note("study_date", study, kw)
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = p.study.strftime("%H%M%S")
    ds.AccessionNumber = _lo(p.accession, 16)
    note("accession", ds.AccessionNumber, "AccessionNumber")
    ds.InstitutionName = _lo(p.hospital)
    note("institution", ds.InstitutionName, "InstitutionName")
    ds.InstitutionAddress = _lo(f"{p.street}, {p.city}")
    note("address", p.street, "InstitutionAddress")
    ds.ReferringPhysicianName = referring
    note("person_name", f"{phys_family}^{phys_initial}", "ReferringPhysicianName")
    ds.PerformingPhysicianName = performing
    note("person_name", performing, "PerformingPhysicianName")
    ds.OperatorsName = operator
    note("person_name", operator, "OperatorsName")
    ds.StudyID = str(rng.randint(1000, 99999))
    # free text carrying the identifiers
    ds.StudyDescription = _lo(f"{region} {p.family} {p.mrn}")
    note("person_name", p.family, "StudyDescription")
    note("patient_id", p.mrn, "StudyDescription")
    ds.SeriesDescription = _lo(f"{region} for {p.given} {p.family}")
    note("person_name", f"{p.given} {p.family}", "SeriesDescription")
    ds.ImageComments = (f"Patient {p.given} {p.family}, MRN {p.mrn}, {nat_label} {nat}, DOB {dob_text}, "
                        f"seen at {p.hospital}.")
    note("person_name", f"{p.given} {p.family}", "ImageComments")
    note("patient_id", p.mrn, "ImageComments")
    note("national_id", nat, "ImageComments")
    note("date_text", dob_text, "ImageComments")
    ds.AdditionalPatientHistory = f"Referred by {p.physician}; contact {p.phone}."
    note("person_name", phys_family, "AdditionalPatientHistory")
    # private tags: a name, an ID, unknown bytes and a private sequence holding a standard element
    block = ds.private_block(0x0009, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", _lo(f"{p.family}^{p.given}"))
    note("person_name", name_pn, "(0009,xx01) private LO")
    block.add_new(0x02, "LO", p.mrn)
    note("patient_id", p.mrn, "(0009,xx02) private LO")
    block.add_new(0x03, "UN", f"{p.given} {p.family} {p.national}".encode(codec, "replace"))
    note("person_name", f"{p.given} {p.family}", "(0009,xx03) private UN")
    note("national_id", p.national, "(0009,xx03) private UN")
    item = Dataset()
    item.PatientName = name_pn
    item.PatientComments = f"DOB {dob_text}"
    block.add_new(0x04, "SQ", Sequence([item]))
    note("person_name", name_pn, "(0009,xx04)[0].PatientName private SQ")
    # nested standard sequences, two levels deep, with the name, IDs and UIDs
    req = Dataset()
    req.RequestedProcedureID = _lo(p.accession, 16)
    req.ScheduledProcedureStepID = _lo(f"S{p.mrn}", 16)
    req.RequestedProcedureDescription = _lo(f"{region} for {p.family}, {p.given}")
    note("person_name", f"{p.family}, {p.given}", "RequestAttributesSequence[0].RequestedProcedureDescription")
    req.ScheduledProcedureStepDescription = _lo(f"{modality} {p.mrn}")
    note("patient_id", p.mrn, "RequestAttributesSequence[0].ScheduledProcedureStepDescription")
    ref = Dataset()
    ref.ReferencedSOPClassUID = DETACHED_STUDY
    ref.ReferencedSOPInstanceUID = uids["study"]
    req.ReferencedStudySequence = Sequence([ref])
    proto = Dataset()
    proto.CodeValue = "P" + str(rng.randint(10, 99))
    proto.CodingSchemeDesignator = "99LOCAL"
    proto.CodeMeaning = _lo(f"Protocol for {p.family}")
    note("person_name", p.family, "RequestAttributesSequence[0].ScheduledProtocolCodeSequence[0].CodeMeaning")
    req.ScheduledProtocolCodeSequence = Sequence([proto])
    ds.RequestAttributesSequence = Sequence([req])
    prior = Dataset()
    prior.ReferencedSOPClassUID = DETACHED_STUDY
    prior.ReferencedSOPInstanceUID = uids["prior_study"]
    ds.ReferencedStudySequence = Sequence([prior])
    # the UIDs
    ds.StudyInstanceUID = uids["study"]
    ds.SeriesInstanceUID = uids["series"]
    ds.SOPInstanceUID = uids["sop"]
    ds.FrameOfReferenceUID = uids["frame"]
    ds.file_meta.MediaStorageSOPInstanceUID = uids["sop"]
    return planted


# --------------------------------------------------------------------------- pixels: drawing


def _fit_font(draw_w: int, lines: list[str], base, size: int):
    fnt = render.same_family(base, size)
    while size > 9 and max(fnt.getlength(t) for t in lines) > draw_w:
        size -= 1
        fnt = render.same_family(fnt, size)
    return fnt


def text_mask(h: int, w: int, lines: list[list], rng: random.Random, position: str, kind: str, size: int,
              margin: int = 6) -> tuple[np.ndarray, list[dict], list[dict], list[int]]:
    """Draw `lines` (each a list of render segments) into an L mask at `position`.

    Returns (mask float32 0..1, identifiers [{kind, text, box}], technical, block box)."""
    img = Image.new("L", (w, h), 0)
    pg = render.Page(img)
    lines = [list(ln) for ln in lines]
    base = render.font(rng, kind, size)
    while True:
        flat = ["  ".join(s[0] for s in ln if s and s[0]) for ln in lines]
        fnt = _fit_font(int(w - 2 * margin), flat, base, size)
        longest = max(range(len(lines)), key=lambda i: len(flat[i]))
        if fnt.size >= min(size, 12) or len(lines[longest]) < 2:
            break
        # too long for the width at a readable size: break the longest line, never between a label and its value
        ln = lines[longest]
        cuts = [i for i in range(1, len(ln)) if not (ln[i - 1][1] == "ctx" and ln[i][1] == "id")] or [len(ln) // 2]
        cut = min(cuts, key=lambda i: abs(i - len(ln) / 2))
        lines[longest:longest + 1] = [ln[:cut], ln[cut:]]
    lh = int(fnt.size * 1.3)
    total_h = lh * len(lines)
    top = position.startswith("top") or position == "top"
    y = margin if top else h - margin - total_h
    anchor = "r" if position.endswith("right") else ("c" if position in ("top", "bottom") else "l")
    x = {"l": margin, "r": w - margin, "c": w / 2}[anchor]
    boxes = []
    for ln in lines:
        boxes.append(pg.line(x, y, ln, fnt, 255, anchor=anchor))
        y += lh
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    mask = np.asarray(img, np.float32) / 255.0
    return mask, pg.identifiers, pg.technical, [x0, y0, x1 - x0, y1 - y0]


def blend(arr: np.ndarray, mask: np.ndarray, value, band: list[int] | None = None, band_value=None) -> np.ndarray:
    """arr (H, W[, 3]) with text `value` painted through `mask`; optional dark band behind it."""
    out = arr.astype(np.float64)
    if band is not None:
        x, y, bw, bh = band
        out[max(0, y):y + bh, max(0, x):x + bw] = band_value
    m = mask[..., None] if out.ndim == 3 else mask
    out = out * (1 - m) + np.asarray(value, np.float64) * m
    return np.rint(out).astype(arr.dtype)


# --------------------------------------------------------------------------- pixels: encoding


def _dtype_for(ds) -> np.dtype:
    bits = int(ds.BitsAllocated)
    signed = int(getattr(ds, "PixelRepresentation", 0)) == 1
    if bits == 8:
        return np.dtype(np.int8 if signed else np.uint8)
    if bits == 16:
        return np.dtype(np.int16 if signed else np.uint16)
    return np.dtype(np.int32 if signed else np.uint32)


def _set_geometry(ds, arr: np.ndarray, frames: int) -> None:
    rows, cols = arr.shape[1:3] if frames > 1 else arr.shape[:2]
    ds.Rows, ds.Columns = int(rows), int(cols)
    if frames > 1 or "NumberOfFrames" in ds:
        ds.NumberOfFrames = frames


def _rgb_to_ybr422_bytes(rgb: np.ndarray) -> bytes:
    """Native YBR_FULL_422: Y0 Y1 Cb Cr per pair of pixels (PS3.3 C.7.6.3.1.2)."""
    from pydicom.pixels import convert_color_space

    ybr = convert_color_space(rgb, "RGB", "YBR_FULL").astype(np.float64)
    if ybr.shape[-2] % 2:
        raise ValueError("YBR_FULL_422 needs an even number of columns")
    y = ybr[..., 0]
    cb = (ybr[..., 0::2, 1] + ybr[..., 1::2, 1]) / 2
    cr = (ybr[..., 0::2, 2] + ybr[..., 1::2, 2]) / 2
    out = np.stack([y[..., 0::2], y[..., 1::2], cb, cr], axis=-1)
    return np.rint(out).clip(0, 255).astype(np.uint8).tobytes()


def _dcmcjpeg(ds, ts: str, photometric_in: str) -> tuple[bool, str]:
    """Re-encode `ds` (native, decoded pixels) with dcmtk's dcmcjpeg; replaces PixelData in place."""
    import pydicom

    exe = shutil.which("dcmcjpeg")
    if not exe:
        return False, "dcmcjpeg not found"
    flags = [DCMCJPEG_FLAGS[ts], "+un"]  # +un: keep the SOP Instance UID
    if ts == JPEG_BASE or ts == JPEG_EXT:
        flags += ["+q", "92"]
        if photometric_in == "YBR_FULL":
            flags += ["+s4"]  # 4:4:4: keeps YBR_FULL
        elif photometric_in == "RGB":
            flags += ["+cr"]  # compress RGB as RGB, as the source did
    with tempfile.TemporaryDirectory(prefix="dcmq-") as tmp:
        src, dst = Path(tmp) / "in.dcm", Path(tmp) / "out.dcm"
        ds.save_as(src, enforce_file_format=True)
        proc = subprocess.run([exe, *flags, str(src), str(dst)], capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or not dst.is_file():
            return False, f"dcmcjpeg failed: {proc.stderr.strip()[:200]}"
        enc = pydicom.dcmread(dst)
    ds.file_meta.TransferSyntaxUID = enc.file_meta.TransferSyntaxUID
    for kw in ("PixelData", "PhotometricInterpretation", "PlanarConfiguration", "BitsStored", "HighBit",
               "LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod"):
        if kw in enc:
            ds[kw] = enc[kw]
        elif kw in ds and kw == "PlanarConfiguration":
            del ds[kw]
    return True, f"dcmcjpeg {' '.join(flags)}"


def _pillow_baseline(ds, arr: np.ndarray, frames: int, photometric_in: str) -> tuple[bool, str]:
    from pydicom.encaps import encapsulate

    if int(ds.BitsAllocated) != 8:
        return False, "Pillow writes 8-bit JPEG only"
    rgb = arr.ndim == (4 if frames > 1 else 3)
    fr = list(arr) if frames > 1 else [arr]
    sub = 0 if photometric_in in ("YBR_FULL", "RGB") else 1
    out = []
    for f in fr:
        b = io.BytesIO()
        Image.fromarray(f, "RGB" if rgb else "L").save(b, "JPEG", quality=92, subsampling=sub)
        out.append(b.getvalue())
    ds.PixelData = encapsulate(out)
    ds["PixelData"].is_undefined_length = True
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEG_BASE
    if rgb:
        ds.PhotometricInterpretation = "YBR_FULL" if sub == 0 else "YBR_FULL_422"
        ds.PlanarConfiguration = 0
    return True, "Pillow JPEG baseline (dcmcjpeg not found)"


def encode_pixels(ds, arr: np.ndarray, ts: str, photometric_in: str) -> tuple[bool, str]:
    """Store `arr` (as pydicom decoded it: RGB for colour) in transfer syntax `ts`.

    Returns (done, how). `photometric_in` is the source's photometric interpretation.
    """
    frames = arr.shape[0] if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1 else 1
    _set_geometry(ds, arr, frames)
    rgb = arr.ndim == (4 if frames > 1 else 3)
    arr = np.ascontiguousarray(arr.astype(_dtype_for(ds)) if not rgb else arr)
    if ts in NATIVE:
        if photometric_in == "YBR_FULL_422" and rgb:
            ds.PixelData = _rgb_to_ybr422_bytes(arr)
            ds.PhotometricInterpretation = "YBR_FULL_422"
            how = "native YBR_FULL_422 (packed by the generator)"
        else:
            if rgb and photometric_in != "RGB":
                ds.PhotometricInterpretation = "RGB"
            if rgb:
                ds.PlanarConfiguration = 0
            data = arr.astype(arr.dtype.newbyteorder(">")) if ts == EVRBE else arr
            ds.PixelData = data.tobytes()
            how = "native"
        ds["PixelData"].VR = "OW" if int(ds.BitsAllocated) > 8 else "OB"
        ds.file_meta.TransferSyntaxUID = ts
        return True, how
    # compressed: start from a native little-endian copy
    ds.file_meta.TransferSyntaxUID = EVRLE
    if rgb:
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
    ds.PixelData = arr.tobytes()
    ds["PixelData"].VR = "OW" if int(ds.BitsAllocated) > 8 else "OB"
    if ts in (RLE, JLS, JLS_NEAR, J2K_LOSSLESS, J2K):
        kw: dict = {}
        if ts == JLS_NEAR:
            kw["jls_error"] = 2
        if ts == J2K:
            kw["j2k_cr"] = [8]
        if ts == RLE:
            kw["encoding_plugin"] = "pydicom"
        ds.compress(ts, arr, **kw)
        return True, f"pydicom {ds.file_meta.TransferSyntaxUID.name}"
    if ts in DCMCJPEG_FLAGS:
        ok, how = _dcmcjpeg(ds, ts, photometric_in)
        if ok:
            return ok, how
        if ts == JPEG_BASE:
            return _pillow_baseline(ds, arr, frames, photometric_in)
        return False, how
    return False, f"no encoder for {ts}"


# --------------------------------------------------------------------------- family: ultrasound_real


def build_ultrasounds(out: Path, quick: bool) -> list[dict]:
    import pydicom

    labels = load_labels()["ultrasounds"]
    recs = []
    for fname, member in ULTRASOUNDS:
        if quick and fname not in QUICK_ULTRASOUNDS:
            continue
        data = ultrasound_bytes(fname, member)
        if data is None:
            print("dicom_cases: deid-data is not installed; ultrasounds skipped", file=sys.stderr)
            return []
        name = member or fname
        rel = f"ultrasound_real/{name}"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        lab = labels[name]
        recs.append({
            "file": rel, "family": "ultrasound_real", "source": f"deid-data:{fname}" + (f"!{member}" if member else ""),
            **_geometry(ds),
            "header_planted": [],  # the header's own values are read at scoring time
            "pixels_planted": [{**i, "frames": "all"} for i in lab["burned_in"]],
            "technical": [{"text": t, "frames": "all"} for t in lab.get("technical", [])],
            "pixel_note": lab.get("note", ""),
            "label_source": "dicom_labels.json (RapidOCR on frame 0, checked by eye)",
            "study_key": f"us:{ds.StudyInstanceUID}", "series_key": f"us:{ds.SeriesInstanceUID}",
        })
    return recs


def _geometry(ds) -> dict:
    return {"transfer_syntax": str(ds.file_meta.TransferSyntaxUID),
            "ts_name": ds.file_meta.TransferSyntaxUID.name,
            "photometric": str(ds.get("PhotometricInterpretation", "")), "rows": int(ds.Rows),
            "columns": int(ds.Columns), "frames": int(ds.get("NumberOfFrames", 1) or 1),
            "bits_allocated": int(ds.BitsAllocated), "sop_class": str(ds.get("SOPClassUID", "")),
            "modality": str(ds.get("Modality", "")), "preamble": _preamble_kind(ds)}


def _preamble_kind(ds) -> str:
    """pydicom's MR_small* carry a TIFF header in the preamble (dual-personality files): sniff by DICM."""
    pre = bytes(getattr(ds, "preamble", None) or b"")
    if pre[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return "other" if any(pre) else "zeros"


# --------------------------------------------------------------------------- family: transfer_syntax


def _display_value(ds, arr: np.ndarray):
    """The stored value that displays brightest (what burned-in text is drawn in)."""
    pi = str(ds.PhotometricInterpretation)
    if pi == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        lut = apply_color_lut(np.arange(2 ** int(ds.BitsStored), dtype=np.uint16 if ds.BitsStored > 8
                                        else np.uint8), ds)
        return int(np.argmax(lut.astype(np.float64).sum(axis=-1)))
    if arr.ndim >= 3 and arr.shape[-1] == 3:
        top = 255 if arr.dtype == np.uint8 else int(arr.max())
        return (top, top, top)
    if pi == "MONOCHROME1":
        return int(arr.min())
    return int(arr.max())


def _upscale(arr: np.ndarray, k: int, frames: int) -> np.ndarray:
    if k <= 1:
        return arr
    ax = (1, 2) if frames > 1 else (0, 1)
    return arr.repeat(k, axis=ax[0]).repeat(k, axis=ax[1])


def build_transfer_syntax(out: Path, seed: int, quick: bool) -> list[dict]:
    import pydicom

    recs = []
    for index, (fname, what) in enumerate(TS_CASES):
        if quick and fname not in QUICK_TS:
            continue
        src = pydicom_test_file(fname)
        if src is None:
            print(f"dicom_cases: pydicom test file {fname} missing; skipped", file=sys.stderr)
            continue
        rng = random.Random(seed_for(seed, "transfer_syntax", index))
        ds = pydicom.dcmread(src)
        ts = str(ds.file_meta.TransferSyntaxUID)
        photometric_in = str(ds.PhotometricInterpretation)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        p = ids.make_patient(rng, site="uk")  # NHS numbers with a valid check digit
        modality = str(ds.get("Modality", "OT")) or "OT"
        study = make_uid(seed, "ts", index, "study")
        uids = {"study": study, "series": make_uid(seed, "ts", index, "series"),
                "sop": make_uid(seed, "ts", index, "sop"), "frame": make_uid(seed, "ts", index, "frame"),
                "prior_study": make_uid(seed, "ts", index, "prior")}
        planted = plant_header(ds, p, rng, uids, modality)
        arr = ds.pixel_array.copy()
        h, w = (arr.shape[1:3] if frames > 1 else arr.shape[:2])
        k = max(1, math.ceil(MIN_SIDE / min(h, w)))
        arr = _upscale(arr, k, frames)
        if k > 1:
            h, w = h * k, w * k
            if "PixelSpacing" in ds:
                ds.PixelSpacing = [float(v) / k for v in ds.PixelSpacing]
        # burned-in: NAME^SURNAME, an NHS-valid number, a DOB, top left
        name = f"{p.family.upper()}^{p.given.upper()}"
        nhs = f"{p.national[:3]} {p.national[3:6]} {p.national[6:]}"
        dobs = p.dob.strftime("%d/%m/%Y")
        lines = [[(name, "id", {"kind": "person_name"})],
                 [("NHS", "ctx"), (nhs, "id", {"kind": "national_id"})],
                 [("DOB", "ctx"), (dobs, "id", {"kind": "date_of_birth"})]]
        mask, idents, _, block = text_mask(h, w, lines, rng, "top-left", rng.choice(["sans", "mono", "sans_bold"]),
                                           max(11, min(24, int(min(h, w) / 14))))
        value = _display_value(ds, arr)
        band = [block[0] - 3, block[1] - 3, block[2] + 6, block[3] + 6]
        dark = (0, 0, 0) if isinstance(value, tuple) else (int(arr.max()) if photometric_in == "MONOCHROME1"
                                                             else int(arr.min()))
        if photometric_in == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut

            lut = apply_color_lut(np.arange(256, dtype=np.uint8), ds).astype(np.float64).sum(axis=-1)
            dark = int(np.argmin(lut))
            painted = arr.copy()
            bx, by, bw, bh = band
            painted[max(0, by):by + bh, max(0, bx):bx + bw] = dark
            painted[mask > 0.5] = value
        elif frames > 1:
            painted = np.stack([blend(f, mask, value, band, dark) for f in arr])
        else:
            painted = blend(arr, mask, value, band, dark)
        rel = f"transfer_syntax/{Path(fname).stem}.dcm"
        try:
            done, how = encode_pixels(ds, painted, ts, photometric_in)
        except Exception as e:  # noqa: BLE001 -- an encoder plugin that chokes: keep the file, header only
            done, how = False, f"encoder failed: {type(e).__name__}: {str(e)[:120]}"
        note = ""
        if not done:
            # keep the original pixels (and size) so the file still stands for its transfer syntax
            ds = pydicom.dcmread(src)
            planted = plant_header(ds, p, random.Random(seed_for(seed, "transfer_syntax", index)), uids, modality)
            idents, k = [], 1
            note = f"pixels not planted ({how}); header only"
        elif k > 1:
            note = f"upscaled x{k} (nearest neighbour) to fit legible text"
        if done and str(ds.file_meta.TransferSyntaxUID) != ts:
            note += f"; stored as {ds.file_meta.TransferSyntaxUID.name}, not {pydicom.uid.UID(ts).name}"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(out / rel, enforce_file_format=True)
        recs.append({
            "file": rel, "family": "transfer_syntax", "source": f"pydicom:{fname}", "what": what,
            **_geometry(ds),
            "header_planted": planted,
            "pixels_planted": [{"kind": i["kind"], "text": i["text"], "box": i["box"], "frames": "all"}
                               for i in idents],
            "technical": [],
            "pixel_note": note, "pixel_encoder": how if done else None, "upscale": k,
            "label_source": "generator",
            "study_key": f"ts:{index}", "series_key": f"ts:{index}",
        })
    return recs


# --------------------------------------------------------------------------- family: generated

GEN_KINDS = ["grey8", "cine_grey", "rgb", "mono1", "grey16", "cine_rgb", "rgb", "grey16"]
GEN_TS = {
    "grey8": [EVRLE, RLE, JPEG_BASE, IVRLE, J2K_LOSSLESS],
    "grey16": [EVRLE, JLS, RLE, J2K_LOSSLESS],
    "mono1": [EVRLE, RLE, IVRLE],
    "rgb": [EVRLE, JPEG_BASE, RLE, JLS, J2K_LOSSLESS],
    "cine_grey": [EVRLE, RLE, JPEG_BASE],
    "cine_rgb": [EVRLE, JPEG_BASE, RLE],
}
POSITIONS = ["top", "bottom", "top-left", "top-right", "bottom-left", "bottom-right"]
SITES = ["uk", "nl", "de", "fr", "be_fr", "us", "be"]
FONT_KINDS = ["sans", "mono", "condensed", "serif", "sans_bold"]
TEXT_COLOURS = [(255, 255, 255), (235, 220, 90), (140, 220, 235), (120, 230, 120), (230, 230, 230)]


def _banner_lines(rng: random.Random, p: ids.Patient, position: str) -> list[list]:
    """Segments for a banner (one or two long lines) or a corner block (three to five short lines)."""
    name = render.name_segment(rng, p)
    ident = render.id_segment(rng, p)
    dob = render.dob_segment(rng, p)
    study = render.study_segment(rng, p)
    hosp = render.hospital_segment(rng, p)
    extra = rng.choice([render.accession_segment(rng, p), render.physician_segment(rng, p),
                        render.id_segment(rng, p, "national" if ident[-1][2]["kind"] == "mrn" else "mrn")])
    if position in ("top", "bottom"):
        if rng.random() < 0.5:
            return [name + ident + dob, hosp + study]
        return [name + ident + dob + study]
    lines = [name, ident, dob, study, hosp, extra]
    return lines[:rng.randint(3, 6)]


def _tech_lines(rng: random.Random, modality: str) -> list[list]:
    return [[(t, "tech")] for t in render.pick_tech(rng, modality if modality in render.TECH else "CT", 3)]


def _background(nrng: np.random.Generator, modality: str, w: int, h: int) -> np.ndarray:
    return render.anatomy(nrng, modality, w, h)


def build_generated(out: Path, seed: int, count: int) -> list[dict]:
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset

    recs = []
    for index in range(count):
        study_no = index // 2
        srng = random.Random(seed_for(seed, "generated-study", study_no))
        p = ids.make_patient(srng, site=SITES[study_no % len(SITES)])
        modality = srng.choice(["CT", "MR", "US", "XR"])
        rng = random.Random(seed_for(seed, "generated", index))
        nrng = np.random.default_rng(seed_for(seed, "generated-np", index))
        kind = GEN_KINDS[index % len(GEN_KINDS)]
        if kind.startswith("cine") or kind == "rgb":
            modality = "US" if rng.random() < 0.7 else modality
        ts = GEN_TS[kind][(index + index // len(GEN_KINDS)) % len(GEN_TS[kind])]
        position = POSITIONS[(index + index // len(POSITIONS)) % len(POSITIONS)]
        cine = kind.startswith("cine")
        w, h = rng.choice([(640, 480), (800, 600), (512, 512)] if cine else
                          [(512, 512), (640, 480), (800, 600), (1024, 768), (768, 1024)])
        nframes = rng.randint(6, 8) if cine else 1
        font_kind = FONT_KINDS[index % len(FONT_KINDS)]
        size = int(min(28, max(12, w / 640 * rng.uniform(13, 20))))
        lines = _banner_lines(rng, p, position)
        mask, idents, _, block = text_mask(h, w, lines, rng, position, font_kind, size)
        tpos = {"top-left": "bottom-right", "top-right": "bottom-left", "bottom-left": "top-right",
                "bottom-right": "top-left", "top": "bottom-right", "bottom": "top-right"}[position]
        tmask, _, techs, tblock = text_mask(h, w, _tech_lines(rng, modality), rng, tpos, font_kind,
                                            max(11, size - 2))
        band = [block[0] - 4, block[1] - 4, block[2] + 8, block[3] + 8] if (
            modality == "XR" or rng.random() < 0.4) else None
        tband = [tblock[0] - 4, tblock[1] - 4, tblock[2] + 8, tblock[3] + 8] if modality == "XR" else None
        colour = rng.choice(TEXT_COLOURS)
        bits = rng.choice([12, 16]) if kind == "grey16" else 8
        frames = []
        for f in range(nframes):
            g = _background(nrng, modality, w, h)
            if kind in ("rgb", "cine_rgb"):
                a = np.repeat(g[..., None], 3, axis=-1)
                if modality == "US" and rng.random() < 0.6:
                    render.doppler_overlay(a, nrng)
                a = blend(a, mask, colour, band, (0, 0, 0))
                a = blend(a, tmask, colour, tband, (0, 0, 0))
            elif kind == "grey16":
                top = 2 ** bits - 1
                a = (g.astype(np.float64) / 255 * top * 0.85).astype(np.uint16)
                a = blend(a, mask, top, band, 0)
                a = blend(a, tmask, top, tband, 0)
            else:
                a = blend(g, mask, 255, band, 0)
                a = blend(a, tmask, 255, tband, 0)
                if kind == "mono1":
                    a = 255 - a  # stored inverted: displays as white text on black
            frames.append(a)
        arr = np.stack(frames) if cine else frames[0]
        rgb = kind in ("rgb", "cine_rgb")
        bits_stored = bits
        meta = FileMetaDataset()
        sop_class = (SC_MF_RGB if rgb else SC_MF_BYTE) if cine else SC_IMAGE
        meta.MediaStorageSOPClassUID = sop_class
        meta.TransferSyntaxUID = EVRLE
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = sop_class
        ds.Modality = modality if not cine else "US" if modality == "US" else "OT"
        ds.ConversionType = "WSD"
        ds.Manufacturer = "ScrubgateQA"
        ds.SeriesNumber = 1 + (index % 2 if rng.random() < 0.5 else 0)
        ds.InstanceNumber = 1 + index % 2
        ds.PatientOrientation = ""
        ds.SamplesPerPixel = 3 if rgb else 1
        ds.PhotometricInterpretation = "RGB" if rgb else ("MONOCHROME1" if kind == "mono1" else "MONOCHROME2")
        if rgb:
            ds.PlanarConfiguration = 0
        ds.BitsAllocated = 16 if kind == "grey16" else 8
        ds.BitsStored = bits_stored
        ds.HighBit = bits_stored - 1
        ds.PixelRepresentation = 0
        ds.Rows, ds.Columns = h, w
        ds.BurnedInAnnotation = "YES"
        if cine:
            ds.NumberOfFrames = nframes
            ds.FrameTime = 40.0
            ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime")
        if kind == "grey16":
            ds.WindowCenter = int(2 ** bits_stored / 2)
            ds.WindowWidth = int(2 ** bits_stored)
        series_no = int(ds.SeriesNumber)
        uids = {"study": make_uid(seed, "gen-study", study_no), "series": make_uid(seed, "gen-series", study_no,
                                                                                    series_no),
                "sop": make_uid(seed, "gen-sop", index), "frame": make_uid(seed, "gen-frame", study_no),
                "prior_study": make_uid(seed, "gen-prior", study_no)}
        hrng = random.Random(seed_for(seed, "generated-header", index))
        planted = plant_header(ds, p, hrng, uids, modality)
        try:
            done, how = encode_pixels(ds, arr, ts, ds.PhotometricInterpretation)
        except Exception as e:  # noqa: BLE001 -- an encoder plugin that chokes: store uncompressed
            done, how = False, f"encoder failed: {type(e).__name__}: {str(e)[:120]}"
        note = "" if done else f"stored as Explicit VR Little Endian ({how})"
        if not done:
            encode_pixels(ds, arr, EVRLE, ds.PhotometricInterpretation)
        rel = f"generated/g{index:03d}-{kind}.dcm"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(out / rel, enforce_file_format=True)
        recs.append({
            "file": rel, "family": "generated", "source": "generated", **_geometry(ds),
            "header_planted": planted,
            "pixels_planted": [{"kind": i["kind"], "text": i["text"], "box": i["box"], "frames": "all"}
                               for i in idents],
            "technical": [{"text": t["text"], "box": t["box"], "frames": "all"} for t in techs],
            "pixel_note": note, "pixel_encoder": how,
            "label_source": "generator",
            "study_key": f"gen:{study_no}", "series_key": f"gen:{study_no}:{series_no}",
            "params": {"kind": kind, "position": position, "font": font_kind, "size": size, "site": p.site,
                       "name_source": p.name_source, "charset": str(ds.get("SpecificCharacterSet", "")),
                       "band": band is not None},
        })
    return recs


# --------------------------------------------------------------------------- driver


def build(out: Path, seed: int = 1, generated: int = DEFAULT_GENERATED, quick: bool = False,
          progress: bool = True) -> dict:
    """Write the corpus into `out` (cases.jsonl, corpus.json and the files). Returns the manifest."""
    t0 = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    recs = []
    for name, fn in (("ultrasound_real", lambda: build_ultrasounds(out, quick)),
                     ("transfer_syntax", lambda: build_transfer_syntax(out, seed, quick)),
                     ("generated", lambda: build_generated(out, seed, generated))):
        t = time.monotonic()
        got = fn()
        recs += got
        if progress:
            print(f"dicom_cases: {name}: {len(got)} files in {time.monotonic() - t:.1f} s", file=sys.stderr)
    (out / "cases.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
    manifest = {"generator_version": GENERATOR_VERSION, "seed": seed, "generated": generated, "quick": quick,
                "cases": len(recs), "families": sorted({r["family"] for r in recs}),
                "dcmcjpeg": shutil.which("dcmcjpeg") is not None,
                "seconds": round(time.monotonic() - t0, 1)}
    (out / "corpus.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--generated", type=int, default=None)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    n = a.generated if a.generated is not None else (QUICK_GENERATED if a.quick else DEFAULT_GENERATED)
    m = build(a.out, a.seed, n, a.quick)
    print(json.dumps(m, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
