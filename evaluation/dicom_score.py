#!/usr/bin/env python3
"""Score a DICOM sanitiser against the DICOM corpus (see dicom_cases.py).

    .venv/bin/python -m evaluation.dicom_score CORPUS_DIR [--null] [--json OUT]

For every file: sanitise it (timed), then judge the output with tools other
than the sanitiser's own:

- header leaks: every planted value (and the input header's own identifying
  values) is searched for in every element of the output -- file meta,
  sequences at any depth, private and unknown elements decoded from their
  bytes -- and in the raw bytes outside the pixel data;
- UIDs: Study/Series/SOP Instance and Media Storage SOP Instance UIDs are
  new, valid and consistent, no original instance UID is left anywhere, and
  the files of one study (series) share their new Study (Series) UID;
- burned-in text: frames 0, middle and last of the input and the output are
  decoded with pydicom, brought to 8 bits and read by RapidOCR through
  tests/judges.py (whole frame and quarters) and by EasyOCR (whole frame);
  a planted identifier legible to either judge before and after leaks;
- validity: `dcmdump` exits 0 without "E:" lines, and pydicom decodes every frame;
- delivery: refusals are counted with their reason.

Results carry kinds, tag paths and counts, never a planted value.
`--null` scores the inputs themselves as outputs: a sanitiser that does
nothing must score badly (the harness's self-check).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
import zlib
from collections import Counter, defaultdict
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent

import numpy as np
from PIL import Image

from . import common
from .common import REPO

JUDGE_VERSION = "judges.read_text-rapidocr-8bit-p0.5-p99.9-min640-1"
TEST_SECRET = b"scrubgate-quality-dicom-test-secret"
JUDGE_MIN_SIDE = 640  # frames smaller than this are upscaled before OCR (a viewer would zoom)
LEGIBLE = 0.8  # the judge's similarity threshold (tests/judges.py)
MIN_VALUE = 4  # values with fewer alphanumerics are not searched (PatientID "1" is everywhere)
MIN_ALNUM = 6  # IDs are also matched with separators stripped when at least this long
# Name components never searched alone: titles and words that occur in ordinary text
NAME_STOP = {"dr", "drs", "md", "mr", "mrs", "ms", "miss", "prof", "med", "pr", "the", "and", "van", "von",
             "der", "den", "del", "des", "de", "la", "le", "test", "new"}
ID_KINDS = {"patient_id", "national_id", "accession", "phone", "mrn"}
DATE_KINDS = {"date_of_birth", "study_date"}
NAME_KINDS = {"person_name", "physician_name"}

# Identifying values read from the input's own header (any depth), by keyword
HEADER_KEYS = {
    "PatientName": "person_name", "OtherPatientNames": "person_name", "PatientBirthName": "person_name",
    "PatientMotherBirthName": "person_name", "ReferringPhysicianName": "person_name",
    "PerformingPhysicianName": "person_name", "OperatorsName": "person_name",
    "NameOfPhysiciansReadingStudy": "person_name", "PhysiciansOfRecord": "person_name",
    "RequestingPhysician": "person_name", "ResponsiblePerson": "person_name",
    "PatientID": "patient_id", "OtherPatientIDs": "patient_id", "AccessionNumber": "accession",
    "PatientTelephoneNumbers": "phone", "PatientAddress": "address", "InstitutionName": "institution",
    "InstitutionAddress": "address", "PatientBirthDate": "date_of_birth", "StudyDate": "study_date",
    "SeriesDate": "study_date", "AcquisitionDate": "study_date", "ContentDate": "study_date",
}
CHECKED_UIDS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "MediaStorageSOPInstanceUID"]
NOT_INSTANCE_UIDS = {"TransferSyntaxUID", "ImplementationClassUID", "CodingSchemeUID",
                     "PrivateInformationCreatorUID", "ContextGroupExtensionCreatorUID", "MappingResourceUID"}


# --------------------------------------------------------------------------- the sanitiser


@dataclasses.dataclass
class Outcome:
    output: bytes | None
    refused: str | None = None
    detail: str = ""
    seconds: float = 0.0
    route: str = ""
    findings: int = 0
    actions: list = dataclasses.field(default_factory=list)


def _engine_import():
    import scrubgate.engine as eng

    return eng


class Sanitizer:
    """`scrubgate.engine.sanitize(data)`, or the DICOM module directly while the engine does not route DICOM."""

    name = "engine"

    def __init__(self):
        self.route_note = ""

    def __call__(self, data: bytes) -> Outcome:
        t0 = time.perf_counter()
        try:
            eng = _engine_import()
        except Exception as e:  # noqa: BLE001
            return Outcome(None, "engine_unavailable", f"scrubgate.engine does not import ({type(e).__name__})",
                           time.perf_counter() - t0, "none")
        v = eng.sanitize(data)
        route = "engine.sanitize"
        if v.refused == "unsupported_format":
            t0 = time.perf_counter()
            route = "engine.dicom.sanitize (fallback: engine.sanitize does not route DICOM yet)"
            try:
                from scrubgate.engine.dicom import DicomOptions, sanitize as dicom_sanitize
                from scrubgate.engine.scanner import PixelOptions
                from scrubgate.engine.limits import EngineLimits
                from scrubgate.engine.verdict import Refused
            except Exception as e:  # noqa: BLE001
                return Outcome(None, "engine_unavailable",
                               f"scrubgate.engine.dicom does not import ({type(e).__name__}: {e})",
                               time.perf_counter() - t0, route)
            try:
                v = dicom_sanitize(data, DicomOptions(secret=TEST_SECRET), PixelOptions(), EngineLimits())
            except Refused as e:
                return Outcome(None, e.reason, e.detail, time.perf_counter() - t0, route)
            except Exception as e:  # noqa: BLE001 -- a bug in the engine: counted as a refusal, not a crash
                return Outcome(None, "engine_error", f"{type(e).__name__}: {str(e)[:200]}",
                               time.perf_counter() - t0, route)
        secs = time.perf_counter() - t0
        self.route_note = route
        return Outcome(v.output if not v.refused else None, v.refused, v.detail, secs, route,
                       len(v.findings), list(v.actions))


class NullSanitizer:
    """Passes every file through unchanged: what the scorer must flag."""

    name = "null"
    route_note = "null (input returned unchanged)"

    def __call__(self, data: bytes) -> Outcome:
        return Outcome(data, None, "", 0.0, "null")


# --------------------------------------------------------------------------- text folding and search


def fold(s: str) -> str:
    s = unicodedata.normalize("NFKD", s.replace("ß", "ss"))
    return "".join(c for c in s if not unicodedata.combining(c)).casefold()


def alnum(s: str) -> str:
    return re.sub(r"[^0-9a-z]", "", fold(s))


@dataclasses.dataclass
class Needle:
    kind: str
    value: str  # never reported
    where: list  # where it was planted (tag paths)
    patterns: list  # [(label, compiled regex on folded text)]
    alnum: str | None  # matched against alnum-only element text (IDs)


def _word(s: str) -> re.Pattern:
    return re.compile(r"(?<![0-9a-z])" + re.escape(s) + r"(?![0-9a-z])")


def make_needle(kind: str, value: str, where: list) -> Needle | None:
    v = fold(value).strip()
    if len(alnum(v)) < MIN_VALUE:
        return None
    pats = []
    spaced = re.sub(r"[\s^]+", " ", v).strip(" ^")
    pats.append(("full", re.compile(re.escape(spaced).replace(r"\ ", r"[\s^,]*"))))
    if kind in NAME_KINDS:
        comps = [c for c in re.split(r"[\s^,.'=\-]+", v) if len(c) >= 3 and c not in NAME_STOP]
        for c in dict.fromkeys(comps):
            pats.append(("component", _word(c)))
        parts = [c for c in v.split("^") if c.strip()]
        if len(parts) >= 2:  # DOE^JOHN also as "John Doe" and "Doe, John"
            pats.append(("full", re.compile(re.escape(parts[1].strip()) + r"[\s,]+" + re.escape(parts[0].strip()))))
    an = None
    if kind in ID_KINDS or kind == "date_text":
        a = alnum(v)
        if len(a) >= MIN_ALNUM:
            an = a
        for ymd in (_as_yyyymmdd(value) if kind == "date_text" else []):
            pats.append(("as_date", re.compile(re.escape(ymd))))
    if kind in DATE_KINDS and re.fullmatch(r"\d{8}", v):
        pats = [("date", re.compile(re.escape(v)))]
    return Needle(kind, value, where, pats, an)


_MONTHS = {m: i + 1 for names in (
    "jan feb mar apr may jun jul aug sep oct nov dec",
    "jan feb mrt apr mei jun jul aug sep okt nov dec",
    "jan feb mär apr mai jun jul aug sep okt nov dez",
    "janv févr mars avr mai juin juil août sept oct nov déc") for i, m in enumerate(names.split())}


def _as_yyyymmdd(s: str) -> list[str]:
    """A planted free-text date (31/05/1930, 05/31/1930, 1930-05-31, 31 May 1930...) as YYYYMMDD
    (both readings when day and month are ambiguous)."""
    t = s.strip().lower().rstrip(".")
    m = re.fullmatch(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})", t)
    if m:
        a, b, y = (int(x) for x in m.groups())
        return [f"{y}{mth:02d}{d:02d}" for d, mth in dict.fromkeys(((a, b), (b, a))) if mth <= 12 and d <= 31]
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", t) or re.fullmatch(r"(\d{4})(\d{2})(\d{2})", t)
    if m:
        return ["".join(m.groups())]
    m = re.fullmatch(r"(\d{1,2})[\s\-.]+([^\W\d_]+)\.?[\s\-.]+(\d{4})", t)
    if m and m.group(2) in _MONTHS:
        return [f"{m.group(3)}{_MONTHS[m.group(2)]:02d}{int(m.group(1)):02d}"]
    return []


def needle_hits(n: Needle, text_folded: str, text_alnum: str | None) -> str | None:
    for label, pat in n.patterns:
        if pat.search(text_folded):
            return label
    if n.alnum and text_alnum is not None and n.alnum in text_alnum:
        return "alnum"
    return None


# --------------------------------------------------------------------------- walking a dataset


def _elem_text(elem) -> list[str]:
    """Every way of reading an element's value as text."""
    v = elem.value
    if v is None:
        return []
    if isinstance(v, (bytes, bytearray)):
        b = bytes(v)
        return [b.decode("latin-1"), b.decode("utf-8", "ignore")]
    if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
        return ["\\".join(str(x) for x in v)]
    return [str(v)]


def _skip_bulk(elem) -> bool:
    g, e = elem.tag.group, elem.tag.element
    return g == 0x7FE0 or ((g & 0xFF00) in (0x5000, 0x6000) and e == 0x3000)  # pixels, overlay/curve data


def walk(ds, path: str = ""):
    """Yield (path, elem) for every element, file meta first, sequences recursed."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and not path:
        for elem in meta:
            yield f"{elem.keyword or str(elem.tag)}", elem
    for elem in ds:
        name = elem.keyword or str(elem.tag).replace(" ", "")
        if elem.tag.is_private:
            name = str(elem.tag).replace(" ", "")
        here = f"{path}.{name}" if path else name
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value or []):
                yield from walk(item, f"{here}[{i}]")
            continue
        yield here, elem


def header_needles(ds_in, rec: dict) -> tuple[list[Needle], int]:
    """Needles from the record's planted values and the input header. Returns (needles, skipped_short)."""
    values: dict[tuple[str, str], list] = {}
    for p in rec.get("header_planted", []):
        values.setdefault((p["kind"], p["value"]), []).append(p["where"])
    for path, elem in walk(ds_in):
        kind = HEADER_KEYS.get(elem.keyword)
        if not kind or elem.value in (None, ""):
            continue
        vals = elem.value if type(elem.value).__name__ == "MultiValue" else [elem.value]
        for v in vals:
            s = str(v).strip()
            if s:
                values.setdefault((kind, s), []).append(path)
    merged: dict[tuple[str, str], tuple[str, str, set]] = {}
    for (kind, value), where in values.items():
        key = ("name" if kind in NAME_KINDS else kind, fold(value).strip())
        if key not in merged:
            merged[key] = (kind, value, set())
        merged[key][2].update(where)
    needles, skipped = [], 0
    for kind, value, where in merged.values():
        n = make_needle(kind, value, sorted(where))
        if n is None:
            skipped += 1
        else:
            needles.append(n)
    return needles, skipped


def raw_text(data: bytes, ds) -> list[str]:
    """The file's bytes outside the pixel data (inflated if deflated), as latin-1 and UTF-8 text."""
    raw = data
    if str(ds.file_meta.get("TransferSyntaxUID", "")) == "1.2.840.10008.1.2.1.99":
        try:
            glen = int.from_bytes(data[140:144], "little")  # (0002,0000) UL value
            start = 144 + glen
            raw = data[:start] + zlib.decompress(data[start:], -15)
        except (zlib.error, ValueError):
            raw = data
    pix = ds.get("PixelData")
    if pix:
        pos = raw.find(bytes(pix))  # the whole value: unique, unlike a prefix of black rows
        if pos >= 0:
            raw = raw[:pos] + raw[pos + len(pix):]
    return [raw.decode("latin-1"), raw.decode("utf-8", "ignore")]


def find_header_leaks(out_bytes: bytes, ds_out, needles: list[Needle]) -> list[dict]:
    texts = []
    for path, elem in walk(ds_out):
        if _skip_bulk(elem):
            continue
        for t in _elem_text(elem):
            f = fold(t)
            texts.append((path, f, None if elem.VR == "UI" else alnum(t)))
    leaks = []
    raw = [fold(t) for t in raw_text(out_bytes, ds_out)]
    for n in needles:
        found, via = [], set()
        for path, f, a in texts:
            hit = needle_hits(n, f, a)
            if hit:
                found.append(path)
                via.add(hit)
        raw_hit = any(needle_hits(n, t, None) for t in raw)
        if found or raw_hit:
            leaks.append({"kind": n.kind, "planted_in": n.where[:6], "found_in": sorted(set(found))[:8]
                          + ([] if found else ["raw bytes"]), "matched": sorted(via) or ["raw"]})
    return leaks


# --------------------------------------------------------------------------- UIDs


def _is_valid_uid(u: str) -> bool:
    return 0 < len(u) <= 64 and re.fullmatch(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+", u) is not None


def instance_uids(ds) -> set[str]:
    from pydicom.uid import UID_dictionary

    out = set()
    for _, elem in walk(ds):
        if elem.VR != "UI" or not elem.value:
            continue
        kw = elem.keyword or ""
        if kw.endswith("ClassUID") or kw in NOT_INSTANCE_UIDS:
            continue
        vals = elem.value if type(elem.value).__name__ == "MultiValue" else [elem.value]
        for v in vals:
            v = str(v).strip("\x00 ")
            if len(v) >= 10 and v not in UID_dictionary:
                out.add(v)
    return out


def uid_check(ds_in, ds_out, out_bytes: bytes) -> dict:
    res: dict = {"checks": {}, "left": 0, "left_in": []}

    def get(ds, kw):
        if kw == "MediaStorageSOPInstanceUID":
            return str(ds.file_meta.get(kw, "") or "")
        return str(ds.get(kw, "") or "")

    for kw in CHECKED_UIDS:
        a, b = get(ds_in, kw), get(ds_out, kw)
        res["checks"][kw] = ("missing" if not b else "unchanged" if a and a == b else
                             "invalid" if not _is_valid_uid(b) else "ok")
    res["checks"]["media_matches_sop"] = "ok" if get(ds_out, "SOPInstanceUID") == get(
        ds_out, "MediaStorageSOPInstanceUID") else "mismatch"
    old = instance_uids(ds_in)
    where = set()
    out_vals = {}
    for path, elem in walk(ds_out):
        if elem.VR == "UI" and elem.value:
            vals = elem.value if type(elem.value).__name__ == "MultiValue" else [elem.value]
            for v in vals:
                out_vals.setdefault(str(v).strip("\x00 "), []).append(path)
    raw = raw_text(out_bytes, ds_out)[0]
    left = 0
    for u in old:
        paths = out_vals.get(u)
        in_raw = re.search(r"(?<![0-9.])" + re.escape(u) + r"(?![0-9.])", raw) is not None
        if paths or in_raw:
            left += 1
            where.update(paths or ["raw bytes"])
    res["old_instance_uids"] = len(old)
    res["left"] = left
    res["left_in"] = sorted(where)[:10]
    res["new"] = {kw: get(ds_out, kw) for kw in ("StudyInstanceUID", "SeriesInstanceUID")}
    res["ok"] = all(v == "ok" for v in res["checks"].values()) and left == 0
    return res


# --------------------------------------------------------------------------- pixels and the judge


def frame_indices(n: int) -> list[int]:
    return sorted({0, n // 2, n - 1}) if n > 1 else [0]


def to_display(arr: np.ndarray, ds) -> Image.Image:
    """One decoded frame as an 8-bit RGB picture, as a viewer would show it (robust min-max window)."""
    pi = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if pi == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        if arr.dtype != np.uint8:
            top = float(2 ** int(ds.get("BitsStored", 16)) - 1) if pi != "PALETTE COLOR" else 65535.0
            arr = np.clip(arr.astype(np.float64) / top * 255, 0, 255)
        img = Image.fromarray(np.asarray(arr, np.uint8), "RGB")
    else:
        a = arr.astype(np.float64)
        lo, hi = np.percentile(a, 0.5), np.percentile(a, 99.9)
        if hi <= lo:
            lo, hi = float(a.min()), float(a.max())
        a = np.clip((a - lo) / max(hi - lo, 1e-9), 0, 1) * 255
        if pi == "MONOCHROME1":
            a = 255 - a
        img = Image.fromarray(a.astype(np.uint8), "L").convert("RGB")
    w, h = img.size
    if max(w, h) < JUDGE_MIN_SIDE:
        k = math.ceil(JUDGE_MIN_SIDE / max(w, h))
        img = img.resize((w * k, h * k), Image.BICUBIC)
    return img


def decode_frames(ds, wanted: list[int]) -> dict[int, Image.Image]:
    """Frames `wanted` of a parsed dataset, as pictures for the judge (colour decoded to RGB)."""
    from pydicom.pixels import get_decoder

    dec = get_decoder(ds.file_meta.TransferSyntaxUID)
    n = int(ds.get("NumberOfFrames", 1) or 1)
    out = {}
    for i in wanted:
        arr, _ = dec.as_array(ds, index=i if n > 1 else None)
        out[i] = to_display(arr, ds)
    return out


@lru_cache(maxsize=1)
def _judges():
    from . import judges

    return judges


class RapidLines:
    """RapidOCR as the DICOM harness has always used it: tests/judges.read_text, whole frame
    and quarters, text only (no boxes: burned-in identifiers are matched anywhere in the frame)."""

    name = "rapidocr"
    version = JUDGE_VERSION
    info = {"models": "rapidocr defaults via tests/judges.read_text (whole frame + quarters)"}

    def read(self, img: Image.Image) -> list[str]:
        return _judges().read_text(img)

    def close(self) -> None:
        pass


class EasyLines(common.EasyOcrJudge):
    """EasyOCR on the whole frame, text only (CRAFT does not share RapidOCR's habit of
    skipping a small cluster of text on a large empty page, which the quarters work around)."""

    version = common.EASYOCR_VERSION + "-dicom-lines-1"

    def read(self, img: Image.Image) -> list[str]:
        return [ln["text"] for ln in super().read(img)]


def dicom_judge(name: str):
    return {"rapidocr": RapidLines, "easyocr": EasyLines}[name]()


def legible(text: str, lines: list[str]) -> bool:
    return _judges().legible(fold(text), [fold(x) for x in lines], LEGIBLE)


def frames_read(text: str, reads: dict[int, dict[str, list[str]]], frames: list[int]) -> dict[str, list[int]]:
    """{judge: frames in which it reads `text`}, for the judges that read it at all."""
    found: dict[str, list[int]] = {}
    for i in frames:
        for judge, lines in reads[i].items():
            if legible(text, lines):
                found.setdefault(judge, []).append(i)
    return found


def judge_pixels(rec: dict, in_data: bytes, ds_in, out_data: bytes, ds_out, judges: common.JudgePanel) -> dict:
    n_in = int(ds_in.get("NumberOfFrames", 1) or 1)
    n_out = int(ds_out.get("NumberOfFrames", 1) or 1)
    fin = frame_indices(n_in)
    fout = {i: (round(i * (n_out - 1) / (n_in - 1)) if n_in > 1 and n_out > 1 else 0) for i in fin}
    before = {i: judges.read(im) for i, im in decode_frames(ds_in, fin).items()}
    out_imgs = decode_frames(ds_out, sorted(set(fout.values())))
    after = {i: judges.read(out_imgs[fout[i]]) for i in fin}

    def frames_of(item):
        fr = item.get("frames", "all")
        return fin if fr == "all" else [i for i in fin if i in fr]

    idents = []
    for item in rec.get("pixels_planted", []):
        fr = frames_of(item)
        rb, ra = frames_read(item["text"], before, fr), frames_read(item["text"], after, fr)
        lb = sorted({i for v in rb.values() for i in v})
        la = sorted({i for v in ra.values() for i in v})
        idents.append({"kind": item["kind"], "legible_before": bool(lb), "legible_after": bool(la),
                       "leaked": bool(lb and la), "frames_before": lb, "frames_after": la,
                       "read_before": [j for j in judges.names if j in rb],
                       "read_after": [j for j in judges.names if j in ra]})
    tech = []
    for item in rec.get("technical", []):
        fr = frames_of(item)
        lb = bool(frames_read(item["text"], before, fr))
        tech.append({"legible_before": lb, "kept": lb and bool(frames_read(item["text"], after, fr))})
    return {"frames_checked": fin, "frames_out": n_out, "items": idents,
            "legible_before": sum(i["legible_before"] for i in idents),
            "leaked": sum(i["leaked"] for i in idents),
            "technical_legible_before": sum(t["legible_before"] for t in tech),
            "technical_kept": sum(t["kept"] for t in tech)}


# --------------------------------------------------------------------------- validity


def dcmdump_check(path: Path) -> dict:
    exe = shutil.which("dcmdump")
    if not exe:
        return {"dcmdump": None, "note": "dcmdump not found: skipped"}
    proc = subprocess.run([exe, "-M", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    text = (proc.stdout + proc.stderr).decode("utf-8", "replace").splitlines()
    errors = [ln for ln in text if ln.startswith("E:")]
    warns = [ln for ln in text if ln.startswith("W:")]
    return {"dcmdump": proc.returncode == 0 and not errors, "rc": proc.returncode, "errors": len(errors),
            "warnings": len(warns), "first_error": errors[0][:160] if errors else None}


def pydicom_decodes(ds) -> tuple[bool, str | None, int]:
    """Does pydicom decode every frame? (Decoder.iter_array on the parsed dataset.)"""
    from pydicom.pixels import get_decoder

    try:
        n = 0
        for _ in get_decoder(ds.file_meta.TransferSyntaxUID).iter_array(ds):
            n += 1
        expected = int(ds.get("NumberOfFrames", 1) or 1)
        if n != expected:
            return False, f"{n} frames decoded, NumberOfFrames says {expected}", n
        return True, None, n
    except Exception as e:  # noqa: BLE001
        return False, f"{type(e).__name__}: {str(e)[:160]}", 0


# --------------------------------------------------------------------------- one case


def _private_count(ds) -> int:
    return sum(1 for _, e in walk(ds) if e.tag.is_private)


def _overlay_groups(ds) -> int:
    return len({e.tag.group for e in ds if (e.tag.group & 0xFF00) in (0x6000, 0x5000)})


def score_case(rec: dict, corpus: Path, sanitize, judges: common.JudgePanel, outdir: Path) -> dict:
    import pydicom

    data = (corpus / rec["file"]).read_bytes()
    ds_in = pydicom.dcmread(io.BytesIO(data))
    oc = sanitize(data)
    res = {"file": rec["file"], "family": rec["family"], "source": rec["source"],
           "ts_in": rec["ts_name"], "frames": rec["frames"], "photometric_in": rec["photometric"],
           "seconds": round(oc.seconds, 3), "route": oc.route, "delivered": oc.output is not None,
           "refused": oc.refused, "detail": oc.detail, "findings": oc.findings, "actions": oc.actions,
           "pixel_note": rec.get("pixel_note", ""), "notes": []}
    needles, skipped = header_needles(ds_in, rec)
    res["header"] = {"values": len(needles), "skipped_short": skipped}
    res["pixels"] = {"identifiers": len(rec.get("pixels_planted", []))}
    if oc.output is None:
        res["header"].update({"leaks": 0, "leaked": []})
        return res
    out_path = outdir / rec["file"].replace("/", "__")
    out_path.write_bytes(oc.output)
    res["valid"] = dcmdump_check(out_path)
    try:
        ds_out = pydicom.dcmread(io.BytesIO(oc.output))
        for _ in walk(ds_out):
            pass
    except Exception as e:  # noqa: BLE001
        res["valid"]["pydicom"] = False
        res["valid"]["pydicom_error"] = f"{type(e).__name__}: {str(e)[:160]}"
        res["valid"]["ok"] = False
        res["header"].update({"leaks": None, "leaked": []})
        res["notes"].append("output does not parse: header and pixels not judged")
        return res
    ok, err, nfr = pydicom_decodes(ds_out) if "PixelData" in ds_out else (False, "no PixelData", 0)
    res["valid"].update({"pydicom": ok, "pydicom_error": err, "frames_decoded": nfr})
    res["valid"]["ok"] = bool(ok and res["valid"].get("dcmdump") in (True, None))
    res["ts_out"] = ds_out.file_meta.TransferSyntaxUID.name if "TransferSyntaxUID" in ds_out.file_meta else None
    res["ts_changed"] = str(ds_out.file_meta.get("TransferSyntaxUID", "")) != rec["transfer_syntax"]
    res["photometric_out"] = str(ds_out.get("PhotometricInterpretation", ""))
    res["geometry_same"] = (int(ds_out.get("Rows", 0)) == rec["rows"] and int(ds_out.get("Columns", 0)) == rec[
        "columns"] and int(ds_out.get("NumberOfFrames", 1) or 1) == rec["frames"])
    res["identity_removed"] = str(ds_out.get("PatientIdentityRemoved", "")) or None
    res["deid_method"] = bool(ds_out.get("DeidentificationMethod") or ds_out.get("DeidentificationMethodCodeSequence"))
    res["burned_in_annotation"] = str(ds_out.get("BurnedInAnnotation", "")) or None
    res["private_elements_left"] = _private_count(ds_out)
    res["overlay_groups_left"] = _overlay_groups(ds_out)
    leaks = find_header_leaks(oc.output, ds_out, needles)
    res["header"].update({"leaks": len(leaks), "leaked": leaks})
    res["uids"] = uid_check(ds_in, ds_out, oc.output)
    if ok:
        try:
            res["pixels"].update(judge_pixels(rec, data, ds_in, oc.output, ds_out, judges))
        except Exception as e:  # noqa: BLE001
            res["notes"].append(f"pixels not judged: {type(e).__name__}: {str(e)[:120]}")
    else:
        res["notes"].append("pixels not judged: output pixel data does not decode")
    return res


# --------------------------------------------------------------------------- aggregation


def _q(xs, q):
    return round(float(np.quantile(xs, q)), 3) if xs else None


def judge_stats(px: list[tuple[dict, dict]], names) -> dict:
    """Per OCR judge: burned-in identifiers it reads before, after, both (`leaked`, what it
    would report alone), and those no other judge read."""
    out = {}
    for j in names:
        before = [(r, i) for r, i in px if j in i.get("read_before", [])]
        leaked = [(r, i) for r, i in before if j in i.get("read_after", [])]
        out[j] = {"legible_before": len(before),
                  "legible_after": sum(j in i.get("read_after", []) for _, i in px),
                  "leaked": len(leaked),
                  "only_legible_before": sum(i.get("read_before") == [j] for _, i in px),
                  "only_leaked": sum(i["leaked"] and i.get("read_after") == [j] for _, i in px),
                  "files_legible_before": len({r["file"] for r, _ in before}),
                  "files_leaked": len({r["file"] for r, _ in leaked})}
    return out


def aggregate(results: list[dict], records: list[dict], judges=None) -> dict:
    s: dict = {}
    n = len(results)
    delivered = [r for r in results if r["delivered"]]
    s["files"] = n
    s["delivered"] = len(delivered)
    s["refused_by_reason"] = dict(Counter(r["refused"] for r in results if r["refused"]))
    # header
    hl = [lk for r in delivered for lk in r["header"].get("leaked", [])]
    s["header"] = {"values_searched": sum(r["header"]["values"] for r in results),
                   "values_skipped_short": sum(r["header"]["skipped_short"] for r in results),
                   "leaks": len(hl), "files_with_leaks": sum(bool(r["header"].get("leaks")) for r in delivered),
                   "unjudged": sum(r["header"].get("leaks") is None for r in delivered),
                   "by_kind": dict(Counter(lk["kind"] for lk in hl).most_common()),
                   "found_in": dict(Counter(p.split("[")[0].split(".")[0] for lk in hl
                                            for p in lk["found_in"]).most_common(25))}
    # UIDs
    uids = [r["uids"] for r in delivered if "uids" in r]
    fails = Counter(f"{k}:{v}" for u in uids for k, v in u["checks"].items() if v != "ok")
    groups: dict = {"study": defaultdict(set), "series": defaultdict(set)}
    by_file = {rec["file"]: rec for rec in records}
    for r in delivered:
        if "uids" not in r:
            continue
        rec = by_file[r["file"]]
        groups["study"][rec["study_key"]].add(r["uids"]["new"]["StudyInstanceUID"])
        groups["series"][rec["series_key"]].add(r["uids"]["new"]["SeriesInstanceUID"])
    consistency = {}
    for level, g in groups.items():
        multi = [k for k in g if sum(1 for rec in records if rec[f"{level}_key"] == k) > 1]
        split = [k for k in multi if len(g[k]) > 1]
        all_new = [u for k in g for u in g[k]]
        merged = len(all_new) - len(set(all_new))
        consistency[level] = {"groups_with_several_files": len(multi), "split": len(split),
                              "distinct_groups_merged": merged}
    s["uids"] = {"files_checked": len(uids), "files_ok": sum(u["ok"] for u in uids), "failed_checks": dict(fails),
                 "original_instance_uids_left": sum(u["left"] for u in uids),
                 "files_with_original_uids": sum(bool(u["left"]) for u in uids), "consistency": consistency}
    uid_ok = (len(uids) == len(delivered) and all(u["ok"] for u in uids)
              and all(c["split"] == 0 and c["distinct_groups_merged"] == 0 for c in consistency.values()))
    # pixels
    px = [(r, i) for r in delivered for i in r["pixels"].get("items", [])]

    def pstats(sel):
        lb = [i for _, i in sel if i["legible_before"]]
        files_lb = {r["file"] for r, i in sel if i["legible_before"]}
        files_leaked = {r["file"] for r, i in sel if i["leaked"]}
        return {"identifiers": len(sel), "legible_before": len(lb), "leaked": sum(i["leaked"] for i in lb),
                "files_legible_before": len(files_lb), "files_leaked": len(files_leaked),
                "files_leak_pct": round(100 * len(files_leaked) / len(files_lb), 1) if files_lb else None}

    s["pixels"] = {**pstats(px),
                   "planted_on_refused_files": sum(r["pixels"]["identifiers"] for r in results if not r["delivered"]),
                   "files_unjudged": sum(1 for r in delivered if r["pixels"]["identifiers"]
                                         and "legible_before" not in r["pixels"]),
                   "by_family": {f: pstats([x for x in px if x[0]["family"] == f])
                                 for f in sorted({r["family"] for r, _ in px})},
                   "by_kind": {k: pstats([x for x in px if x[1]["kind"] == k])
                               for k in sorted({i["kind"] for _, i in px})},
                   "judges": judge_stats(px, judges or []),
                   "technical_legible_before": sum(r["pixels"].get("technical_legible_before", 0) for r in delivered),
                   "technical_kept": sum(r["pixels"].get("technical_kept", 0) for r in delivered)}
    # validity
    val = [r.get("valid", {}) for r in delivered]
    s["validity"] = {"valid": sum(bool(v.get("ok")) for v in val), "dcmdump_failed": sum(v.get("dcmdump") is False
                                                                                          for v in val),
                     "dcmdump_skipped": sum(v.get("dcmdump") is None for v in val),
                     "dcmdump_warnings": sum(v.get("warnings", 0) for v in val),
                     "pydicom_failed": sum(v.get("pydicom") is False for v in val)}
    s["other"] = {"identity_removed_yes": sum(r.get("identity_removed") == "YES" for r in delivered),
                  "deid_method_present": sum(bool(r.get("deid_method")) for r in delivered),
                  "ts_changed": sum(bool(r.get("ts_changed")) for r in delivered),
                  "geometry_changed": sum(r.get("geometry_same") is False for r in delivered),
                  "files_with_private_left": sum(bool(r.get("private_elements_left")) for r in delivered),
                  "files_with_overlays_left": sum(bool(r.get("overlay_groups_left")) for r in delivered)}
    secs = [r["seconds"] for r in results]
    s["time"] = {"median_s": _q(secs, 0.5), "p95_s": _q(secs, 0.95), "max_s": round(max(secs), 3) if secs else None,
                 "total_s": round(sum(secs), 1),
                 "by_family": {f: {"median_s": _q([r["seconds"] for r in results if r["family"] == f], 0.5),
                                   "max_s": _q([r["seconds"] for r in results if r["family"] == f], 1.0)}
                               for f in sorted({r["family"] for r in results})}}
    s["targets"] = [
        {"target": "header leaks (planted or header values found in outputs)", "value": s["header"]["leaks"],
         "goal": "0", "met": s["header"]["leaks"] == 0 and s["header"]["unjudged"] == 0},
        {"target": "legible burned-in identifiers", "value": s["pixels"]["leaked"],
         "of": s["pixels"]["legible_before"], "goal": "0",
         "met": s["pixels"]["leaked"] == 0 and s["pixels"]["files_unjudged"] == 0},
        {"target": "UIDs remapped, valid, consistent per study/series; no original instance UID left",
         "value": f"{s['uids']['files_ok']}/{len(delivered)} files; {s['uids']['original_instance_uids_left']} "
                  f"original UIDs left", "goal": "all", "met": uid_ok},
        {"target": "outputs valid (dcmdump, pydicom decodes every frame)",
         "value": f"{s['validity']['valid']}/{len(delivered)}", "goal": "all",
         "met": s["validity"]["valid"] == len(delivered)},
        {"target": "files delivered (not refused)", "value": f"{len(delivered)}/{n}", "goal": "all",
         "met": len(delivered) == n},
    ]
    return s


# --------------------------------------------------------------------------- driver


def load_records(corpus: Path) -> list[dict]:
    return [json.loads(ln) for ln in (corpus / "cases.jsonl").read_text().splitlines() if ln.strip()]


def score(corpus: Path, sanitizer=None, progress: bool = True, keep_outputs: Path | None = None,
          only: list[str] | None = None, judges=common.JUDGES) -> dict:
    import pydicom

    # inputs in the wild break VR rules (an LO of 122 characters in deid-data): read, don't complain
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    sanitizer = sanitizer or Sanitizer()
    records = load_records(corpus)
    if only:
        records = [r for r in records if any(o in r["file"] for o in only)]
    panel = common.JudgePanel(corpus, judges, stem="ocr-cache-dicom", factory=dicom_judge)
    tmp = None
    if keep_outputs:
        outdir = keep_outputs
        outdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="scrubgate-dicom-quality-")
        outdir = Path(tmp.name)
    t0 = time.monotonic()
    results = []
    try:
        for i, rec in enumerate(records, 1):
            results.append(score_case(rec, corpus, sanitizer, panel, outdir))
            panel.save()
            if progress:
                r = results[-1]
                print(f"\rdicom score: {i}/{len(records)} {rec['family']:<16} sanitize {r['seconds']:.2f}s "
                      f"elapsed {time.monotonic() - t0:.0f}s ", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
    finally:
        panel.close()
        if tmp:
            tmp.cleanup()
    return {"sanitizer": sanitizer.name, "route": getattr(sanitizer, "route_note", ""), "judges": panel.stats(),
            "summary": aggregate(results, records, panel.names), "files": results,
            "score_seconds": round(time.monotonic() - t0, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--null", action="store_true", help="score the inputs as outputs (self-check)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep-outputs", type=Path)
    ap.add_argument("--only", action="append", help="score only files whose path contains this")
    ap.add_argument("--judges", default=",".join(common.JUDGES),
                    help="OCR judges, comma-separated (default: %(default)s; rapidocr alone needs no judge venv)")
    a = ap.parse_args(argv)
    judges = common.parse_judges(a.judges)
    common.ensure_judges(judges)
    out = score(a.corpus.resolve(), NullSanitizer() if a.null else Sanitizer(), keep_outputs=a.keep_outputs,
                only=a.only, judges=judges)
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))
    print(json.dumps(out["summary"]["targets"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
