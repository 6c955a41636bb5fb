"""DICOM files and zipped studies through the real gateway, judged by dcmtk and RapidOCR.

A clinician uploads a Secondary Capture (identifiers in the header, in a
private tag, in free text, in a nested sequence, and burned into the pixels)
and a zipped study to Discord through a running `scrubgate run`. The upstream
must receive files that dcmtk reads, with every planted value gone, the UIDs
remapped the same way for both files of the study, and nothing of a refused
file.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import stat
import subprocess
import zipfile

import pydicom
import pytest

from conftest import SCRUBGATE
from dicoms import BURNED_IN, dcmdump_ok, frame_image, leaks, secondary_capture
from test_gateway_e2e import multipart_files

URL = "https://discord.com/api/v9/channels/123/messages"
needs_dcmtk = pytest.mark.skipif(shutil.which("dcmdump") is None, reason="dcmtk is not installed")


def _upload(gateway, name: str, data: bytes, path: str = "/api/v9/channels/123/messages"):
    with gateway.client() as c:
        return c.post(f"https://discord.com{path}", files={"files[0]": (name, data, "application/octet-stream")})


def _received(upstream, path: str = "/api/v9/channels/123/messages") -> bytes:
    got = upstream.received(path)[-1]
    return multipart_files(got.body, got.headers["content-type"])["files[0]"][1]


@needs_dcmtk
def test_a_dicom_upload_arrives_de_identified_and_valid(gateway, upstream, tmp_path):
    from evaluation.judges import legible, read_text

    original = secondary_capture()
    r = _upload(gateway, "scan.dcm", original)
    assert r.status_code == 200, r.text
    cleaned = _received(upstream)
    assert leaks(cleaned) == []
    ok, why = dcmdump_ok(cleaned, tmp_path)
    assert ok, why
    ds = pydicom.dcmread(io.BytesIO(cleaned))
    before = pydicom.dcmread(io.BytesIO(original))
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.StudyInstanceUID != before.StudyInstanceUID and ds.StudyInstanceUID.startswith("2.25.")
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID != before.SOPInstanceUID
    after = read_text(frame_image(cleaned))
    assert [t for t in BURNED_IN if legible(t, after)] == [], after
    assert legible("Gain 54", after), after  # technical text stays
    metrics = gateway.metrics()
    assert re.search(r'scrubgate_identifiers_total\{kind="person_name",source="dicom_header"\} [1-9]', metrics)
    # The audit record says what kinds went, never the values.
    audit = gateway.audit_log.read_text()
    assert "KOWALSKI" not in audit.upper() and "RX0042113" not in audit


def test_b_files_of_one_study_keep_matching_uids_across_uploads(gateway, upstream):
    study, series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    new = []
    for _ in range(2):
        assert _upload(gateway, "im.dcm", secondary_capture(study, series, banner=False)).status_code == 200
        new.append(pydicom.dcmread(io.BytesIO(_received(upstream))))
    assert new[0].StudyInstanceUID == new[1].StudyInstanceUID != study
    assert new[0].SeriesInstanceUID == new[1].SeriesInstanceUID != series
    assert new[0].SOPInstanceUID != new[1].SOPInstanceUID
    # The key behind it was created for this deployment, readable by the gateway only.
    secret = gateway.confdir / "scrubgate-secret"
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600


@needs_dcmtk
def test_c_a_zipped_study_is_cleaned_member_by_member(gateway, upstream, tmp_path):
    study = pydicom.uid.generate_uid()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.comment = b"export for KOWALSKI"
        for i in range(3):
            z.writestr(f"KOWALSKI_ANNA_19620304/SERIES1/IM{i:04d}.dcm", secondary_capture(study, banner=i == 0))
    r = _upload(gateway, "study.zip", buf.getvalue())
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(_received(upstream))) as z:
        names = z.namelist()
        assert len(names) == 3 and not any("KOWALSKI" in n.upper() or "19620304" in n for n in names), names
        assert b"KOWALSKI" not in z.comment.upper()
        uids = set()
        for n in names:
            member = z.read(n)
            assert leaks(member) == [], n
            ok, why = dcmdump_ok(member, tmp_path)
            assert ok, why
            uids.add(pydicom.dcmread(io.BytesIO(member)).StudyInstanceUID)
    assert len(uids) == 1 and study not in uids


def test_d_a_fake_or_damaged_dicom_is_blocked_and_nothing_forwarded(gateway, upstream):
    path = "/api/v9/channels/404/messages"
    fake = b"\0" * 128 + b"DICM" + b"not really a dataset" * 20
    truncated = secondary_capture(banner=False)[:-5000]
    for name, data in (("fake.dcm", fake), ("cut.dcm", truncated)):
        r = _upload(gateway, name, data, path)
        assert r.status_code == 403, (name, r.status_code)
        assert "DICOM" in r.text or "damaged" in r.text.lower() or "cannot" in r.text.lower()
    assert upstream.received(path) == []


def test_e_a_zip_bomb_is_blocked(gateway, upstream):
    path = "/api/v9/channels/405/messages"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("bomb.dcm", b"\0" * (300 * 1024 * 1024))
    r = _upload(gateway, "study.zip", buf.getvalue(), path)
    assert r.status_code == 403
    assert upstream.received(path) == []
    audit = [json.loads(line) for line in gateway.audit_log.read_text().splitlines()]
    assert any(a.get("reason") == "too_large" for a in audit[-3:]), audit[-3:]


@needs_dcmtk
def test_f_sanitize_cli_cleans_a_dicom_file(tmp_path):
    src, out = tmp_path / "in.dcm", tmp_path / "out.dcm"
    src.write_bytes(secondary_capture(banner=False))
    secret = tmp_path / "secret"
    secret.write_text("00" * 32 + "\n")
    r = subprocess.run([*SCRUBGATE, "sanitize", str(src), "-o", str(out), "--json", "--secret-file", str(secret)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["input"]["format"] == "dicom"
    assert "KOWALSKI" not in r.stdout.upper()
    data = out.read_bytes()
    assert leaks(data) == []
    ok, why = dcmdump_ok(data, tmp_path)
    assert ok, why
    # Same secret, same new UIDs: the CLI agrees with a gateway that holds that key.
    out2 = tmp_path / "out2.dcm"
    subprocess.run([*SCRUBGATE, "sanitize", str(src), "-o", str(out2), "--secret-file", str(secret)],
                   check=True, capture_output=True, timeout=120)
    assert pydicom.dcmread(out2).SOPInstanceUID == pydicom.dcmread(out).SOPInstanceUID
