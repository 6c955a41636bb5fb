#!/usr/bin/env python3
"""Generate a corpus, score the sanitiser on it, write a dated report.

    .venv/bin/python -m evaluation.run [--seed 1] [--count-per-family K] [--out evaluation/results]
                                          [--options text=identifiers] [--quick] [--suffix S]
                                          [--judges rapidocr,easyocr]

Writes evaluation/results/quality-YYYY-MM-DD[-suffix].md and .json. The corpus goes
to evaluation/corpus-<seed>-<K>/ (git-ignored) and is reused when its
parameters and generator version match, together with its OCR caches (one per
judge), so a rerun only sanitises and re-reads the outputs. The EasyOCR judge
needs evaluation/.judge-venv, which this script builds with setup_judge.sh
when it is asked for (the default); `--judges rapidocr` needs no judge venv.
Exits 0 whether or not the targets are met: this is a benchmark, not a gate.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

from bench import common_machine

from . import common, generate, score
from .common import HERE, REPO, RESULTS, print_targets, write_report

QUICK_COUNT = 3  # x 7 families = 21 images
PACKAGES = ["scrubgate", "pillow", "numpy", "opencv-python-headless", "rapidocr", "onnxruntime", "zxing-cpp",
            "pillow-heif", "pydicom", "deid-data", "faker", "tesserocr", "pytesseract"]


def machine() -> dict:
    info = common_machine.machine(PACKAGES, (("tesseract", ["--version"]), ("exiftool", ["-ver"])))
    info["load_average"] = info.pop("load_average_at_start")  # the key the reports have always used
    return info


def corpus_for(seed: int, count: int, root: Path, fresh: bool) -> tuple[Path, float, bool]:
    """Generate (or reuse) the corpus for these parameters. Returns (dir, seconds, reused)."""
    d = root / f"corpus-{seed}-{count}"
    manifest = d / "corpus.json"
    if not fresh and manifest.is_file() and (d / "labels.jsonl").is_file():
        m = json.loads(manifest.read_text())
        if (m.get("generator_version") == generate.GENERATOR_VERSION and m.get("seed") == seed
                and m.get("count_per_family") == count and m.get("families") == generate.FAMILIES):
            print(f"corpus: reusing {d.relative_to(REPO) if d.is_relative_to(REPO) else d}", file=sys.stderr)
            return d, m.get("seconds", 0.0), True
    if d.exists():
        keep = {p.name: p.read_bytes() for p in d.glob("ocr-cache*.json")}
        shutil.rmtree(d)
        d.mkdir(parents=True)
        for name, blob in keep.items():  # keyed by pixel hash: still valid for whatever pixels recur
            (d / name).write_bytes(blob)
    t0 = time.monotonic()
    generate.generate(d, seed, count, generate.FAMILIES)
    return d, round(time.monotonic() - t0, 1), False


# --------------------------------------------------------------------------- report


def _fmt(v, unit=""):
    if v is None:
        return "–"
    return f"{v}{unit}"


def _table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def report_md(doc: dict) -> str:
    s = doc["summary"]
    m = doc["machine"]
    c = doc["corpus"]
    lines = [f"# scrubgate quality benchmark — {doc['date']}", ""]
    lines += ["## Summary", ""]
    rows = []
    for t in s["targets"]:
        val = t["value"]
        if t.get("of") is not None:
            val = f"{val} of {t['of']} legible before"
        met = {True: "met", False: "**missed**", None: "n/a"}[t["met"]]
        rows.append([t["target"], val, t["goal"], met + (f" ({t['note']})" if t.get("note") else "")])
    lines += [_table(["target", "value", "goal", "status"], rows), ""]
    o = s["outcomes"]
    ids = s["identifiers"]
    lines += [f"- Images: {o['images']} ({o['passed']} passed on, {o['blocked']} blocked by the engine"
              + (f": {', '.join(f'{k} {v}' for k, v in o['blocked_by_reason'].items())}" if o["blocked"] else "")
              + (f", {o['undecodable_output']} with undecodable output" if o["undecodable_output"] else "") + ").",
              f"- Identifiers labelled: {ids['identifiers']}; legible to the judges before sanitising: "
              f"{ids['legible_before']}; still legible after: {ids['leaked']} "
              f"({_fmt(ids['leak_rate_pct'], '%')}); on blocked images: {ids['on_blocked_images']}.",
              f"- **Files with an identifier still legible after: {ids['files_leaked']} of "
              f"{ids['files_legible_before']} ({_fmt(ids['files_leak_pct'], '%')})** — of the files with one legible "
              f"before ({ids['files']} files carry labelled identifiers).",
              f"- Judges: {_judges_line(doc)}.",
              f"- Engine findings overlapping a labelled identifier (recall): {_fmt(ids['recall_pct'], '%')}.",
              f"- Metadata: {s['metadata']['identifying_tags_before']} identifying tags in the inputs, "
              f"{s['metadata']['identifying_tags_after']} in the outputs "
              f"({s['metadata']['images_with_leaks']} images).",
              f"- Technical text: {s['technical']['kept']} of {s['technical']['legible_before']} legible strings "
              f"kept ({_fmt(s['technical']['kept_pct'], '%')}); mean unchanged pixels in their boxes "
              f"{_fmt(s['technical']['box_unchanged_mean'])}.",
              f"- Pixels changed outside identifier boxes: mean {_fmt(s['pixels_outside']['mean_pct'], '%')}, "
              f"p95 {_fmt(s['pixels_outside']['p95_pct'], '%')}, max {_fmt(s['pixels_outside']['max_pct'], '%')}; "
              f"{s['pixels_outside']['images_over_1pct']} images over 1%. Controls: max "
              f"{_fmt(s['controls']['max_pct'], '%')}, {s['controls']['findings_on_controls']} boxed findings.",
              f"- Time per image (sanitize only): median {_fmt(s['time']['median_s'], ' s')}, "
              f"p95 {_fmt(s['time']['p95_s'], ' s')}, max {_fmt(s['time']['max_s'], ' s')}.", ""]
    lines += ["## Run", "",
              f"- Command: `{doc['command']}`",
              f"- Engine options: `{json.dumps(doc['options'])}`"
              + (f" (ignored, not EngineOptions fields: {', '.join(doc['options_ignored'])})"
                 if doc["options_ignored"] else ""),
              f"- Corpus: seed {c['seed']}, {c['count_per_family']} per family, {c['images']} images, "
              f"families {', '.join(c['families'])}; {'reused' if c['reused'] else 'generated'} "
              f"({c['generate_seconds']} s). Directory `{c['dir']}`.",
              f"- Wall time: {doc['wall_seconds']} s (generation {c['generate_seconds'] if not c['reused'] else 0} s,"
              f" scoring {doc['score_seconds']} s incl. OCR judging).", ""]
    lines += ["## Machine", "",
              f"- CPU: {m.get('cpu')} — {m.get('cores')} cores ({m.get('cores_usable')} usable); RAM "
              f"{m.get('ram_gib')} GiB; load average at start {m.get('load_average')}",
              f"- OS: {m.get('os')}; Python {m.get('python')}; {m.get('tesseract')}; exiftool {m.get('exiftool')}",
              f"- git: {m.get('git')}",
              "- Packages: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v), ""]
    lines += ["## By family", ""]
    rows = []
    for fam, st in s["identifiers_by_family"].items():
        tk = s["technical_by_family"].get(fam, {})
        tm = s["time_by_family"].get(fam, {})
        rows.append([fam, st["identifiers"], st["legible_before"], st["leaked"], _fmt(st["leak_rate_pct"], "%"),
                     _files_cell(st), st["on_blocked_images"], st["ink_survival_median"],
                     _fmt(st["recall_pct"], "%"), _fmt(tk.get("kept_pct"), "%"), tm.get("median_s")])
    for fam in sorted(set(s["time_by_family"]) - set(s["identifiers_by_family"])):
        tm = s["time_by_family"][fam]
        rows.append([fam, 0, 0, 0, None, None, 0, None, None, None, tm.get("median_s")])
    lines += [_table(["family", "identifiers", "legible before", "legible after", "leak rate",
                      "files leaking / legible before", "on blocked", "ink survival (median)", "engine recall",
                      "technical kept", "median s"], rows), ""]
    lines += _judges_section(doc)
    lines += ["## By identifier kind", ""]
    rows = [[k, st["identifiers"], st["legible_before"], st["leaked"], _fmt(st["leak_rate_pct"], "%"),
             st["on_blocked_images"], st["ink_survival_median"], _fmt(st["recall_pct"], "%")]
            for k, st in s["identifiers_by_kind"].items()]
    lines += [_table(["kind", "identifiers", "legible before", "legible after", "leak rate", "on blocked",
                      "ink survival (median)", "engine recall"], rows), ""]
    lines += ["Names by source (person and physician names; `syllables` are made up and in no gazetteer):", ""]
    rows = [[k, st["identifiers"], st["legible_before"], st["leaked"], _fmt(st["leak_rate_pct"], "%"),
             _fmt(st["recall_pct"], "%")] for k, st in s["names_by_source"].items() if st["identifiers"]]
    lines += [_table(["name source", "names", "legible before", "legible after", "leak rate", "engine recall"],
                     rows), ""]
    lines += ["## Recognizers (findings with a box)", ""]
    if s["recognizers"]:
        rows = [[k, v["findings"], v["true_positives"], _fmt(v["precision_pct"], "%"), v["on_technical"],
                 v["on_context"], ", ".join(f"{a} {b}" for a, b in v["kinds"].items())]
                for k, v in s["recognizers"].items()]
        lines += [_table(["recognizer", "findings", "on an identifier", "precision", "on technical text",
                          "on labels/clutter", "kinds reported"], rows), ""]
    else:
        lines += ["No finding carried a box (no pixel recognizers ran).", ""]
    if s["metadata_findings"]:
        lines += ["Metadata findings (no box): " + ", ".join(f"{k} {v}" for k, v in s["metadata_findings"].items()),
                  ""]
    md = s["metadata"]
    lines += ["## Metadata", "",
              _table(["tag", "in inputs", "in outputs"],
                     [[t, md["before_by_tag"].get(t, 0), md["after_by_tag"].get(t, 0)]
                      for t in sorted(set(md["before_by_tag"]) | set(md["after_by_tag"]))]), ""]
    if o["blocked"]:
        lines += ["## Blocked", "", "Blocked images leak nothing but cost the clinician the upload.", "",
                  _table(["by format", "images"], [[k, v] for k, v in o["blocked_by_format"].items()]), ""]
    fails = s["failures"]
    lines += ["## Failures", "",
              "Kinds and boxes only (x, y, w, h in display pixels); identifier values are never written here.", ""]
    if not fails:
        lines += ["None."]
    order = ["identifier_legible", "metadata", "technical_lost", "pixels_outside", "control_changed", "blocked",
             "undecodable_output", "orientation_differs", "size_differs"]
    for typ in order:
        sel = [f for f in fails if f["type"] == typ]
        if not sel:
            continue
        lines += [f"### {typ} ({len(sel)})", ""]
        shown = sel[:150]
        for f in shown:
            extra = {k: v for k, v in f.items() if k not in ("type", "file", "family")}
            lines.append(f"- `{f['file']}` " + " ".join(f"{k}={v}" for k, v in extra.items()))
        if len(sel) > len(shown):
            lines.append(f"- … {len(sel) - len(shown)} more in the JSON")
        lines.append("")
    lines += ["## How to read this", "",
              "See `evaluation/README.md`. In short: an identifier *leaks* when an OCR judge (RapidOCR or EasyOCR, "
              "not the engine's Tesseract) can still read it after sanitising; only identifiers a judge could read "
              "before count. A file leaks when any of its identifiers does. "
              "`ultrasound_real` labels come from RapidOCR itself and are weaker.", ""]
    return "\n".join(lines)


def _files_cell(st: dict) -> str:
    return f"{st['files_leaked']}/{st['files_legible_before']} ({_fmt(st['files_leak_pct'], '%')})"


def _judges_line(doc: dict) -> str:
    names = list(doc["judges"])
    rule = "legible when either reads it" if len(names) > 1 else "the only OCR judge"
    return ", ".join(f"{n} (`{doc['judges'][n]['version']}`)" for n in names) + f"; {rule}"


def _judges_section(doc: dict) -> list[str]:
    """Per-judge counts on text identifiers, and what each judge alone adds."""
    per = doc["summary"]["judges"]
    ids = doc["summary"]["identifiers"]
    rows = []
    for name, st in per.items():
        js = doc["judges"][name]
        secs = (f"{js['seconds_median']} s median, {js['seconds_max']} s max over {js['images_read']} reads"
                if js["images_read"] else "all cached")
        several = len(per) > 1  # "only this judge" means nothing with one judge
        rows.append([name, st["legible_before"], st["legible_after"], st["leaked"], _fmt(st["leak_rate_pct"], "%"),
                     st["only_legible_before"] if several else None, st["only_leaked"] if several else None,
                     f"{st['files_leaked']}/{st['files_legible_before']}", secs])
    rows.append(["combined (either)", ids["legible_before"], "", ids["leaked"], _fmt(ids["leak_rate_pct"], "%"),
                 "", "", f"{ids['files_leaked']}/{ids['files_legible_before']}", ""])
    return ["## Judges", "",
            "Text identifiers only (barcodes and faces have their own judges; the combined row includes them). "
            "*Leaked* per judge: read by that judge before and after. *Only*: read by this judge and no other.", "",
            _table(["judge", "legible before", "legible after", "leaked", "leak rate", "only this judge before",
                    "leaks only this judge sees", "files leaking / legible before", "time per image read"], rows),
            ""]


def _rel(p: Path) -> str:
    try:
        return str(p.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count-per-family", type=int, default=None,
                    help=f"images per family (default {generate.DEFAULT_COUNT}; {QUICK_COUNT} with --quick)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--options", action="append", default=[],
                    help="EngineOptions as key=value, comma-separated or repeated (unknown fields are ignored)")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_COUNT} images per family; suffix 'quick'")
    ap.add_argument("--suffix", default=None, help="report name suffix: quality-DATE-SUFFIX.md")
    ap.add_argument("--corpus-root", type=Path, default=HERE, help="where corpus-<seed>-<K>/ lives")
    ap.add_argument("--fresh", action="store_true", help="regenerate the corpus even if it exists")
    ap.add_argument("--keep-outputs", type=Path, help="keep the sanitised files here")
    ap.add_argument("--judges", default=",".join(common.JUDGES),
                    help="OCR judges, comma-separated (default: %(default)s); easyocr builds "
                         "evaluation/.judge-venv on first use, rapidocr alone needs nothing more")
    a = ap.parse_args(argv)
    count = a.count_per_family or (QUICK_COUNT if a.quick else generate.DEFAULT_COUNT)
    suffix = a.suffix if a.suffix is not None else ("quick" if a.quick else "")
    judges = common.parse_judges(a.judges)
    t0 = time.monotonic()
    common.ensure_judges(judges)  # before generating: a judge that cannot run should fail fast
    info = machine()
    corpus, gen_s, reused = corpus_for(a.seed, count, a.corpus_root, a.fresh)
    scored = score.score(corpus, a.options, keep_outputs=a.keep_outputs, judges=judges)
    manifest = json.loads((corpus / "corpus.json").read_text())
    date = dt.date.today().isoformat()
    doc = {
        "date": date,
        "command": " ".join(shlex.quote(x) for x in [_rel(Path(sys.executable)), *sys.argv]),
        "machine": info,
        "corpus": {"seed": a.seed, "count_per_family": count, "families": manifest["families"],
                   "images": manifest["images"], "generator_version": manifest["generator_version"],
                   "dir": str(corpus.relative_to(REPO)) if corpus.is_relative_to(REPO) else str(corpus),
                   "reused": reused, "generate_seconds": gen_s},
        "options": scored["options"],
        "options_ignored": scored["options_ignored"],
        "judges": scored["judges"],
        "score_seconds": scored["score_seconds"],
        "wall_seconds": round(time.monotonic() - t0, 1),
        "summary": scored["summary"],
        "images": scored["images"],
    }
    md = write_report(a.out, f"quality-{date}" + (f"-{suffix}" if suffix else ""), doc, "images", report_md(doc))
    s = doc["summary"]
    print("", file=sys.stderr)
    print(f"quality: {manifest['images']} images in {doc['wall_seconds']} s "
          f"(sanitize median {s['time']['median_s']} s, p95 {s['time']['p95_s']} s)")
    print_targets(s["targets"])
    ids = s["identifiers"]
    print(f"  files with an identifier legible after: {ids['files_leaked']} of {ids['files_legible_before']} "
          f"({_fmt(ids['files_leak_pct'], '%')})")
    for name, st in s["judges"].items():
        alone = (f" (seen by no other judge: {st['only_legible_before']} before, {st['only_leaked']} after)"
                 if len(s["judges"]) > 1 else "")
        print(f"  judge {name}: {st['legible_before']} text identifiers legible before, {st['leaked']} after{alone}")
    o = s["outcomes"]
    print(f"  blocked by the engine: {o['blocked']} of {o['images']} images")
    print(f"report: {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
