"""ZIP archives: study exports, DICOMDIR layouts, and the bombs and tricks that come with ZIP.

Real DICOM files (pydicom's test files, including its DICOMDIR file-set, and
the deid-data ultrasound cine zip) go through the real engine; the limit, bomb
and name tests use a trivial member cleaner, since there the members' content
does not matter. A refused archive must come back with nothing of it (output None).
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.fileset import FileSet

from scrubgate.engine import DicomOptions, EngineOptions, sanitize
from scrubgate.engine.archive import sanitize_zip
from scrubgate.engine.limits import EngineLimits
from scrubgate.engine.verdict import Verdict

KEY = b"k" * 32
DICOMDIR_SET = Path(get_testdata_file("DICOMDIR")).parent  # pydicom's dicomdirtests/
CINE_ZIP = Path(pydicom.__file__).parent.parent / "deid_data" / "data" / "ultrasounds" / "GREYSCALE_CINE.zip"
FIXED = (1980, 1, 1, 0, 0, 0)

# -- helpers ----------------------------------------------------------------------


def make_zip(members, comment: bytes = b"", method=zipfile.ZIP_DEFLATED) -> bytes:
    """members: [(name, bytes)] or [(ZipInfo, bytes)]; names ending in '/' are directories."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members:
            if isinstance(name, str) and name.endswith("/"):
                z.mkdir(name)
            else:
                z.writestr(name, data)
        z.comment = comment
    return buf.getvalue()


def read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {i.filename: (b"" if i.is_dir() else z.read(i)) for i in z.infolist()}


def copy_clean(data: bytes, hints) -> Verdict:
    """A member cleaner for tests where the content does not matter."""
    return Verdict(format="unknown", content="other", output=data)


def allow_all(kind: str) -> str:
    return "allow"


def sanitize_all(kind: str) -> str:
    return "sanitize"


def nested_clean(limits: EngineLimits):
    """A cleaner that recurses into nested zips the way the engine does (depth + 1)."""
    def clean(data, hints, depth=0):
        if data[:4] == b"PK\x03\x04":
            return sanitize_zip(data, lambda d, h: clean(d, h, depth + 1), sanitize_all, limits, depth=depth + 1)
        return copy_clean(data, hints)
    return clean


def engine_options(**kw) -> EngineOptions:
    return EngineOptions(pixels=False, dicom=DicomOptions(secret=KEY), **kw)


def engine_clean(data: bytes, hints) -> Verdict:
    return sanitize(data, engine_options())


def dicom_bytes(path, **values) -> bytes:
    """A DICOM test file with planted values. pydicom's CT_small/MR_small carry a TIFF
    header in their preamble (dual-personality files); it is blanked here and kept
    in test_dicom_with_tiff_preamble_is_cleaned_as_dicom."""
    ds = pydicom.dcmread(path)
    ds.preamble = bytes(128)
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def refused(v: Verdict, reason: str) -> None:
    assert v.refused == reason, (v.refused, v.detail)
    assert v.output is None
    assert v.format == "zip" and v.content == "archive"


def dicomdir_zip(base: str = "") -> bytes:
    """pydicom's DICOMDIR file-set (two patients, 31 files, folder 77654033 is a patient ID) as a zip."""
    members = [(base + "DICOMDIR", (DICOMDIR_SET / "DICOMDIR").read_bytes())]
    for path in sorted(DICOMDIR_SET.glob("[0-9]*/*/*")):
        members.append((base + path.relative_to(DICOMDIR_SET).as_posix(), path.read_bytes()))
    return make_zip(members)


# -- studies through the real engine ---------------------------------------------------


def test_study_zip_names_neutralised_and_every_dicom_cleaned():
    ct = dicom_bytes(get_testdata_file("CT_small.dcm"), PatientName="Doe^Archibald", PatientID="77654033",
                     PatientBirthDate="19650412")
    mr = dicom_bytes(get_testdata_file("MR_small.dcm"), PatientName="Doe^Archibald", PatientID="77654033")
    data = make_zip([
        ("DICOM/", b""),
        ("DICOM/Doe_Archibald/", b""),
        ("DICOM/Doe_Archibald/CT/IM0001.dcm", ct),  # only the headers' values give this folder away
        ("DICOM/Doe_Archibald/MR/IM0001.dcm", mr),
        ("DICOM/SMITH_JOHN_19650412/IM0002.dcm", ct),  # the recognizers see a name and a date
        ("DICOM/77654033/IM0003.dcm", mr),  # the patient ID
    ])
    seen_hints = []

    def clean(member, hints):
        seen_hints.append(hints)
        return engine_clean(member, hints)

    v = sanitize_zip(data, clean, sanitize_all, EngineLimits())
    assert v.refused is None, v.detail
    out = read_zip(v.output)
    names = list(out)
    assert len(names) == 6
    joined = "\n".join(names).upper()
    for planted in ("DOE", "ARCHIBALD", "SMITH", "JOHN", "19650412", "77654033"):
        assert planted not in joined
    # Kept where harmless, and the same folder gets the same new name everywhere.
    assert names[0] == "DICOM/"
    assert names[2].startswith(names[1]) and names[3].startswith(names[1])
    assert names[2].endswith("/CT/IM0001.dcm") and names[3].endswith("/MR/IM0001.dcm")
    assert names[4].endswith("/IM0002.dcm") and names[5].endswith("/IM0003.dcm")
    assert v.removed["archive_member_name"] == 3
    assert sum(f.source == "archive_name" for f in v.findings) == 3
    # Every DICOM file was cleaned with the whole study's hints.
    assert len(seen_hints) == 4 and all(h == seen_hints[0] for h in seen_hints)
    assert any("77654033" in value for _, value in seen_hints[0])
    assert ("date", "19650412") in seen_hints[1]  # the MR file is cleaned with the CT file's birth date too
    for name in names[2:]:
        ds = pydicom.dcmread(io.BytesIO(out[name]))
        assert "Archibald" not in str(ds.get("PatientName", "")) and ds.get("PatientID") != "77654033"
        assert b"Archibald" not in out[name] and b"77654033" not in out[name]
    assert "metadata_removed" in v.actions


@pytest.mark.parametrize("base", ["", "Doe_Peter/"])
def test_dicomdir_layout_offsets_references_and_dcmdump(tmp_path, base):
    original = {p.relative_to(DICOMDIR_SET).as_posix(): pydicom.dcmread(p).SOPInstanceUID
                for p in DICOMDIR_SET.glob("[0-9]*/*/*")}
    v = sanitize(dicomdir_zip(base), engine_options())
    assert v.refused is None, v.detail
    with zipfile.ZipFile(io.BytesIO(v.output)) as z:
        names = z.namelist()
        z.extractall(tmp_path)
    assert not any("77654033" in n or "Doe" in n for n in names)  # patient ID folder, patient name folder
    assert len(names) == 32
    dicomdir_path = tmp_path / names[0]
    assert dicomdir_path.name == "DICOMDIR"
    raw = dicomdir_path.read_bytes()
    assert b"Archibald" not in raw and b"77654033" not in raw and b"98890234" not in raw

    fs = FileSet(pydicom.dcmread(dicomdir_path))  # walks the records by their offsets
    assert len(fs) == 31
    files = {Path(p).resolve() for p in (tmp_path / n for n in names[1:])}
    for instance in fs:
        path = Path(instance.path).resolve()
        assert path in files  # the File ID resolves to a (renamed) member of the archive
        ds = pydicom.dcmread(path)
        assert instance.SOPInstanceUID == ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
        assert instance.SOPInstanceUID not in original.values()
        assert instance.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
    # The records repeat the cleaned files' values (not values cleaned apart from them).
    for instance in fs:
        ds = pydicom.dcmread(instance.path)
        series, study, patient = (instance.node.parent, instance.node.parent.parent,
                                  instance.node.parent.parent.parent)
        assert series._record.SeriesInstanceUID == ds.SeriesInstanceUID
        assert study._record.StudyInstanceUID == ds.StudyInstanceUID
        assert study._record.StudyDate == ds.StudyDate
        assert patient._record.PatientID == ds.PatientID
    # Offsets: every record's links point at the start of another record.
    ds = pydicom.dcmread(dicomdir_path)
    starts = {r.seq_item_tell for r in ds.DirectoryRecordSequence}
    assert ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity in starts
    assert ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity in starts
    for r in ds.DirectoryRecordSequence:
        for tag in ("OffsetOfTheNextDirectoryRecord", "OffsetOfReferencedLowerLevelDirectoryEntity"):
            assert r[tag].value == 0 or r[tag].value in starts

    if shutil.which("dcmdump") is None:
        pytest.skip("dcmdump (dcmtk) is not installed")
    run = subprocess.run(["dcmdump", str(dicomdir_path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert not [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("E:")]


def test_allowed_dicomdir_keeps_files_but_follows_renamed_folders(tmp_path):
    """Policy "allow" for DICOM: files copied as they are, yet the folder named
    after the patient ID is renamed, and the DICOMDIR's File IDs follow it."""
    v = sanitize_zip(dicomdir_zip(), copy_clean, allow_all, EngineLimits())
    assert v.refused is None, v.detail
    with zipfile.ZipFile(io.BytesIO(v.output)) as z:
        assert not any("77654033" in n for n in z.namelist())
        z.extractall(tmp_path)
    fs = FileSet(pydicom.dcmread(tmp_path / "DICOMDIR"))
    assert len(fs) == 31
    for instance in fs:
        assert pydicom.dcmread(instance.path).SOPInstanceUID == instance.SOPInstanceUID


def test_dicom_media_layout_names_are_kept(tmp_path):
    """PT000000/ST000000/SE000000/IM00000J are the standard's own kind of names, not IDs."""
    tiny = DICOMDIR_SET / "TINY_ALPHA"
    members = [("DICOMDIR", (tiny / "DICOMDIR").read_bytes())]
    members += [(p.relative_to(tiny).as_posix(), p.read_bytes()) for p in sorted(tiny.glob("PT*/*/*/*"))]
    v = sanitize_zip(make_zip(members), copy_clean, allow_all, EngineLimits())
    assert v.refused is None, v.detail
    assert list(read_zip(v.output)) == [name for name, _ in members]
    assert v.removed["archive_member_name"] == 0
    zipfile.ZipFile(io.BytesIO(v.output)).extractall(tmp_path)
    assert len(FileSet(pydicom.dcmread(tmp_path / "DICOMDIR"))) == len(members) - 1


def _patched_dicomdir(old: bytes, new: bytes) -> bytes:
    raw = (DICOMDIR_SET / "DICOMDIR").read_bytes()
    assert raw.count(old) >= 1
    return raw.replace(old, new, 1)


@pytest.mark.parametrize("old,new", [
    # the root's first record offset points into the middle of nowhere
    (b"\x04\x00\x00\x12UL\x04\x00" + struct.pack("<I", 396), b"\x04\x00\x00\x12UL\x04\x00" + struct.pack("<I", 12345)),
    # the first record's "next" points back at itself: a loop
    (b"\x04\x00\x00\x14UL\x04\x00" + struct.pack("<I", 3126), b"\x04\x00\x00\x14UL\x04\x00" + struct.pack("<I", 396)),
], ids=["offset-nowhere", "loop"])
def test_dicomdir_with_broken_links_is_refused(old, new):
    data = make_zip([("DICOMDIR", _patched_dicomdir(old, new))])
    refused(sanitize_zip(data, copy_clean, allow_all, EngineLimits()), "corrupt")


def test_ultrasound_cine_zip():
    data = CINE_ZIP.read_bytes()
    v = sanitize_zip(data, engine_clean, sanitize_all, EngineLimits())
    assert v.refused is None, v.detail
    out = read_zip(v.output)
    assert list(out) == ["GREYSCALE_CINE.dcm"]
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        before = pydicom.dcmread(io.BytesIO(z.read("GREYSCALE_CINE.dcm")))
    after = pydicom.dcmread(io.BytesIO(out["GREYSCALE_CINE.dcm"]))
    assert "PATIENTFIVE" not in str(after.get("PatientName", ""))
    assert after.get("PatientBirthDate") != before.PatientBirthDate
    assert after.SOPInstanceUID != before.SOPInstanceUID
    assert after.PixelData == before.PixelData  # metadata only: the frames are untouched
    info = zipfile.ZipFile(io.BytesIO(v.output)).infolist()[0]
    assert info.date_time == FIXED and info.compress_type == zipfile.ZIP_DEFLATED


def test_dicom_with_tiff_preamble_is_cleaned_as_dicom():
    """CT_small.dcm as shipped starts with a TIFF header (PS3.10 lets the preamble be
    anything): it is a DICOM file, and must be cleaned as one."""
    shipped = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    assert shipped[:4] == b"II*\x00" and shipped[128:132] == b"DICM"
    v = sanitize(make_zip([("IM0001.dcm", shipped)]), engine_options())
    assert v.refused is None, v.detail
    cleaned = read_zip(v.output)["IM0001.dcm"]
    out = pydicom.dcmread(io.BytesIO(cleaned))
    assert out.SOPInstanceUID != pydicom.dcmread(io.BytesIO(shipped)).SOPInstanceUID
    assert cleaned[:128] == b"\0" * 128  # the preamble can hold anything: it goes


def test_nested_study_zip_through_the_engine():
    ct = dicom_bytes(get_testdata_file("CT_small.dcm"), PatientName="Doe^Archibald")
    inner = make_zip([("IM0001.dcm", ct)])
    v = sanitize(make_zip([("series1.zip", inner)]), engine_options())
    assert v.refused is None, v.detail
    cleaned = read_zip(read_zip(v.output)["series1.zip"])["IM0001.dcm"]
    assert b"Archibald" not in cleaned


# -- members: policy, refusals, pass-through --------------------------------------------


def test_allowed_text_member_passes_unchanged():
    text = b"Referral letter follows by post.\n"
    ct = dicom_bytes(get_testdata_file("CT_small.dcm"))
    calls = []

    def clean(data, hints):
        calls.append(data)
        return Verdict(format="dicom", content="dicom", output=b"cleaned", actions=["metadata_removed"])

    v = sanitize_zip(make_zip([("IM0001.dcm", ct), ("notes.txt", text)]), clean,
                     lambda kind: {"dicom": "sanitize", "other": "allow"}[kind], EngineLimits())
    assert v.refused is None, v.detail
    assert read_zip(v.output) == {"IM0001.dcm": b"cleaned", "notes.txt": text}
    assert calls == [ct]  # the text was never handed to the cleaner


def test_blocked_member_kind_refuses_the_whole_archive():
    ct = dicom_bytes(get_testdata_file("CT_small.dcm"))
    data = make_zip([("IM0001.dcm", ct), ("SMITH_JOHN.txt", b"whatever")])
    v = sanitize_zip(data, copy_clean, lambda kind: "sanitize" if kind == "dicom" else "block", EngineLimits())
    refused(v, "unsupported_format")
    assert "member 2 of 2" in v.detail and "SMITH" not in v.detail


def test_refused_member_refuses_the_archive_by_index_and_kind():
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

    def clean(data, hints):
        return Verdict(format="png", content="image", refused="corrupt", detail="the PNG is truncated")

    v = sanitize_zip(make_zip([("a.txt", b"x"), ("SMITH_JOHN_19650412.png", png)]), clean,
                     lambda kind: "sanitize" if kind == "image" else "allow", EngineLimits())
    refused(v, "corrupt")
    assert v.detail == "archive member 2 of 2 (image) was refused: the PNG is truncated"


def test_rebuilt_zip_has_no_comments_extra_fields_or_timestamps_and_keeps_order():
    extra = struct.pack("<HHB4s", 0x5455, 5, 1, struct.pack("<I", 1_600_000_000))  # "UT": mtime
    a = zipfile.ZipInfo("b/second.bin", date_time=(2023, 5, 17, 9, 30, 0))
    a.comment, a.extra, a.compress_type = b"scanned by Dr Jones", extra, zipfile.ZIP_DEFLATED
    stored = zipfile.ZipInfo("a/first.bin", date_time=(2023, 5, 17, 9, 31, 0))
    stored.compress_type = zipfile.ZIP_STORED
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.mkdir("b/")
        z.writestr(a, b"payload two" * 50)
        z.writestr(stored, b"payload one")
        z.comment = b"Export for J. Smith"
    v = sanitize_zip(buf.getvalue(), copy_clean, allow_all, EngineLimits())
    assert v.refused is None, v.detail
    with zipfile.ZipFile(io.BytesIO(v.output)) as z:
        infos = z.infolist()
        assert z.comment == b""
        assert [i.filename for i in infos] == ["b/", "b/second.bin", "a/first.bin"]
        assert [i.compress_type for i in infos[1:]] == [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED]
        assert z.read("b/second.bin") == b"payload two" * 50
        for i in infos:
            assert i.date_time == FIXED and i.comment == b"" and i.extra == b""
    assert b"Smith" not in v.output and b"Jones" not in v.output and b"UT\x05\x00" not in v.output
    assert v.removed["archive_comment"] == 2 and v.removed["archive_extra_field"] == 1
    assert v.actions == ["metadata_removed"]
    assert sanitize_zip(buf.getvalue(), copy_clean, allow_all, EngineLimits()).output == v.output  # deterministic


@pytest.mark.parametrize("name", ["../../etc/cron.d/job", "/etc/passwd", "C:/Windows/x.dcm", "a\\..\\..\\b.dcm",
                                  "ok/../../escape.dcm"])
def test_unsafe_member_path_is_refused(name):
    refused(sanitize_zip(make_zip([("fine.txt", b"x"), (name, b"y")]), copy_clean, allow_all, EngineLimits()),
            "corrupt")


def test_nul_in_member_name_is_refused():
    data = make_zip([("abcdef.txt", b"y")]).replace(b"abcdef", b"abc\x00ef")
    refused(sanitize_zip(data, copy_clean, allow_all, EngineLimits()), "corrupt")


def test_encrypted_member_is_refused():
    data = bytearray(make_zip([("IM0001.dcm", b"secret")], method=zipfile.ZIP_STORED))
    data[6] |= 1  # general purpose flag, local header
    cd = data.rindex(b"PK\x01\x02")
    data[cd + 8] |= 1  # and the central directory's
    v = sanitize_zip(bytes(data), copy_clean, allow_all, EngineLimits())
    refused(v, "unsupported_format")
    assert v.detail == "encrypted archive member"


# -- damaged archives --------------------------------------------------------------------


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.99])
def test_truncated_zip_is_refused(cut):
    data = make_zip([("a.bin", os.urandom(20_000)), ("b.bin", os.urandom(20_000))])
    refused(sanitize_zip(data[:int(len(data) * cut)], copy_clean, allow_all, EngineLimits()), "corrupt")


def test_crc_error_is_refused():
    data = bytearray(make_zip([("a.bin", b"A" * 1000)], method=zipfile.ZIP_STORED))
    data[30 + len("a.bin") + 500] ^= 0xFF  # one byte of the stored data
    refused(sanitize_zip(bytes(data), copy_clean, allow_all, EngineLimits()), "corrupt")


def test_not_a_zip_is_refused():
    refused(sanitize_zip(b"PK\x03\x04" + b"\x00" * 100, copy_clean, allow_all, EngineLimits()), "corrupt")


# -- bombs and limits ------------------------------------------------------------------------


def test_high_ratio_zip_bomb_is_refused():
    data = make_zip([("zeros.dcm", bytes(64 * 1024 * 1024))])  # 64 MiB of zeros: ~64 KiB deflated
    v = sanitize_zip(data, copy_clean, allow_all, EngineLimits())
    refused(v, "too_large")
    assert "zip bomb" in v.detail


def test_small_members_that_compress_well_are_fine():
    # A few KiB of DICOM padding compresses past 200:1 without being a bomb.
    v = sanitize_zip(make_zip([("pad.bin", bytes(500_000))]), copy_clean, allow_all, EngineLimits())
    assert v.refused is None, v.detail


def test_declared_sizes_that_lie_are_caught_while_inflating():
    data = bytearray(make_zip([("zeros.bin", bytes(8 * 1024 * 1024))]))
    # Declare 100 KiB uncompressed (a harmless-looking ratio) in both headers.
    data[22:26] = struct.pack("<I", 100 * 1024)
    cd = data.rindex(b"PK\x01\x02")
    data[cd + 24:cd + 28] = struct.pack("<I", 100 * 1024)
    v = sanitize_zip(bytes(data), copy_clean, allow_all, EngineLimits())
    assert v.refused in ("corrupt", "too_large") and v.output is None


def test_member_size_limit():
    data = make_zip([("big.bin", os.urandom(300_000))])
    refused(sanitize_zip(data, copy_clean, allow_all, EngineLimits(max_archive_member_bytes=200_000)), "too_large")


def test_member_count_bomb_is_refused():
    data = make_zip([(f"f{i}", b"") for i in range(10_001)], method=zipfile.ZIP_STORED)
    v = sanitize_zip(data, copy_clean, allow_all, EngineLimits())
    refused(v, "too_large")
    assert "10001 files" in v.detail


def _local(name: bytes, data: bytes, crc: int) -> bytes:
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, crc, len(data), len(data), len(name), 0) \
        + name + data


def _central(name: bytes, size: int, crc: int, offset: int) -> bytes:
    return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21, crc, size, size, len(name),
                       0, 0, 0, 0, 0, offset) + name


def _eocd(count: int, cd_size: int, cd_offset: int) -> bytes:
    return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, cd_size, cd_offset, 0)


def test_fully_overlapping_entries_bomb_is_refused():
    """Many central directory entries share one local file (one kernel, many members)."""
    import zlib

    kernel = b"x" * 4096
    crc = zlib.crc32(kernel)
    local = _local(b"k", kernel, crc)
    cd = b"".join(_central(f"m{i}".encode(), len(kernel), crc, 0) for i in range(50))
    data = local + cd + _eocd(50, len(cd), len(local))
    v = sanitize_zip(data, copy_clean, allow_all, EngineLimits())
    refused(v, "too_large")
    assert "overlap" in v.detail


def test_quoted_overlap_bomb_is_refused():
    """zbsm-style: member 1's data quotes member 2's local header and data."""
    import zlib

    inner = b"y" * 4096
    crc2 = zlib.crc32(inner)
    second = _local(b"b", inner, crc2)
    first = _local(b"a", second, zlib.crc32(second))  # stored data that *is* member 2
    cd = _central(b"a", len(second), zlib.crc32(second), 0) + _central(b"b", len(inner), crc2, 30 + 1)
    data = first + cd + _eocd(2, len(cd), len(first))
    v = sanitize_zip(data, copy_clean, allow_all, EngineLimits())
    refused(v, "too_large")
    assert "overlap" in v.detail


def test_nesting_depth():
    limits = EngineLimits(max_archive_depth=3)
    level = make_zip([("leaf.txt", b"leaf")])
    for _ in range(2):
        level = make_zip([("inner.zip", level)])
    ok = sanitize_zip(level, nested_clean(limits), sanitize_all, limits)  # a zip in a zip in a zip
    assert ok.refused is None, ok.detail
    v = sanitize_zip(make_zip([("inner.zip", level)]), nested_clean(limits), sanitize_all, limits)
    refused(v, "too_large")
    assert "nested more than 3 deep" in v.detail and "member 1 of 1 (archive)" in v.detail


def test_nested_archives_share_one_budget():
    # Each level stays under the per-archive limit; together they do not.
    limits = EngineLimits(max_archive_bytes=1_000_000, max_archive_ratio=1e9)
    inner = make_zip([("a.bin", bytes(400_000)), ("b.bin", bytes(400_000))])
    outer = make_zip([("one.zip", inner), ("two.zip", inner)])
    v = sanitize_zip(outer, nested_clean(limits), sanitize_all, limits)
    refused(v, "too_large")


# -- names -------------------------------------------------------------------------------------


def test_member_names_renamed_consistently_without_hints():
    data = make_zip([
        ("SMITH_JOHN_19650412/", b""),
        ("SMITH_JOHN_19650412/IM0001", b"1"),
        ("SMITH_JOHN_19650412/IM0002", b"2"),
        ("export/1.2.840.113619.2.55.3.604688.dcm", b"3"),  # an original SOP Instance UID
        ("export/Jane Doe 2024-01-05.txt", b"4"),
        ("export/IM0003.dcm", b"5"),
    ])
    v = sanitize_zip(data, copy_clean, allow_all, EngineLimits())
    assert v.refused is None, v.detail
    names = list(read_zip(v.output))
    folder = names[0]
    assert folder.endswith("/") and "SMITH" not in folder
    assert names[1:3] == [folder + "IM0001", folder + "IM0002"]
    assert names[3].startswith("export/") and names[3].endswith(".dcm") and "113619" not in names[3]
    assert names[4].startswith("export/") and "Jane" not in names[4] and names[4].endswith(".txt")
    assert names[5] == "export/IM0003.dcm"
    assert v.removed["archive_member_name"] == 3
    assert {f.kind for f in v.findings if f.source == "archive_name"} <= {"person_name", "date", "unique_id"}
    assert read_zip(v.output)[names[4]] == b"4"


def test_member_verdicts_add_up():
    from collections import Counter

    from scrubgate.engine.verdict import Finding

    def clean(data, hints):
        return Verdict(format="png", content="image", output=b"\x89PNG redacted",
                       actions=["metadata_removed", "pixels_redacted"], removed=Counter({"png_text": 2}),
                       findings=[Finding("person_name", "pixels", "ocr.name", (1, 2, 3, 4))])

    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    v = sanitize_zip(make_zip([("a.png", png), ("b.png", png)]), clean, sanitize_all, EngineLimits())
    assert v.refused is None, v.detail
    assert v.actions == ["metadata_removed", "pixels_redacted"]
    assert v.removed["png_text"] == 4
    assert [f.source for f in v.findings] == ["pixels", "pixels"]
