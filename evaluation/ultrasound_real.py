"""Real ultrasounds with burned-in PHI, from the `deid-data` package, auto-labelled.

deid-data does not say where its PHI is burned in, so labels come from
RapidOCR (the judge) on the crisp rendering plus a small rule written after
looking at the five images: within an OCR line, dates, runs of 5+ digits and
runs of capitalised words (a name when the line has a name shape -- CAPS with
`,` or `^`, or the ZZZ/TEST test-patient prefixes -- else an institution when
the line has an institution word) are identifier parts, each boxed by its
character offsets. Times alone, operator initials and low-confidence or
one-character reads (icons) are context; everything else is technical. These labels
are weaker than the synthetic ones (`label_source: "rapidocr-auto"`): whatever
the judge cannot read is not labelled at all.
"""

from __future__ import annotations

import io
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

SOURCES = [("GREYSCALE_IMAGE.dcm", None), ("RGB_IMAGE.dcm", None), ("ultrasound-multiframe.dcm", None),
           ("GREYSCALE_CINE.zip", "GREYSCALE_CINE.dcm"), ("RGB_CINE.zip", "RGB_CINE.dcm")]

DATE = re.compile(r"\b(\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{1,2}-[A-Za-z]{3}-\d{2,4}|\d{4}-\d{2}-\d{2}|(19|20)\d{6})\b")
DIGITS = re.compile(r"\d{5,}")
NAME = re.compile(r"([A-Z]{2,}\s*[,^]|\^|\bZZZ|\bTEST\b)")
TIME = re.compile(r"^\s*\d{1,2}:\d{2}(:\d{2})?\s*([AP]M)?\s*$", re.I)
INSTITUTION = re.compile(r"(CLINIC|HOSPITAL|MEDICINE|MEDICAL|CENTER|CENTRE|INFIRMARY|ZIEKENHUIS|KLINIKUM|\bCHU\b|"
                         r"\bUZ\b|CCHS|AGMC)", re.I)


def data_dir() -> Path | None:
    try:
        import deid_data
    except ImportError:
        return None
    d = Path(deid_data.__file__).resolve().parent / "data" / "ultrasounds"
    return d if d.is_dir() else None


def load_sources() -> list[tuple[str, Image.Image]]:
    """First frame of each source as RGB; sources pydicom cannot decode are skipped with a message."""
    import pydicom

    base = data_dir()
    if base is None:
        print("ultrasound_real: deid-data is not installed; family skipped", file=sys.stderr)
        return []
    out = []
    for fname, member in SOURCES:
        path = base / fname
        try:
            if member:
                with zipfile.ZipFile(path) as zf:
                    ds = pydicom.dcmread(io.BytesIO(zf.read(member)))
            else:
                ds = pydicom.dcmread(path)
            a = ds.pixel_array
        except Exception as e:  # e.g. a compressed transfer syntax without its plugin
            print(f"ultrasound_real: skipping {fname}: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            a = a[0]
        if a.dtype != np.uint8:
            a = (255 * (a - a.min()) / max(1, a.max() - a.min())).astype(np.uint8)
        if ds.get("PhotometricInterpretation") == "MONOCHROME1":
            a = 255 - a
        img = Image.fromarray(a)
        out.append((Path(member or fname).stem, img.convert("RGB")))
    return out


CAPS = re.compile(r"^[A-Z]{2,}[A-Za-z'.,^…]*$|^[A-Z][,^]$|^\^+$")


def _token_class(tok: str) -> str | None:
    if DATE.fullmatch(tok.strip(",")):
        return "date"
    if re.fullmatch(r"\d{5,}", tok):
        return "digits"
    if tok.upper() in ("DOB:", "DOB", "M", "F", "AM", "PM") or TIME.match(tok):
        return None
    if CAPS.match(tok) and (len(tok) >= 2 or tok == "^"):
        return "caps"
    return None


def split_parts(text: str, box) -> list[tuple[str, str, list[int]]]:
    """Identifier parts of one OCR line: [(kind, text, box)], boxes by character position.

    A line such as `ZZZ TEST PATIENTFI... 00079241539` holds a name *and* an ID;
    labelling them apart keeps a sanitiser that hides one and not the other
    from passing. Boxes are proportional to character offsets: approximate.
    """
    if TIME.match(text):
        return []
    institution = bool(INSTITUTION.search(text))
    dob = bool(re.search(r"\bDOB\b", text, re.I))
    groups: list[list] = []  # [class, start, end]
    for m in re.finditer(r"\S+", text):
        cls = _token_class(m.group())
        if cls is None:
            continue
        if groups and groups[-1][0] == cls == "caps" and text[groups[-1][2]:m.start()].strip() == "":
            groups[-1][2] = m.end()
        else:
            groups.append([cls, m.start(), m.end()])
    x, y, w, h = box
    n = max(1, len(text))
    parts = []
    for cls, a, b in groups:
        kind = {"date": "date_of_birth" if dob else "date", "digits": "patient_id",
                "caps": "institution" if institution and not NAME.search(text[a:b]) else "person_name"}[cls]
        if cls == "caps" and kind == "person_name" and not NAME.search(text) and not institution:
            continue  # capitals alone (e.g. a vendor logo) are not a name
        parts.append((kind, text[a:b], [int(x + w * a / n), y, max(1, int(w * (b - a) / n)), h]))
    if institution and all(k == "institution" for k, _, _ in parts):
        parts = [("institution", text, list(box))]  # "AGMC Sports Medicine": the whole line
    return parts


def auto_label(img: Image.Image) -> dict:
    from .common import run_ocr

    labels = {"identifiers": [], "technical": [], "context": [], "identifier_lines": []}
    for line in run_ocr(img):
        text, box = line["text"], line["box"]
        parts = split_parts(text, box)
        if parts:
            for kind, part, pbox in parts:
                labels["identifiers"].append({"kind": kind, "text": part, "box": pbox,
                                              "label_source": "rapidocr-auto"})
            labels["identifier_lines"].append(box)
        elif (TIME.match(text) or (box[1] < 0.07 * img.size[1] and re.fullmatch(r"[A-Z]{1,3}", text.strip()))
              or len(re.sub(r"[^0-9A-Za-z]", "", text)) < 2 or line["score"] < 0.8):
            labels["context"].append({"text": text, "box": box})  # times, initials, icons read as letters
        else:
            labels["technical"].append({"text": text, "box": box, "role": "technical"})
    return labels
