#!/usr/bin/env python3
"""Build the DICOM corpus, score the sanitiser on it, write a dated report.

    .venv/bin/python -m evaluation.run_dicom [--quick] [--seed 1] [--generated N] [--out evaluation/results]
                                                [--suffix S] [--null] [--fresh] [--keep-outputs DIR]
                                                [--judges rapidocr,easyocr]

Writes evaluation/results/quality-dicom-YYYY-MM-DD[-suffix].md and .json. The corpus
goes to evaluation/corpus-dicom-<seed>-<N>[-quick]/ (git-ignored, N = generated
files) and is reused while its parameters and generator version match, together
with the judges' OCR caches. Burned-in text is legible when RapidOCR or
EasyOCR reads it (`--judges rapidocr` needs no judge venv; EasyOCR's is built
by setup_judge.sh on first use). `--null` scores a sanitiser that returns its input
unchanged (the harness's self-check: it must miss every target but delivery and
validity). Exits 0 whether or not the targets are met: a benchmark, not a gate.
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

from . import common
from . import dicom_cases
from . import dicom_score
from .common import HERE, REPO, RESULTS, print_targets, write_report


def machine() -> dict:
    from .run import machine as image_machine  # the image harness's machine record

    info = image_machine()
    for tool in ("dcmdump", "dcmcjpeg"):
        info[tool] = shutil.which(tool) or "not found"
    return info


def corpus_dir(root: Path, seed: int, generated: int, quick: bool) -> Path:
    return root / (f"corpus-dicom-{seed}-{generated}" + ("-quick" if quick else ""))


def corpus_for(root: Path, seed: int, generated: int, quick: bool, fresh: bool) -> tuple[Path, float, bool]:
    d = corpus_dir(root, seed, generated, quick)
    manifest = d / "corpus.json"
    if not fresh and manifest.is_file() and (d / "cases.jsonl").is_file():
        m = json.loads(manifest.read_text())
        if (m.get("generator_version") == dicom_cases.GENERATOR_VERSION and m.get("seed") == seed
                and m.get("generated") == generated and m.get("quick") == quick
                and m.get("dcmcjpeg") == (shutil.which("dcmcjpeg") is not None)):
            print(f"corpus: reusing {_rel(d)}", file=sys.stderr)
            return d, m.get("seconds", 0.0), True
    keep = {}
    if d.exists():
        keep = {p.name: p.read_bytes() for p in d.glob("ocr-cache-dicom*.json")}
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for name, blob in keep.items():  # keyed by the judged pixels: still valid for whatever recurs
        (d / name).write_bytes(blob)
    t0 = time.monotonic()
    dicom_cases.build(d, seed, generated, quick)
    return d, round(time.monotonic() - t0, 1), False


# --------------------------------------------------------------------------- report


def _fmt(v, unit=""):
    return "–" if v is None else f"{v}{unit}"


def _table(headers, rows) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _rel(p: Path) -> str:
    try:
        return str(p.absolute().relative_to(REPO))
    except ValueError:
        return str(p)


def _case_row(r: dict) -> list:
    h, px = r["header"], r["pixels"]
    if not r["delivered"]:
        return [f"`{r['file']}`", r["family"], r["ts_in"], "–", r["frames"], f"**refused: {r['refused']}**",
                f"– /{h['values']}", "–", f"– /{px['identifiers']}", "–", "–", r["seconds"]]
    uid = r.get("uids")
    uid_s = "–" if uid is None else ("ok" if uid["ok"] else "**" + ", ".join(
        [f"{k} {v}" for k, v in uid["checks"].items() if v != "ok"]
        + ([f"{uid['left']} old left"] if uid["left"] else [])) + "**")
    leaks = h.get("leaks")
    leak_s = "–" if leaks is None else (f"**{leaks}**" if leaks else "0") + f"/{h['values']}"
    if "legible_before" in px:
        pix_s = (f"**{px['leaked']}**" if px["leaked"] else "0") + f"/{px['legible_before']}" + (
            f" ({px['identifiers']} planted)" if px["identifiers"] != px["legible_before"] else "")
    else:
        pix_s = "not judged" if px["identifiers"] else "–"
    v = r.get("valid", {})
    val_s = "ok" if v.get("ok") else "**" + ("dcmdump " if v.get("dcmdump") is False else "") + (
        "pydicom" if v.get("pydicom") is False else "") + "**"
    if v.get("dcmdump") is None and v.get("ok"):
        val_s = "ok (pydicom only)"
    ts_out = r.get("ts_out") or "–"
    ts = r["ts_in"] + ("" if not r.get("ts_changed") else f" → **{ts_out}**")
    return [f"`{r['file']}`", r["family"], ts, r.get("photometric_out") or "–", r["frames"], "yes", leak_s,
            uid_s, pix_s, val_s, r.get("identity_removed") or "–", r["seconds"]]


def _files_cell(st: dict) -> str:
    return f"{st['files_leaked']}/{st['files_legible_before']} ({_fmt(st['files_leak_pct'], '%')})"


def _judges_section(doc: dict) -> list[str]:
    """Per-judge counts on burned-in identifiers, and what each judge alone adds."""
    px = doc["summary"]["pixels"]
    rows = []
    for name, st in px["judges"].items():
        js = doc["judges"][name]
        secs = (f"{js['seconds_median']} s median, {js['seconds_max']} s max over {js['images_read']} reads"
                if js["images_read"] else "all cached")
        several = len(px["judges"]) > 1  # "only this judge" means nothing with one judge
        rows.append([name, st["legible_before"], st["legible_after"], st["leaked"],
                     st["only_legible_before"] if several else None, st["only_leaked"] if several else None,
                     f"{st['files_leaked']}/{st['files_legible_before']}", secs])
    rows.append(["combined (either)", px["legible_before"], "", px["leaked"], "", "",
                 f"{px['files_leaked']}/{px['files_legible_before']}", ""])
    return ["## Judges", "",
            "*Leaked* per judge: read by that judge before and after. *Only*: read by this judge and no other.", "",
            _table(["judge", "legible before", "legible after", "leaked", "only this judge before",
                    "leaks only this judge sees", "files leaking / legible before", "time per frame read"], rows),
            ""]


def report_md(doc: dict) -> str:
    s, m, c = doc["summary"], doc["machine"], doc["corpus"]
    L = [f"# scrubgate DICOM quality benchmark — {doc['date']}", ""]
    if doc["sanitizer"] == "null":
        L += ["**Self-check run: the sanitiser is the null sanitiser (input returned unchanged).** Every target "
              "but delivery and validity must be missed; if one is met, the harness is broken.", ""]
    L += ["## Summary", ""]
    rows = []
    for t in s["targets"]:
        val = f"{t['value']} of {t['of']} legible before" if t.get("of") is not None else t["value"]
        rows.append([t["target"], val, t["goal"], {True: "met", False: "**missed**", None: "n/a"}[t["met"]]])
    L += [_table(["target", "value", "goal", "status"], rows), ""]
    h, u, px, v, o = s["header"], s["uids"], s["pixels"], s["validity"], s["other"]
    L += [f"- Files: {s['files']}; delivered {s['delivered']}"
          + (f"; refused: {', '.join(f'{k} {n}' for k, n in s['refused_by_reason'].items())}"
             if s["refused_by_reason"] else "") + ".",
          f"- Header: {h['values_searched']} identifying values searched ({h['values_skipped_short']} too short to "
          f"search), {h['leaks']} found in outputs, in {h['files_with_leaks']} files"
          + (f"; by kind: {', '.join(f'{k} {n}' for k, n in h['by_kind'].items())}" if h["by_kind"] else "") + ".",
          f"- UIDs: {u['files_ok']}/{u['files_checked']} files pass every check; original instance UIDs left: "
          f"{u['original_instance_uids_left']} (in {u['files_with_original_uids']} files); study groups split: "
          f"{u['consistency']['study']['split']} of {u['consistency']['study']['groups_with_several_files']}, series "
          f"groups split: {u['consistency']['series']['split']} of "
          f"{u['consistency']['series']['groups_with_several_files']}; distinct studies merged: "
          f"{u['consistency']['study']['distinct_groups_merged']}"
          + (f"; failed checks: {', '.join(f'{k} {n}' for k, n in u['failed_checks'].items())}"
             if u["failed_checks"] else "") + ".",
          f"- Burned-in: {px['identifiers']} identifiers planted in delivered files, {px['legible_before']} legible "
          f"to the judges before, {px['leaked']} still legible after; {px['planted_on_refused_files']} on refused "
          f"files; technical strings kept {px['technical_kept']} of {px['technical_legible_before']}.",
          f"- **Files with a burned-in identifier still legible after: {px['files_leaked']} of "
          f"{px['files_legible_before']} ({_fmt(px['files_leak_pct'], '%')})** — of the files with one legible "
          f"before.",
          "- Judges: " + ", ".join(f"{n} (`{j['version']}`)" for n, j in doc["judges"].items())
          + ("; legible when either reads it." if len(doc["judges"]) > 1 else "."),
          f"- Validity: {v['valid']} valid; dcmdump failed {v['dcmdump_failed']}, skipped {v['dcmdump_skipped']} "
          f"(warnings {v['dcmdump_warnings']}); pydicom failed to decode {v['pydicom_failed']}.",
          f"- PatientIdentityRemoved = YES in {o['identity_removed_yes']} of {s['delivered']}; de-identification "
          f"method recorded in {o['deid_method_present']}; transfer syntax changed in {o['ts_changed']}; "
          f"geometry changed in {o['geometry_changed']}; private elements left in {o['files_with_private_left']}; "
          f"overlay/curve groups left in {o['files_with_overlays_left']}.",
          f"- Time per file (sanitize only): median {_fmt(s['time']['median_s'], ' s')}, p95 "
          f"{_fmt(s['time']['p95_s'], ' s')}, max {_fmt(s['time']['max_s'], ' s')}; "
          + ", ".join(f"{f} median {t['median_s']} s (max {t['max_s']} s)" for f, t in s["time"]["by_family"].items())
          + ".", ""]
    L += ["## Run", "",
          f"- Command: `{doc['command']}`",
          f"- Sanitiser: {doc['sanitizer']} via {doc['route'] or '–'}",
          f"- Corpus: seed {c['seed']}, {c['generated']} generated{' (quick selection)' if c['quick'] else ''}, "
          f"{c['cases']} files; {'reused' if c['reused'] else 'generated'} ({c['generate_seconds']} s). "
          f"Directory `{c['dir']}`. JPEG re-encoding: {'dcmcjpeg' if c['dcmcjpeg'] else 'Pillow (baseline only)'}.",
          f"- Wall time: {doc['wall_seconds']} s (scoring {doc['score_seconds']} s incl. OCR judging).", ""]
    L += ["## Machine", "",
          f"- CPU: {m.get('cpu')} — {m.get('cores')} cores ({m.get('cores_usable')} usable); RAM "
          f"{m.get('ram_gib')} GiB; load average at start {m.get('load_average')}",
          f"- OS: {m.get('os')}; Python {m.get('python')}; {m.get('tesseract')}; dcmdump {m.get('dcmdump')}",
          f"- git: {m.get('git')}",
          "- Packages: " + ", ".join(f"{k} {val}" for k, val in m["packages"].items() if val), ""]
    L += ["## Per file", "",
          "Header leaks: values found / values searched. Burned-in: identifiers still legible / legible before "
          "(frames 0, middle, last). PIR: PatientIdentityRemoved.", ""]
    L += [_table(["file", "family", "transfer syntax", "photometric out", "frames", "delivered", "header leaks",
                  "UIDs", "burned-in", "valid", "PIR", "s"], [_case_row(r) for r in doc["files"]]), ""]
    L += ["## Burned-in by family and kind", ""]
    rows = [[f, st["identifiers"], st["legible_before"], st["leaked"], _files_cell(st)]
            for f, st in px["by_family"].items()]
    rows += [[f"kind: {k}", st["identifiers"], st["legible_before"], st["leaked"], _files_cell(st)]
             for k, st in px["by_kind"].items()]
    L += [_table(["", "planted", "legible before", "legible after", "files leaking / legible before"], rows), ""]
    L += _judges_section(doc)
    L += ["## Header leaks", "", "Kinds and tag paths only; values are never written here.", ""]
    leaked = [(r["file"], lk) for r in doc["files"] for lk in r["header"].get("leaked", [])]
    if not leaked:
        L += ["None."]
    else:
        if h["found_in"]:
            L += ["Found in (top-level element): " + ", ".join(f"{k} {n}" for k, n in h["found_in"].items()), ""]
        for f, lk in leaked[:200]:
            L.append(f"- `{f}` {lk['kind']} planted in {', '.join(lk['planted_in'])}; found in "
                     f"{', '.join(lk['found_in'])} (matched {', '.join(lk['matched'])})")
        if len(leaked) > 200:
            L.append(f"- … {len(leaked) - 200} more in the JSON")
    L += [""]
    issues = [r for r in doc["files"] if not r["delivered"] or r.get("notes") or r.get("pixel_note")
              or (r.get("valid") and not r["valid"].get("ok"))]
    L += ["## Notes, refusals and invalid outputs", ""]
    if not issues:
        L += ["None."]
    for r in issues:
        bits = []
        if not r["delivered"]:
            bits.append(f"refused {r['refused']}: {r['detail']}")
        val = r.get("valid") or {}
        if val and not val.get("ok"):
            bits.append(f"invalid: dcmdump {val.get('dcmdump')} ({val.get('first_error') or 'no E: line'}), "
                        f"pydicom {val.get('pydicom')} ({val.get('pydicom_error') or ''})")
        if r.get("pixel_note"):
            bits.append(f"corpus: {r['pixel_note']}")
        bits += r.get("notes", [])
        L.append(f"- `{r['file']}`: " + "; ".join(bits))
    L += ["", "## How to read this", "",
          "See `evaluation/README.md` (DICOM section). In short: a header value *leaks* when it can be found anywhere "
          "in the output (any element at any depth, file meta, private elements decoded from bytes, raw bytes "
          "outside the pixel data; names also by component, IDs also without separators, dates as YYYYMMDD). "
          "A burned-in identifier leaks when RapidOCR or EasyOCR (not the engine's Tesseract) can read it in "
          "frame 0, the middle or the last frame of the output; only identifiers a judge could read in the input "
          "count. "
          "`ultrasound_real` burned-in labels were written by hand from RapidOCR's reading (dicom_labels.json).", ""]
    return "\n".join(L)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"2 ultrasounds, 3 transfer syntaxes, {dicom_cases.QUICK_GENERATED} generated; suffix 'quick'")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--generated", type=int, default=None,
                    help=f"generated files (default {dicom_cases.DEFAULT_GENERATED}; "
                         f"{dicom_cases.QUICK_GENERATED} with --quick)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--suffix", default=None, help="report name suffix: quality-dicom-DATE-SUFFIX.md")
    ap.add_argument("--corpus-root", type=Path, default=HERE)
    ap.add_argument("--fresh", action="store_true", help="rebuild the corpus even if it exists")
    ap.add_argument("--keep-outputs", type=Path, help="keep the sanitised files here")
    ap.add_argument("--null", action="store_true", help="self-check: score a sanitiser that changes nothing")
    ap.add_argument("--only", action="append", help="score only files whose path contains this (repeatable)")
    ap.add_argument("--judges", default=",".join(common.JUDGES),
                    help="OCR judges, comma-separated (default: %(default)s); easyocr builds "
                         "evaluation/.judge-venv on first use, rapidocr alone needs nothing more")
    a = ap.parse_args(argv)
    judges = common.parse_judges(a.judges)
    generated = a.generated if a.generated is not None else (
        dicom_cases.QUICK_GENERATED if a.quick else dicom_cases.DEFAULT_GENERATED)
    suffix = a.suffix if a.suffix is not None else "-".join(
        x for x in ("quick" if a.quick else "", "null" if a.null else "") if x)
    t0 = time.monotonic()
    common.ensure_judges(judges)  # before building: a judge that cannot run should fail fast
    info = machine()
    corpus, gen_s, reused = corpus_for(a.corpus_root, a.seed, generated, a.quick, a.fresh)
    manifest = json.loads((corpus / "corpus.json").read_text())
    sanitizer = dicom_score.NullSanitizer() if a.null else dicom_score.Sanitizer()
    scored = dicom_score.score(corpus, sanitizer, keep_outputs=a.keep_outputs, only=a.only, judges=judges)
    date = dt.date.today().isoformat()
    doc = {
        "date": date,
        "command": " ".join(shlex.quote(x) for x in [_rel(Path(sys.executable)), *sys.argv]),
        "machine": info,
        "corpus": {"seed": a.seed, "generated": generated, "quick": a.quick, "cases": manifest["cases"],
                   "generator_version": manifest["generator_version"], "dir": _rel(corpus), "reused": reused,
                   "generate_seconds": gen_s, "dcmcjpeg": manifest.get("dcmcjpeg")},
        "sanitizer": scored["sanitizer"], "route": scored["route"],
        "judges": scored["judges"],
        "score_seconds": scored["score_seconds"],
        "wall_seconds": round(time.monotonic() - t0, 1),
        "summary": scored["summary"],
        "files": scored["files"],
    }
    md = write_report(a.out, f"quality-dicom-{date}" + (f"-{suffix}" if suffix else ""), doc, "files",
                      report_md(doc))
    s = doc["summary"]
    print("", file=sys.stderr)
    print(f"quality-dicom ({doc['sanitizer']}): {s['files']} files in {doc['wall_seconds']} s "
          f"(sanitize median {s['time']['median_s']} s, max {s['time']['max_s']} s)")
    print_targets(s["targets"], " legible before")
    px = s["pixels"]
    print(f"  files with a burned-in identifier legible after: {px['files_leaked']} of {px['files_legible_before']}")
    for name, st in px["judges"].items():
        alone = (f" (seen by no other judge: {st['only_legible_before']} before, {st['only_leaked']} after)"
                 if len(px["judges"]) > 1 else "")
        print(f"  judge {name}: {st['legible_before']} burned-in identifiers legible before, "
              f"{st['leaked']} after{alone}")
    print(f"report: {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
