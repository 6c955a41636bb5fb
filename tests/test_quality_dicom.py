"""The DICOM quality harness end to end on its quick corpus: the numbers cannot rot.

evaluation/run_dicom.py builds a corpus (two deid-data ultrasounds, three of
pydicom's test files in RLE, JPEG baseline and JPEG 2000 with identifiers
planted in the header and burned into the pixels, three generated secondary
captures including a cine), sanitises it and judges the output: every element
searched for every planted value, UIDs checked, frames read by RapidOCR,
dcmdump and pydicom for validity. The full run lives in evaluation/results/.

The corpus and the judge's OCR cache are kept in
evaluation/corpus-dicom-1-3-quick/ (git-ignored), so a rerun only sanitises
and reads the outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, *args: str) -> dict:
    from evaluation import run_dicom
    # RapidOCR alone, as in test_quality.py: the EasyOCR judge is for the full benchmark
    assert run_dicom.main(["--quick", "--out", str(tmp_path), "--judges", "rapidocr", *args]) == 0
    [report] = tmp_path.glob("quality-dicom-*.json")
    doc = json.loads(report.read_text())
    # reports name kinds and tag paths, never a planted value
    corpus = ROOT / doc["corpus"]["dir"]
    planted = {p["value"] for line in (corpus / "cases.jsonl").read_text().splitlines()
               for p in json.loads(line)["header_planted"] if len(p["value"]) >= 6}
    planted |= {p["text"] for line in (corpus / "cases.jsonl").read_text().splitlines()
                for p in json.loads(line)["pixels_planted"] if len(p["text"]) >= 6}
    text = report.read_text() + report.with_suffix(".md").read_text()
    assert planted and not [p for p in planted if p in text]
    return doc


def test_null_sanitiser_scores_badly(tmp_path):
    """Scoring the inputs as outputs must find every kind of leak: the harness's self-check."""
    doc = _run(tmp_path, "--null")
    s = doc["summary"]
    assert s["files"] >= 8 and s["delivered"] == s["files"]
    assert s["validity"]["valid"] == s["files"]  # the inputs themselves are valid DICOM
    # every file leaks its header; every planted value is found
    assert all(f["header"]["leaks"] and f["header"]["leaks"] == f["header"]["values"] for f in doc["files"])
    assert s["header"]["leaks"] > 100
    # every burned-in identifier the judge can read before is still there
    assert s["pixels"]["legible_before"] >= 25
    assert s["pixels"]["leaked"] == s["pixels"]["legible_before"]
    for fam in ("ultrasound_real", "transfer_syntax", "generated"):
        assert s["pixels"]["by_family"][fam]["legible_before"] > 0, fam
    # no UID was remapped
    assert s["uids"]["files_ok"] == 0 and s["uids"]["original_instance_uids_left"] > 0
    assert [t["met"] for t in s["targets"]] == [False, False, False, True, True]


def test_quick_dicom_quality(tmp_path):
    doc = _run(tmp_path)
    s = doc["summary"]
    assert s["delivered"] == s["files"], s["refused_by_reason"]
    assert s["validity"]["valid"] == s["delivered"], s["validity"]
    assert s["header"]["leaks"] == 0 and s["header"]["unjudged"] == 0, s["header"]
    assert s["uids"]["files_ok"] == s["delivered"] and s["uids"]["original_instance_uids_left"] == 0, s["uids"]
    assert all(c["split"] == 0 and c["distinct_groups_merged"] == 0 for c in s["uids"]["consistency"].values())
    gen = s["pixels"]["by_family"]["generated"]
    assert gen["legible_before"] >= 10  # planting worked
    assert gen["leaked"] == 0, gen
    # and on the real ultrasounds and pydicom's files too
    assert all(f["leaked"] == 0 for f in s["pixels"]["by_family"].values()), s["pixels"]["by_family"]
    assert s["pixels"]["files_unjudged"] == 0
