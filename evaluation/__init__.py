"""The evaluation suite: how much identifying text and metadata survives cleaning.

Not a benchmark of speed (that is bench/), but of quality, judged by engines
that are not the sanitiser's own. Run from the repository root:

    .venv/bin/python -m evaluation.run [--quick] [--seed N]        # images: generated corpus + real ultrasounds
    .venv/bin/python -m evaluation.run_dicom [--quick] [--seed N]  # DICOM: headers and burned-in text

- `generate.py` and its families (`ehr`, `chat`, `labels`, `letters`, `wristband`,
  `us_vendor`, `ultrasound_real`, `controls`, `faces`, rendered by `render.py` and
  photographed by `camera.py`/`paper.py`) build a labelled corpus: every planted
  value with its box;
- `score.py` cleans each file with the engine and asks the judges what is still
  legible inside the true boxes, what technical text survived, and how much
  changed elsewhere; `judges.py` and `common.py` hold the RapidOCR judge (also
  used by the pixel tests), `easyocr_judge.py` the EasyOCR one (its own venv:
  `setup_judge.sh`);
- `dicom_cases.py` and `dicom_score.py` do the same for DICOM files.

Reports go to evaluation/results/ (Markdown and JSON, with the machine).
"""
