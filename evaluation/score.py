#!/usr/bin/env python3
"""Score the sanitiser against a labelled corpus.

    python -m evaluation.score CORPUS_DIR [--options text=identifiers] [--json OUT]
    python -m evaluation.score CORPUS_DIR --judges rapidocr      # without the EasyOCR venv

For every image: run `scrubgate.engine.sanitize()` on the file's bytes (timed),
then judge the output with tools other than the sanitiser's own OCR:
RapidOCR and EasyOCR for text legibility (legible if either reads it),
zxing-cpp for barcodes, OpenCV's Haar cascade for faces, exiftool for
metadata, and pixel differences for collateral damage. Results carry kinds,
boxes, tag names, counts and which judge read what -- never an identifier's text.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from . import common
from .common import REPO, clip_box, gray, inter_area, iou, open_display, open_raw, pad_box, read_by

DIFF = 24  # grey levels: below this a pixel counts as unchanged (JPEG re-encoding noise)
LEGIBLE = 0.8  # similarity at which the judge counts a string as read
FACE_DETAIL = 0.25  # share of a face's structure (Laplacian variance at 48 px) that keeps it recognisable

# --------------------------------------------------------------------------- the engine


def load_engine():
    from scrubgate.engine import EngineOptions, sanitize

    return EngineOptions, sanitize


def parse_options(EngineOptions, pairs: list[str]) -> tuple[object, dict, list[str]]:
    """key=value pairs -> EngineOptions, passing only fields the dataclass has."""
    fields = {f.name: f for f in dataclasses.fields(EngineOptions)}
    kwargs, ignored = {}, []
    for pair in pairs:
        for item in filter(None, pair.split(",")):
            key, _, raw = item.partition("=")
            key = key.strip()
            if key not in fields:
                ignored.append(key)
                continue
            default = fields[key].default
            if isinstance(default, bool):
                value = raw.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                value = int(raw)
            elif isinstance(default, float):
                value = float(raw)
            else:
                value = raw.strip()
            kwargs[key] = value
    opts = EngineOptions(**kwargs)
    recorded = dataclasses.asdict(opts)
    recorded["dicom"].pop("secret", None)  # a key, not a setting: never written to a report
    return opts, recorded, ignored


# --------------------------------------------------------------------------- metadata

# Tag names that identify a person, place, device or moment (the families the
# targets name); matched on exiftool's tag name in any group.
ID_TAGS = {"Artist", "Copyright", "OwnerName", "CameraOwnerName", "SerialNumber", "InternalSerialNumber",
           "BodySerialNumber", "LensSerialNumber", "ImageDescription", "UserComment", "Comment", "XPComment",
           "XPAuthor", "XPTitle", "XPSubject", "XPKeywords", "DateTimeOriginal", "CreateDate", "ModifyDate",
           "DateTimeDigitized", "ImageUniqueID"}
PNG_STRUCTURE = {"ImageWidth", "ImageHeight", "BitDepth", "ColorType", "Compression", "Filter", "Interlace",
                 "Gamma", "SRGBRendering", "PixelsPerUnitX", "PixelsPerUnitY", "PixelUnits", "WhitePointX",
                 "WhitePointY", "RedX", "RedY", "GreenX", "GreenY", "BlueX", "BlueY", "BackgroundColor", "Palette",
                 "Transparency", "SignificantBits", "ProfileName", "ICC_Profile", "Warning", "AnimationFrames",
                 "AnimationPlays"}


def identifying(key: str) -> str | None:
    """exiftool -G0:1 key ("EXIF:IFD0:Artist") -> a report label, or None if harmless."""
    parts = key.split(":")
    if len(parts) < 2:
        return None
    tag, g0 = parts[-1], parts[0]
    g1 = parts[1] if len(parts) == 3 else g0
    if g0 in ("ExifTool", "Composite", "SourceFile") or g1 == "System":
        return None
    if g0 == "MakerNotes":
        return "MakerNotes"
    if g0 == "XMP":
        return f"{g1}:{tag}"
    if g0 == "IPTC":
        return f"IPTC:{tag}"
    if tag.startswith("GPS"):
        return tag
    if tag in ID_TAGS:
        return tag
    if g0 == "PNG" and tag not in PNG_STRUCTURE:
        return f"PNG text:{tag}"
    return None


def exiftool_batch(paths: list[Path]) -> dict[str, list[str]]:
    """{path: [identifying tag labels]} for many files, in as few exiftool runs as possible."""
    out: dict[str, list[str]] = {}
    for i in range(0, len(paths), 200):
        chunk = [str(p) for p in paths[i:i + 200]]
        proc = subprocess.run(["exiftool", "-j", "-a", "-u", "-G0:1", "-charset", "filename=utf8", *chunk],
                              capture_output=True)
        try:
            rows = json.loads(proc.stdout or b"[]")
        except ValueError:
            rows = []
        for row in rows:
            labels = sorted({lab for k in row if (lab := identifying(k))})
            out[row.get("SourceFile", "")] = labels
    return out


# --------------------------------------------------------------------------- pixels


def changed_mask(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(gray(a) - gray(b)) > DIFF


def box_slice(box, w, h):
    x, y, bw, bh = clip_box(box, w, h)
    return slice(y, y + bh), slice(x, x + bw), bw * bh


def exclusion_pad(box, kind: str = "") -> float:
    """How far around a labelled box a redaction may reach before it counts as collateral."""
    if kind == "face":  # hair, ears and neck go with the face
        return 6 + 0.35 * max(box[2], box[3])
    if kind == "barcode":  # the quiet zone belongs to the symbol
        return 6 + 0.15 * max(box[2], box[3])
    return 6 + 0.03 * box[3]


def align(orig_bytes: bytes, orig: Image.Image, out: Image.Image) -> tuple[Image.Image, Image.Image, str | None]:
    """Return (original, output) at the same size, plus a note when alignment was needed."""
    if out.size == orig.size:
        return orig, out, None
    raw = open_raw(orig_bytes)
    if out.size == raw.size:  # the output lost (or ignored) the EXIF orientation
        return raw, out, "orientation_differs"
    return orig, out.resize(orig.size, Image.BILINEAR), "size_differs"


# --------------------------------------------------------------------------- scoring one image


def finding_matches(fbox, ibox) -> bool:
    inter = inter_area(fbox, ibox)
    if inter <= 0:
        return False
    return (iou(fbox, ibox) > 0.1 or inter >= 0.5 * ibox[2] * ibox[3]
            or inter >= 0.5 * max(1, fbox[2] * fbox[3]))


def judge_text(r: dict, when: str, text: str, reads: dict, box) -> None:
    """Set r[legible_<when>], r[sim_<when>] (best of the judges) and r[read_<when>] (which judges read it)."""
    readers, sim = read_by(text, reads, box, LEGIBLE)
    r[f"legible_{when}"], r[f"sim_{when}"], r[f"read_{when}"] = bool(readers), sim, readers


def score_image(rec: dict, corpus: Path, sanitize, opts, judges: common.JudgePanel, outdir: Path) -> dict:
    path = corpus / rec["file"]
    data = path.read_bytes()
    t0 = time.perf_counter()
    verdict = sanitize(data, opts)
    seconds = time.perf_counter() - t0
    res = {"file": rec["file"], "family": rec["family"], "format": rec["format"], "is_control": rec["is_control"],
           "seconds": round(seconds, 4), "refused": verdict.refused, "actions": list(verdict.actions),
           "notes": []}
    findings = [{"kind": f.kind, "recognizer": f.recognizer, "source": f.source,
                 "box": list(f.box) if f.box is not None else None} for f in verdict.findings]
    res["findings"] = findings
    orig = open_display(data)
    ocr_before = judges.read(orig)
    codes_before = common.decode_barcodes(orig) if any(i["kind"] == "barcode" for i in rec["identifiers"]) else []
    ids = rec["identifiers"]
    id_res = []
    for ident in ids:
        box = ident["box"]
        r = {"kind": ident["kind"], "box": box, "name_source": ident.get("name_source"),
             "label_source": ident.get("label_source", rec.get("label_source"))}
        if ident["kind"] == "barcode":
            r["legible_before"] = common.barcode_readable(codes_before, ident["text"], box)
        elif ident["kind"] == "face":
            r["legible_before"] = common.face_visible(orig, box)
        else:
            judge_text(r, "before", ident["text"], ocr_before, box)
        r["found"] = any(f["box"] and finding_matches(f["box"], box) for f in findings)
        id_res.append(r)
    tech_res = []
    for t in rec["technical"]:
        tr = {"box": t["box"], "role": t.get("role", "technical")}
        judge_text(tr, "before", t["text"], ocr_before, t["box"])
        tech_res.append(tr)
    res["identifiers"] = id_res
    res["technical"] = tech_res
    if verdict.refused:
        res["status"] = "blocked"
        for r in id_res:
            r["legible_after"] = False
            r["blocked"] = True
            if "read_before" in r:
                r["read_after"] = []
        return res
    try:
        out_img = open_display(verdict.output)
    except Exception as e:  # an output nobody can open is a broken upload, not a clean one
        res["status"] = "undecodable_output"
        res["notes"].append(f"output does not decode: {type(e).__name__}")
        return res
    res["status"] = "passed"
    out_path = outdir / (rec["file"].replace("/", "__"))
    out_path.write_bytes(verdict.output)
    res["_out_path"] = str(out_path)
    base, out_img, note = align(data, orig, out_img)
    if note:
        res["notes"].append(note)
    a, b = np.asarray(base), np.asarray(out_img)
    identical = a.shape == b.shape and np.array_equal(a, b)
    res["pixels_identical"] = bool(identical)
    changed = np.zeros(a.shape[:2], bool) if identical else changed_mask(a, b)
    W, H = out_img.size

    def touched(box) -> bool:  # did anything change in or near this box?
        ys, xs, area = box_slice(pad_box(box, 0.5 * box[3] + 4), W, H)
        return bool(area and changed[ys, xs].any())

    # Re-read the output only when something labelled was touched; otherwise the
    # judge would see the very pixels it already read.
    same_view = base is orig and not any(touched(x["box"]) for x in ids + rec["technical"])
    ocr_after = ocr_before if same_view else judges.read(out_img)
    codes_after = None
    for ident, r in zip(ids, id_res):
        box = ident["box"]
        ys, xs, area = box_slice(box, W, H)
        r["ink_survival"] = round(1 - float(changed[ys, xs].mean()), 4) if area else None
        if ident["kind"] == "barcode":
            if codes_after is None:
                codes_after = codes_before if same_view else common.decode_barcodes(out_img)
            r["legible_after"] = common.barcode_readable(codes_after, ident["text"], box)
        elif ident["kind"] == "face":
            # Recognisable = the cascade still finds a face there *and* a quarter of its
            # structure survived: a well-blurred face is still detected as *a* face.
            if same_view:
                r["detail_kept"] = 1.0
                r["legible_after"] = r["legible_before"]
            else:
                before = common.face_detail(orig, box)
                r["detail_kept"] = round(common.face_detail(out_img, box) / before, 3) if before > 0 else None
                r["legible_after"] = (common.face_visible(out_img, box)
                                      and (r["detail_kept"] is None or r["detail_kept"] >= FACE_DETAIL))
        else:
            judge_text(r, "after", ident["text"], ocr_after, box)
        r["leaked"] = bool(r["legible_before"] and r["legible_after"])
    for t, r in zip(rec["technical"], tech_res):
        ys, xs, area = box_slice(t["box"], W, H)
        r["unchanged"] = round(1 - float(changed[ys, xs].mean()), 4) if area else None
        judge_text(r, "after", t["text"], ocr_after, t["box"])
    # collateral: changed pixels outside the (padded) identifier boxes and identifier lines;
    # with text=all every labelled string may go, so technical text and labels are excluded too
    keep = np.ones(changed.shape, bool)
    spared = [(i["box"], i["kind"]) for i in ids] + [(b, "") for b in rec.get("identifier_lines", [])]
    if getattr(opts, "text", None) == "all":
        spared += [(t["box"], "") for t in rec["technical"] + rec["context"]]
    for box, kind in spared:
        ys, xs, _ = box_slice(pad_box(box, exclusion_pad(box, kind)), W, H)
        keep[ys, xs] = False
    res["outside_changed"] = round(float(changed[keep].mean()), 6) if keep.any() else 0.0
    res["changed_total"] = round(float(changed.mean()), 6)
    return res


# --------------------------------------------------------------------------- aggregation


def _pct(n, d):
    return round(100.0 * n / d, 1) if d else None


def _quantile(xs, q):
    return round(float(np.quantile(xs, q)), 4) if xs else None


def file_stats(sel: list[tuple[dict, dict]]) -> dict:
    """File-level leak measure: of the files with an identifier legible before, how many still
    show one after (any kind, any judge)."""
    before = {res["file"] for res, r in sel if r.get("legible_before")}
    leaked = {res["file"] for res, r in sel if r.get("leaked")}
    return {"files": len({res["file"] for res, _ in sel}), "files_legible_before": len(before),
            "files_leaked": len(leaked), "files_leak_pct": _pct(len(leaked), len(before))}


def judge_stats(rows: list[tuple[dict, dict]], names) -> dict:
    """Per OCR judge, on text identifiers: what it reads alone, and what only it reads.

    `leaked` is this judge reading an identifier both before and after (the number a
    one-judge harness would report); `only_*` count what the other judges missed."""
    text = [(res, r) for res, r in rows if "read_before" in r]
    out = {}
    for j in names:
        before = [(res, r) for res, r in text if j in r["read_before"]]
        after = [(res, r) for res, r in text if j in r.get("read_after", [])]
        leaked = [(res, r) for res, r in before if j in r.get("read_after", [])]
        out[j] = {"text_identifiers": len(text), "legible_before": len(before), "legible_after": len(after),
                  "leaked": len(leaked), "leak_rate_pct": _pct(len(leaked), len(before)),
                  "only_legible_before": sum(r["read_before"] == [j] for _, r in text),
                  "only_leaked": sum(bool(r.get("leaked")) and r.get("read_after") == [j] for _, r in text),
                  "files_legible_before": len({res["file"] for res, _ in before}),
                  "files_leaked": len({res["file"] for res, _ in leaked})}
    return out


def aggregate(results: list[dict], records: list[dict], meta_before: dict, meta_after: dict,
              options: dict, judges=None) -> dict:
    by_file = {r["file"]: r for r in records}
    s: dict = {}
    # identifiers
    rows = [(res, r) for res in results for r in res.get("identifiers", [])]

    def id_stats(sel):
        n = len(sel)
        lb = [r for _, r in sel if r.get("legible_before")]
        leaked = [r for r in lb if r.get("leaked")]
        blocked = [r for _, r in sel if r.get("blocked")]
        ink = [r["ink_survival"] for r in lb if r.get("ink_survival") is not None]
        found = [r for _, r in sel if r.get("found")]
        return {"identifiers": n, "legible_before": len(lb), "leaked": len(leaked),
                "leak_rate_pct": _pct(len(leaked), len(lb)), "on_blocked_images": len(blocked),
                "ink_survival_median": _quantile(ink, 0.5), "found_by_engine": len(found),
                "recall_pct": _pct(len(found), n), **file_stats(sel)}

    s["identifiers"] = id_stats(rows)
    s["identifiers_by_family"] = {f: id_stats([x for x in rows if x[0]["family"] == f])
                                  for f in sorted({x[0]["family"] for x in rows})}
    s["identifiers_by_kind"] = {k: id_stats([x for x in rows if x[1]["kind"] == k])
                                for k in sorted({x[1]["kind"] for x in rows})}
    s["judges"] = judge_stats(rows, judges or [])
    s["names_by_source"] = {src: id_stats([x for x in rows if x[1]["kind"] in ("person_name", "physician_name")
                                           and (x[1].get("name_source") or "").startswith(src)])
                            for src in ("faker", "syllables", "mixed")}
    # technical text
    trows = [(res, t) for res in results if res.get("status") == "passed" for t in res.get("technical", [])]
    tlb = [t for _, t in trows if t["legible_before"]]
    kept = [t for t in tlb if t.get("legible_after")]
    unchanged = [t["unchanged"] for _, t in trows if t.get("unchanged") is not None]
    s["technical"] = {"strings": len(trows), "legible_before": len(tlb), "kept": len(kept),
                      "kept_pct": _pct(len(kept), len(tlb)),
                      "box_unchanged_mean": round(float(np.mean(unchanged)), 4) if unchanged else None}
    s["technical_by_family"] = {}
    for f in sorted({res["family"] for res, _ in trows}):
        sel = [t for res, t in trows if res["family"] == f and t["legible_before"]]
        kept_f = sum(bool(t.get("legible_after")) for t in sel)
        s["technical_by_family"][f] = {"legible_before": len(sel), "kept": kept_f, "kept_pct": _pct(kept_f, len(sel))}
    # pixels outside identifier boxes
    passed = [r for r in results if r.get("status") == "passed"]
    nonctl = [r["outside_changed"] for r in passed if not r["is_control"]]
    ctl = [r["changed_total"] for r in passed if r["is_control"]]
    s["pixels_outside"] = {"images": len(nonctl), "mean_pct": _pct(float(np.mean(nonctl)), 1) if nonctl else None,
                           "p95_pct": _pct(_quantile(nonctl, 0.95) or 0, 1) if nonctl else None,
                           "max_pct": _pct(max(nonctl), 1) if nonctl else None,
                           "images_over_1pct": sum(v > 0.01 for v in nonctl)}
    s["controls"] = {"images": len([r for r in results if r["is_control"]]), "scored": len(ctl),
                     "mean_pct": _pct(float(np.mean(ctl)), 1) if ctl else None,
                     "max_pct": _pct(max(ctl), 1) if ctl else None,
                     "images_over_1pct": sum(v > 0.01 for v in ctl),
                     "findings_on_controls": sum(len([f for f in r["findings"] if f["box"]]) for r in results
                                                 if r["is_control"])}
    # metadata
    planted = Counter()
    before, after = Counter(), Counter()
    leak_images = 0
    for res in results:
        rec = by_file[res["file"]]
        planted.update(rec["planted_metadata"])
        before.update(meta_before.get(res["file"], []))
        if res.get("status") == "passed":
            tags = meta_after.get(res["file"], [])
            after.update(tags)
            leak_images += bool(tags)
    s["metadata"] = {"identifying_tags_before": sum(before.values()), "identifying_tags_after": sum(after.values()),
                     "images_with_leaks": leak_images, "after_by_tag": dict(after.most_common()),
                     "before_by_tag": dict(before.most_common()), "planted_by_tag": dict(planted.most_common())}
    # blocking and timing
    status = Counter(r.get("status") for r in results)
    refusals = Counter(r["refused"] for r in results if r.get("refused"))
    by_fmt = Counter(r["format"] for r in results if r.get("refused"))
    s["outcomes"] = {"images": len(results), "passed": status.get("passed", 0), "blocked": status.get("blocked", 0),
                     "undecodable_output": status.get("undecodable_output", 0),
                     "blocked_by_reason": dict(refusals), "blocked_by_format": dict(by_fmt),
                     "blocked_by_family": dict(Counter(r["family"] for r in results if r.get("refused")))}
    secs = [r["seconds"] for r in results]
    s["time"] = {"median_s": _quantile(secs, 0.5), "p95_s": _quantile(secs, 0.95),
                 "max_s": round(max(secs), 3) if secs else None, "total_s": round(sum(secs), 2)}
    s["time_by_family"] = {f: {"median_s": _quantile([r["seconds"] for r in results if r["family"] == f], 0.5),
                               "p95_s": _quantile([r["seconds"] for r in results if r["family"] == f], 0.95)}
                           for f in sorted({r["family"] for r in results})}
    # per-recognizer precision, per-kind recall (pixel findings with boxes)
    rec_stats: dict = defaultdict(lambda: {"findings": 0, "true_positives": 0, "on_technical": 0, "on_context": 0,
                                          "kinds": Counter()})
    meta_findings = Counter()
    for res in results:
        rec = by_file[res["file"]]
        for f in res["findings"]:
            if not f["box"]:
                meta_findings[f["recognizer"]] += 1
                continue
            st = rec_stats[f["recognizer"]]
            st["findings"] += 1
            st["kinds"][f["kind"]] += 1
            if any(finding_matches(f["box"], i["box"]) for i in rec["identifiers"]):
                st["true_positives"] += 1
            elif any(finding_matches(f["box"], t["box"]) for t in rec["technical"]):
                st["on_technical"] += 1
            elif any(finding_matches(f["box"], c["box"]) for c in rec["context"]):
                st["on_context"] += 1
    s["recognizers"] = {k: {"findings": v["findings"], "true_positives": v["true_positives"],
                            "precision_pct": _pct(v["true_positives"], v["findings"]),
                            "on_technical": v["on_technical"], "on_context": v["on_context"],
                            "kinds": dict(v["kinds"])}
                        for k, v in sorted(rec_stats.items())}
    s["metadata_findings"] = dict(meta_findings.most_common())
    # targets
    text_all = options.get("text") == "all"
    ids_ = s["identifiers"]
    s["targets"] = [
        {"target": "legible identifiers left", "value": ids_["leaked"], "of": ids_["legible_before"],
         "goal": "0", "met": ids_["leaked"] == 0},
        {"target": "identifying metadata tags in outputs", "value": s["metadata"]["identifying_tags_after"],
         "goal": "0", "met": s["metadata"]["identifying_tags_after"] == 0},
        {"target": "technical text kept (%)", "value": s["technical"]["kept_pct"], "goal": ">= 90",
         "met": None if text_all else (s["technical"]["kept_pct"] or 0) >= 90,
         "note": "n/a with text=all" if text_all else ""},
        {"target": "pixels changed outside identifier boxes (max %, per image)"
                   + (" -- and outside all labelled text, with text=all" if text_all else ""),
         "value": s["pixels_outside"]["max_pct"], "goal": "< 1", "met": (s["pixels_outside"]["max_pct"] or 0) < 1},
        {"target": "pixels changed on controls (max %)", "value": s["controls"]["max_pct"], "goal": "< 1",
         "met": (s["controls"]["max_pct"] or 0) < 1},
    ]
    # failures (never identifier text)
    fails = []
    for res in results:
        for r in res.get("identifiers", []):
            if r.get("leaked"):
                fail = {"type": "identifier_legible", "file": res["file"], "family": res["family"],
                        "kind": r["kind"], "box": r["box"], "ink_survival": r.get("ink_survival")}
                if "read_after" in r:
                    fail["read_by"] = ",".join(r["read_after"])
                fails.append(fail)
        tags = meta_after.get(res["file"], []) if res.get("status") == "passed" else []
        if tags:
            fails.append({"type": "metadata", "file": res["file"], "family": res["family"], "tags": tags})
        for t in res.get("technical", []):
            if t["legible_before"] and res.get("status") == "passed" and not t.get("legible_after"):
                fails.append({"type": "technical_lost", "file": res["file"], "family": res["family"],
                              "box": t["box"], "role": t["role"]})
        if res.get("status") == "passed":
            v = res["changed_total"] if res["is_control"] else res["outside_changed"]
            if v > 0.01:
                fails.append({"type": "control_changed" if res["is_control"] else "pixels_outside",
                              "file": res["file"], "family": res["family"], "pct": _pct(v, 1)})
        if res.get("status") == "blocked":
            fails.append({"type": "blocked", "file": res["file"], "family": res["family"],
                          "format": res["format"], "reason": res["refused"]})
        if res.get("status") == "undecodable_output":
            fails.append({"type": "undecodable_output", "file": res["file"], "family": res["family"]})
        for n in res.get("notes", []):
            if n in ("orientation_differs", "size_differs"):
                fails.append({"type": n, "file": res["file"], "family": res["family"]})
    s["failures"] = fails
    return s


# --------------------------------------------------------------------------- driver


def score(corpus: Path, option_pairs: list[str] | None = None, progress: bool = True,
          keep_outputs: Path | None = None, judges=common.JUDGES) -> dict:
    """Score every image of `corpus`; `judges` names the OCR judges (see common.JUDGES)."""
    EngineOptions, sanitize = load_engine()
    opts, opts_dict, ignored = parse_options(EngineOptions, option_pairs or [])
    if ignored and progress:
        print(f"score: EngineOptions has no field(s) {', '.join(ignored)}; ignored", file=sys.stderr)
    records = [json.loads(line) for line in (corpus / "labels.jsonl").read_text().splitlines() if line.strip()]
    panel = common.JudgePanel(corpus, judges)
    tmp = None
    if keep_outputs:
        outdir = keep_outputs
        outdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="scrubgate-quality-")
        outdir = Path(tmp.name)
    results = []
    t0 = time.monotonic()
    try:
        for i, rec in enumerate(records, 1):
            res = score_image(rec, corpus, sanitize, opts, panel, outdir)
            results.append(res)
            if progress:
                el = time.monotonic() - t0
                print(f"\rscore: {i}/{len(records)} {rec['family']:<16} sanitize {res['seconds']:.2f}s  "
                      f"elapsed {el:.0f}s ", end="", file=sys.stderr, flush=True)
            if i % 20 == 0:
                panel.save()
        panel.save()
        if progress:
            print(file=sys.stderr)
        meta_before_raw = exiftool_batch([corpus / r["file"] for r in records])
        meta_before = {str(Path(k).relative_to(corpus)) if k.startswith(str(corpus)) else k: v
                       for k, v in meta_before_raw.items()}
        outs = {r["_out_path"]: r["file"] for r in results if r.get("_out_path")}
        meta_after = {outs[k]: v for k, v in exiftool_batch([Path(p) for p in outs]).items() if k in outs}
    finally:
        panel.close()
        if tmp:
            tmp.cleanup()
    for r in results:
        r.pop("_out_path", None)
    summary = aggregate(results, records, meta_before, meta_after, opts_dict, panel.names)
    return {"options": opts_dict, "options_ignored": ignored, "judges": panel.stats(), "summary": summary,
            "images": results, "score_seconds": round(time.monotonic() - t0, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--options", action="append", default=[], help="EngineOptions as key=value (repeatable)")
    ap.add_argument("--json", type=Path, help="write the full results here")
    ap.add_argument("--keep-outputs", type=Path, help="keep the sanitised files in this directory")
    ap.add_argument("--judges", default=",".join(common.JUDGES),
                    help="OCR judges, comma-separated (default: %(default)s; rapidocr alone needs no judge venv)")
    a = ap.parse_args(argv)
    judges = common.parse_judges(a.judges)
    common.ensure_judges(judges)
    out = score(a.corpus.resolve(), a.options, keep_outputs=a.keep_outputs, judges=judges)
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))
    print(json.dumps({"targets": out["summary"]["targets"], "identifiers": out["summary"]["identifiers"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
