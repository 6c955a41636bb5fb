"""DICOM: the PS3.15 Annex E profile on the header, burned-in text in the pixels.

One file goes through four steps:

1. read: the whole file is parsed (sequences included) so that a damaged or
   undefined-length mess is refused here, not half-way through cleaning;
2. pixels (frames.py): every frame of images that may carry burned-in text is
   scanned with the image engine's OCR and recognizers, plus the header's own
   identifying values as fuzzy hints; redacted frames are written back in the
   original transfer syntax where an encoder exists (codecs.py);
3. header (header.py): every row of Table E.1-1 (annex_e.py, generated from
   the standard) with the options the policy chose; UIDs remapped with a
   keyed hash, dates shifted per patient, private tags, overlays, curves and
   icons removed; the de-identification attributes set;
4. write and re-read: the output must parse again, or nothing goes out.
"""

from __future__ import annotations

import io
import re
import struct
from collections import Counter

from ..limits import EngineLimits
from ..scanner import PixelOptions
from ..verdict import Refused, Verdict
from .options import LONGITUDINAL, DicomOptions

__all__ = ["DicomOptions", "LONGITUDINAL", "hints_from_bytes", "read", "sanitize"]


def read(data: bytes):
    """Parse a whole DICOM file, or raise Refused("corrupt") with a clear reason."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=False)
        # pydicom converts values lazily: force every element now, the file meta too
        # (a damaged VR there surfaced only later, as NotImplementedError: found by fuzzing)
        _touch(ds.file_meta)
        _touch(ds)
    except InvalidDicomError:
        raise Refused("corrupt", "the file says it is DICOM but is not a readable DICOM file") from None
    except Exception as e:  # noqa: BLE001 -- pydicom raises anything on a damaged file
        raise Refused("corrupt", f"the DICOM file is damaged and cannot be read ({type(e).__name__})") from None
    if "TransferSyntaxUID" not in ds.file_meta:
        raise Refused("corrupt", "the DICOM file has no transfer syntax in its file meta information")
    syntax = ds.file_meta.TransferSyntaxUID
    # A damaged length can swallow the next elements into this one: several values, or
    # text that is no UID. pydicom would fail on it only when writing (found by fuzzing).
    if not isinstance(syntax, str) or not _UID.fullmatch(syntax):
        raise Refused("corrupt", "the DICOM file's transfer syntax UID is malformed")
    if any(tag.group == 0 for tag in ds.keys()):
        raise Refused("corrupt", "the DICOM file holds network command elements (group 0000), "
                                 "which a stored file never has")
    return ds


_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def _touch(ds, depth: int = 0) -> None:
    """Convert every element now, and hold each known sequence to being one: a damaged
    VR turns a sequence into text that later code would iterate as items (found by
    fuzzing: Other Patient IDs read as a name)."""
    from pydicom.datadict import dictionary_has_tag, dictionary_VR

    if depth > 16:
        raise ValueError("sequences nested too deeply")
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                _touch(item, depth + 1)
        elif dictionary_has_tag(elem.tag) and dictionary_VR(elem.tag) == "SQ":
            raise ValueError("a sequence element that is not a sequence")


def hints_from_bytes(data: bytes) -> tuple[tuple[str, str], ...]:
    """The identifying values in one DICOM file's header (for a study's other files)."""
    from . import header

    try:
        return header.collect_hints(read(data))
    except Refused:
        return ()


def sanitize(data: bytes, options: DicomOptions, pixel_options: PixelOptions | None, limits: EngineLimits,
             extra_hints: tuple[tuple[str, str], ...] = ()) -> Verdict:
    """Clean one DICOM file. Raises Refused; the engine turns that into a refused Verdict.

    `pixel_options` None means metadata only (the policy or caller turned pixels off).
    """
    from . import frames, header

    ds = read(data)
    verdict = Verdict(format="dicom", content="dicom")
    scanned = False
    if options.clean_pixel_data and pixel_options is not None and frames.needs_scan(ds):
        hints = tuple(dict.fromkeys(header.collect_hints(ds) + extra_hints))
        changed, findings = frames.clean_pixels(ds, _with_hints(pixel_options, hints), limits)
        verdict.findings.extend(findings)
        scanned = True
        if changed:
            verdict.actions.append("pixels_redacted")
    else:
        frames.check_pixels(ds, limits)
    report = header.deidentify(ds, options)
    header.mark_deidentified(ds, options, pixels_scanned=scanned)
    verdict.removed = Counter(report.removed)
    if any(ds.preamble or b""):
        # PS3.10 lets the preamble hold anything (a TIFF header, 128 bytes of text).
        verdict.removed["dicom_preamble"] += 1
    ds.preamble = b"\0" * 128
    verdict.findings.extend(report.findings)
    verdict.actions.append("metadata_removed")
    verdict.output = write(ds)
    read(verdict.output)  # what we could not read back, nobody else should be sent
    return verdict


def _with_hints(options: PixelOptions, hints: tuple[tuple[str, str], ...]) -> PixelOptions:
    from dataclasses import replace

    return replace(options, hints=options.hints + hints)


def write(ds) -> bytes:
    """The cleaned dataset as a file. pydicom reads some damaged files that it then
    cannot write (values of the wrong type after a bad length, and so on: found by
    fuzzing); those are refused as corrupt, never half-written."""
    buf = io.BytesIO()
    try:
        ds.save_as(buf, enforce_file_format=True)
    except (ValueError, TypeError, AttributeError, OverflowError, KeyError, struct.error) as e:
        raise Refused("corrupt", f"the DICOM file is damaged and cannot be written back ({type(e).__name__})") \
            from None
    return buf.getvalue()
