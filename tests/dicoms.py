"""DICOM test material and outside judges: planted studies, an element walker, dcmtk.

`secondary_capture()` builds a real Secondary Capture file with identifiers
planted in the header (names, IDs, dates, free text, a private tag, a nested
sequence) and burned into the pixels. `leaks()` walks every element of an
output, sequences and file meta included, for those values. dcmtk's
`dcmdump` and `dcm2pnm` are the independent judges of validity.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from pictures import font

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
    """An 8-bit greyscale SC image with a patient banner burned in and PHI all over the header."""
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


def walk_text(ds: Dataset) -> list[str]:
    """Every element value as text, at every depth, file meta included; bytes decoded
    leniently. Only the image's own Pixel Data is skipped (an icon's is not)."""
    out: list[str] = []

    def visit(d: Dataset, top: bool) -> None:
        for elem in d:
            if elem.VR == "SQ":
                for item in elem.value:
                    visit(item, False)
            elif not (top and elem.tag == 0x7FE00010):
                v = elem.value
                if isinstance(v, (bytes, bytearray)):
                    out.append(bytes(v).decode("latin-1", "replace"))
                elif isinstance(v, (list, tuple, pydicom.multival.MultiValue)):
                    out.extend(str(x) for x in v)
                else:
                    out.append(str(v))

    if getattr(ds, "file_meta", None) is not None:
        visit(ds.file_meta, False)
    visit(ds, True)
    return out


def leaks(data: bytes, planted=PLANTED) -> list[str]:
    """The planted values still present in a DICOM file's elements or raw bytes."""
    ds = pydicom.dcmread(io.BytesIO(data))
    text = "\n".join(walk_text(ds)).upper()
    raw = data.upper()
    return [p for p in planted if p.upper() in text or p.upper().encode() in raw]


def dcmdump_ok(data: bytes, tmp: Path) -> tuple[bool, str]:
    """dcmtk reads the file without an error (exit 0, no E: lines)."""
    path = tmp / "judge.dcm"
    path.write_bytes(data)
    r = subprocess.run([shutil.which("dcmdump") or "dcmdump", "+E", str(path)], capture_output=True, text=True,
                       timeout=60)
    problems = [ln for ln in (r.stderr + r.stdout).splitlines() if ln.startswith(("E:", "F:"))]
    return r.returncode == 0 and not problems, "\n".join(problems) or r.stderr[-500:]


def frame_image(data: bytes, index: int = 0) -> Image.Image:
    """One decoded frame as an 8-bit picture for the OCR judge."""
    ds = pydicom.dcmread(io.BytesIO(data))
    arr = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[index]
    arr = arr.astype(np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    arr = (arr - lo) * (255.0 / (hi - lo or 1.0))
    return Image.fromarray(arr.astype(np.uint8))
