"""No identifier value in any log, whoever wrote the line.

Libraries warn about the file they read and quote it (pydicom: "Invalid value
for VR UI: '<the original UID>'"). Values are planted in malformed DICOM
elements and a malformed image; then stdout and stderr of `scrubgate
sanitize`, and the gateway's log, audit log and /metrics after a real upload,
are searched for them.
"""

from __future__ import annotations

import io
import subprocess
import sys
import warnings

import pydicom
from pydicom import config as dicom_config
from pydicom.dataelem import DataElement

from conftest import ROOT, SCRUBGATE
from dicoms import secondary_capture

# Each is invalid for its VR, so pydicom warns about it on reading, quoting it.
MALFORMED = {
    "StudyInstanceUID": ("UI", "1.2.826.0.1.3680043.PLANTED7731"),
    "PatientSex": ("CS", "zoutelande_plant"),
    "PatientAge": ("AS", "Q88PLANTED"),
    "PatientID": ("LO", "MRNPLANT" + "4" * 70),  # over LO's 64 characters
    "AccessionNumber": ("SH", "ACC\\PLANTED\\ACC9912345678"),
}
PLANTED = ["PLANTED7731", "zoutelande_plant", "Q88PLANTED", "MRNPLANT", "ACC9912345678"]


def malformed_dicom() -> bytes:
    ds = pydicom.dcmread(io.BytesIO(secondary_capture()))
    old = dicom_config.settings.writing_validation_mode
    dicom_config.settings.writing_validation_mode = dicom_config.IGNORE
    try:
        for keyword, (vr, value) in MALFORMED.items():
            tag = pydicom.datadict.tag_for_keyword(keyword)
            ds[tag] = DataElement(tag, vr, value)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
    finally:
        dicom_config.settings.writing_validation_mode = old
    return buf.getvalue()


def _found(text: str) -> list[str]:
    return [v for v in PLANTED if v.lower() in text.lower()]


def test_the_planted_values_really_provoke_quoting_warnings():
    """The judge is only honest if pydicom would quote the values when left alone."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = pydicom.dcmread(io.BytesIO(malformed_dicom()))
        for keyword in MALFORMED:
            getattr(ds, keyword)
    quoted = " ".join(str(w.message) for w in caught)
    assert len(_found(quoted)) >= 3, quoted


def test_sanitize_writes_the_kind_of_a_library_warning_never_its_text(tmp_path):
    src, out = tmp_path / "scan.dcm", tmp_path / "clean.dcm"
    src.write_bytes(malformed_dicom())
    for extra in ([], ["--json"]):
        r = subprocess.run([*SCRUBGATE, "sanitize", str(src), "-o", str(out), *extra],
                           capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert r.returncode in (0, 3), r.stderr
        assert _found(r.stdout + r.stderr) == [], r.stdout + r.stderr
        assert "pydicom" in r.stderr and "withheld" in r.stderr  # the kind is still told


def test_a_gateway_upload_leaves_no_value_in_log_audit_or_metrics(gateway, upstream):
    data = malformed_dicom()
    with gateway.client() as c:
        r = c.post("https://discord.com/api/v9/channels/123/messages",
                   files={"files[0]": ("scan.dcm", data, "application/dicom")})
    assert r.status_code in (200, 403), r.text
    assert _found(r.text) == []
    for name, text in (("gateway log", gateway.log()), ("audit log", gateway.audit_log.read_text()),
                       ("metrics", gateway.metrics())):
        assert _found(text) == [], name


def test_foreign_log_records_and_warnings_lose_their_text():
    """In-process: whatever library logs or warns, only its name and kind get out."""
    code = (
        "import logging, sys, warnings\n"
        "from scrubgate import logsafe\n"
        "logsafe.install()\n"
        "logging.basicConfig(stream=sys.stderr, level=logging.DEBUG)\n"
        "logging.getLogger('PIL.TiffImagePlugin').warning('tag 270 value %s', 'PLANTED7731')\n"
        "try:\n"
        "    raise ValueError('MRNPLANT')\n"
        "except ValueError:\n"
        "    logging.getLogger('pydicom').exception('bad %s', 'Q88PLANTED')\n"
        "warnings.warn('Invalid value zoutelande_plant')\n"
        "warnings.warn('Invalid value ACC9912345678')  # same kind and place: said once\n"
        "logging.getLogger('scrubgate.test').warning('own message kept')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert _found(r.stderr) == [], r.stderr
    assert "PIL.TiffImagePlugin: warning" in r.stderr and "pydicom: error" in r.stderr
    assert r.stderr.count("library warning: UserWarning") == 1
    assert "own message kept" in r.stderr
