"""DICOM test material and outside judges: planted studies, an element walker, dcmtk.

`secondary_capture()` (from scrubgate.samples, shared with the demo and the
benchmarks) builds a real Secondary Capture file with identifiers planted in
the header (names, IDs, dates, free text, a private tag, a nested sequence)
and burned into the pixels. `leaks()` walks every element of an
output, sequences and file meta included, for those values. dcmtk's
`dcmdump` and `dcm2pnm` are the independent judges of validity.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from scrubgate.samples import BURNED_IN, PATIENT, PLANTED, SC_CLASS, secondary_capture  # noqa: F401 (re-exported)
from scrubgate.samples import dicom_frame as frame_image  # noqa: F401 (re-exported)


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
