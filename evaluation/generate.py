#!/usr/bin/env python3
"""Generate the labelled synthetic corpus for the quality harness.

    python -m evaluation.generate --out DIR --seed N [--count-per-family K] [--families a,b]

Writes image files under DIR/<family>/ and DIR/labels.jsonl, one record per
image: file, family, format, identifiers [{kind, text, box:[x,y,w,h], ...}],
technical [{text, box, role}], context (labels and clutter that are neither),
identifier_lines (whole text lines that carry an identifier), planted_metadata
(exiftool tag names), is_control. Boxes are in the final image's display
coordinates (EXIF orientation applied). Deterministic per seed: every image
draws from its own RNG seeded by (seed, family, index).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from . import camera
from . import chat
from . import common  # noqa: F401  (registers the HEIF opener)
from . import controls
from . import ehr
from . import faces
from . import identifiers as ids
from . import labels as printed_labels
from . import letters
from . import paper
from . import plant
from . import render
from . import ultrasound_real
from . import us_vendor
from . import wristband

GENERATOR_VERSION = 3
FAMILIES = ["screen_crisp", "screen_photo", "screenshot", "wristband", "face", "control", "ultrasound_real",
            "ehr_banner", "chat", "label_photo", "letter_photo", "us_vendor", "screen_4k"]
DEFAULT_COUNT = 14  # x 13 families = 182 images; --quick (3 per family) = 39
EXT = {"jpeg": "jpg", "heic": "heic", "png": "png", "webp": "webp", "gif": "gif", "tiff": "tiff", "bmp": "bmp"}


def seed_for(seed: int, family: str, index: int) -> int:
    return int(hashlib.sha256(f"{seed}:{family}:{index}".encode()).hexdigest()[:15], 16)


def _owner(rng: random.Random) -> str:
    p = ids.make_patient(rng)
    return f"{p.given} {p.family}"


def _when(rng: random.Random) -> dt.datetime:
    return dt.datetime(2023, 1, 1) + dt.timedelta(seconds=rng.randint(0, 3 * 365 * 86400))


def _labels_from_page(pg: render.Page) -> dict:
    return {"identifiers": pg.identifiers, "technical": pg.technical, "context": pg.context,
            "identifier_lines": pg.identifier_lines}


def _photo_of(img: Image.Image, labels: dict, rng: random.Random, **kw) -> tuple[Image.Image, dict, dict]:
    """Photograph `img` and carry every label box along; labels pushed out of frame are dropped."""
    groups = {k: [r["box"] for r in labels[k]] for k in ("identifiers", "technical", "context")}
    groups["identifier_lines"] = labels["identifier_lines"]
    photo, mapped, applied = camera.photograph_screen(img, groups, rng, **kw)
    out = {}
    dropped = 0
    for k in ("identifiers", "technical", "context"):
        out[k] = []
        for rec, box in zip(labels[k], mapped[k]):
            if box is None:
                dropped += k == "identifiers"
                continue
            out[k].append({**rec, "box": box})
    out["identifier_lines"] = [b for b in mapped["identifier_lines"] if b]
    applied.pop("screen_quad", None)
    applied["identifiers_out_of_frame"] = dropped
    return photo, out, applied


# Stored pixels for an EXIF orientation, given the displayed image: exif_transpose undoes these.
STORE_ROTATED = {1: None, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}

# Which photos get a hard condition (camera.CONDITIONS): every third photo is ordinary, the others cycle
# through the conditions, offset per family so that even --quick (indices 0-2) meets all of them.
CONDITION_OFFSET = {"screen_photo": 0, "wristband": 1, "label_photo": 2, "chat": 3, "letter_photo": 4,
                    "us_vendor": 0, "ehr_banner": 2}


def condition_for(family: str, index: int) -> str | None:
    if index % 3 == 0:
        return None
    k = index - index // 3 - 1
    return camera.CONDITIONS[(k + CONDITION_OFFSET.get(family, 0)) % len(camera.CONDITIONS)]


def _save_photo(img: Image.Image, path_stem: Path, rng: random.Random, heic_share: float,
                allow_rotate: bool = True, orientation: int | None = None,
                condition: str | None = None) -> tuple[Path, str, list[str], list, dict]:
    """Save a phone photo (JPEG or HEIC) with phone EXIF.

    `img` is the photo as displayed. It may be stored sideways with EXIF Orientation 6 or 8 (forced by
    `orientation`, else 20% of JPEGs when `allow_rotate`); label boxes stay in displayed pixels.
    The "jpeg60" condition saves a JPEG at quality 60.
    """
    fmt = "heic" if rng.random() < heic_share else "jpeg"
    if condition == "jpeg60" or orientation in (6, 8):
        fmt = "jpeg"
    if orientation is None:
        orientation = rng.choice([6, 6, 8]) if (allow_rotate and fmt == "jpeg" and rng.random() < 0.2) else 1
    owner, when = _owner(rng), _when(rng)
    exif, tags = plant.phone_exif(rng, when, owner, orientation, full=rng.random() < 0.8)
    raw = img.transpose(STORE_ROTATED[orientation]) if STORE_ROTATED[orientation] is not None else img
    path = path_stem.with_suffix("." + EXT[fmt])
    q = 60 if condition == "jpeg60" else rng.randint(60, 92)
    planted = plant.save(raw, path, fmt, rng, exif=exif, exif_tags=tags, owner=owner, when=when, quality=q)
    jobs = []
    if fmt == "jpeg" and rng.random() < 0.2:
        assignments, iptc = plant.iptc_assignments(owner, rng.choice(["Leeds", "Utrecht", "Lyon", "Köln"]))
        jobs.append((str(path), assignments))
        planted += iptc
    return path, fmt, planted, jobs, {"quality": q, "orientation": orientation}


# --------------------------------------------------------------------------- families

# Formats by index, so that even a small corpus covers every format the engine must handle.
CRISP_FORMATS = ["png", "tiff", "png", "jpeg", "png", "png", "webp", "png"]
SCREENSHOT_FORMATS = ["png", "gif", "bmp", "webp", "tiff", "png", "png", "png"]


def _save_page(pg, meta, rng, stem: Path, index: int, formats, plant_chance: float, qualities):
    """Write a rendered page in the format its turn calls for, maybe with metadata planted."""
    labels = _labels_from_page(pg)
    fmt = formats[index % len(formats)]
    path = stem.with_suffix("." + EXT[fmt])
    planted = plant.save(pg.img, path, fmt, rng, owner=_owner(rng), when=_when(rng),
                         plant=rng.random() < plant_chance, quality=rng.randint(*qualities))
    return path, fmt, labels, planted, [], meta


def gen_screen_crisp(rng, nrng, stem: Path, index: int):
    pg, meta = render.screen(rng, nrng)
    return _save_page(pg, meta, rng, stem, index, CRISP_FORMATS, 0.3, (90, 97))


def gen_screen_photo(rng, nrng, stem: Path, index: int):
    pg, meta = render.screen(rng, nrng)
    cond = condition_for("screen_photo", index)
    photo, labels, applied = _photo_of(pg.img, _labels_from_page(pg), rng, condition=cond)
    path, fmt, planted, jobs, extra = _save_photo(photo, stem, rng, heic_share=0.2, condition=cond)
    meta.update(applied, **extra)
    return path, fmt, labels, planted, jobs, meta


def gen_screenshot(rng, nrng, stem: Path, index: int):
    pg, meta, p = ehr.screenshot(rng, nrng, with_face=False)
    return _save_page(pg, meta, rng, stem, index, SCREENSHOT_FORMATS, 0.9, (75, 95))


def gen_wristband(rng, nrng, stem: Path, index: int):
    p = ids.make_patient(rng)
    cond = condition_for("wristband", index)
    img, pg, lines, meta = wristband.photograph_band(rng, p, condition=cond)
    labels = {k: [r for r in getattr(pg, k) if r["box"]] for k in ("identifiers", "technical", "context")}
    labels["identifier_lines"] = lines
    path, fmt, planted, jobs, extra = _save_photo(img, stem, rng, heic_share=0.15, condition=cond)
    meta.update(extra)
    return path, fmt, labels, planted, jobs, meta


def gen_face(rng, nrng, stem: Path, index: int):
    """Faces: a portrait photo, a chart screenshot with the patient photo, or a photo of that chart."""
    kind = rng.choice(["portrait", "chart", "chart_photo"])
    for attempt in range(6):
        sub = random.Random(rng.randrange(2**31))
        subn = np.random.default_rng(sub.randrange(2**31))
        if kind == "portrait":
            W, H = sub.choice([(1200, 1600), (1080, 1440), (1280, 960)])
            bgimg = camera.background(subn, W, H, sub.choice(["wall", "office"]))
            tile = int(min(W, H) * sub.uniform(0.45, 0.8))
            face, box = faces.face_tile(sub, tile)
            x, y = (W - tile) // 2 + sub.randint(-W // 10, W // 10), (H - tile) // 2 + sub.randint(-H // 10, H // 10)
            canvas = Image.fromarray(bgimg)
            canvas.paste(face, (x, y))
            a, applied = camera.photometric(np.asarray(canvas), subn, None, 0.7)
            img = Image.fromarray(a)
            labels = {"identifiers": [{"kind": "face", "text": "", "box": [x + box[0], y + box[1], box[2], box[3]]}],
                      "technical": [], "context": [], "identifier_lines": []}
            meta = {"layout": "face_portrait", **applied}
        else:
            pg, meta, p = ehr.screenshot(sub, subn, with_face=True)
            labels = _labels_from_page(pg)
            img = pg.img
            if kind == "chart_photo":
                img, labels, applied = _photo_of(img, labels, sub, max_rot=5.0, strength=0.7)
                meta.update(applied)
            meta["layout"] = f"face_{meta['layout']}"
        fboxes = [r["box"] for r in labels["identifiers"] if r["kind"] == "face"]
        if fboxes and all(common.face_visible(img, b) for b in fboxes):
            for r in labels["identifiers"]:
                if r["kind"] == "face":
                    r["label_source"] = "haar-verified"
            break
    meta["face_attempts"] = attempt + 1
    if kind == "chart":
        fmt = sub.choice(["png", "png", "webp"])
        path = stem.with_suffix("." + EXT[fmt])
        planted = plant.save(img, path, fmt, sub, owner=_owner(sub), when=_when(sub), quality=90)
        return path, fmt, labels, planted, [], meta
    path, fmt, planted, jobs, extra = _save_photo(img, stem, sub, heic_share=0.1)
    meta.update(extra)
    return path, fmt, labels, planted, jobs, meta


def gen_control(rng, nrng, stem: Path, index: int):
    img, meta, photographic = controls.control(rng)
    labels = {"identifiers": [], "technical": [], "context": [], "identifier_lines": []}
    if photographic:
        path, fmt, planted, jobs, extra = _save_photo(img, stem, rng, heic_share=0.15)
        meta.update(extra)
        return path, fmt, labels, planted, jobs, meta
    fmt = rng.choice(["png", "png", "jpeg", "webp"])
    path = stem.with_suffix("." + EXT[fmt])
    planted = plant.save(img, path, fmt, rng, owner=_owner(rng), when=_when(rng), plant=rng.random() < 0.5,
                         quality=rng.randint(80, 95))
    return path, fmt, labels, planted, [], meta


_US_SOURCES: list | None = None


def gen_ultrasound_real(rng, nrng, stem: Path, index: int):
    global _US_SOURCES
    if _US_SOURCES is None:
        _US_SOURCES = [(name, img, ultrasound_real.auto_label(img)) for name, img in ultrasound_real.load_sources()]
    if not _US_SOURCES:
        return None
    n = len(_US_SOURCES)
    src = index // 2 if index < 2 * n else index % n
    crisp = index < 2 * n and index % 2 == 0
    name, img, labels = _US_SOURCES[src]
    labels = json.loads(json.dumps(labels))
    meta = {"layout": "ultrasound_real", "source": name, "variant": "crisp" if crisp else "photo"}
    if crisp:
        path = stem.with_suffix(".png")
        img.save(path, "PNG")
        return path, "png", labels, [], [], meta
    photo, labels, applied = _photo_of(img, labels, rng)
    path, fmt, planted, jobs, extra = _save_photo(photo, stem, rng, heic_share=0.0)
    meta.update(applied, **extra)
    return path, fmt, labels, planted, jobs, meta


# --------------------------------------------------------------------------- the broader looks

BANNER_FORMATS = ["png", "jpeg", "png", "webp", "png", "gif", "png"]
CHAT_FORMATS = ["png", "jpeg", "png", "webp", "png"]
VENDOR_FORMATS = ["png", "jpeg", "bmp", "png", "tiff"]
K4_FORMATS = ["png", "png", "jpeg", "webp"]
LETTER_SIZES = [(1500, 2000), (1536, 2048), (1440, 1920), (1200, 1600)]
UHD = (3840, 2160)


def _photo_screen(pg, meta, rng, stem: Path, family: str, index: int, orientation=None, **kw):
    """A crisp page photographed off its monitor (or phone), with the family's condition."""
    cond = condition_for(family, index)
    photo, labels, applied = _photo_of(pg.img, _labels_from_page(pg), rng, condition=cond, **kw)
    path, fmt, planted, jobs, extra = _save_photo(photo, stem, rng, heic_share=0.1, orientation=orientation,
                                                  condition=cond)
    meta.update(applied, **extra, variant="photo")
    return path, fmt, labels, planted, jobs, meta


def _paper_labels(pg, fn, size, meta) -> dict:
    labels = paper.map_page(pg, fn, size)
    meta["identifiers_out_of_frame"] = labels.pop("_dropped")
    return labels


def gen_ehr_banner(rng, nrng, stem: Path, index: int):
    """EHR screens with a coloured patient band; every fourth photographed."""
    pg, meta, p = ehr.banner_screen(rng, nrng)
    if index % 4 == 3:
        return _photo_screen(pg, meta, rng, stem, "ehr_banner", index, max_rot=6.0,
                             size=rng.choice([(1600, 1200), (2000, 1500), (1920, 1440)]))
    return _save_page(pg, meta, rng, stem, index, BANNER_FORMATS, 0.6, (80, 95))


def gen_chat(rng, nrng, stem: Path, index: int):
    """Messenger screenshots; every fifth is a portrait phone photo of the phone, stored sideways."""
    pg, meta, p = chat.screenshot(rng, nrng)
    if index % 5 == 4:
        return _photo_screen(pg, meta, rng, stem, "chat", index, orientation=rng.choice([6, 8]), max_rot=5.0,
                             size=rng.choice([(1200, 1600), (1080, 1440)]))
    return _save_page(pg, meta, rng, stem, index, CHAT_FORMATS, 0.7, (70, 92))


def gen_label_photo(rng, nrng, stem: Path, index: int):
    """Printed labels photographed: round a specimen tube, on a request form, a sheet of stickers."""
    p = ids.make_patient(rng)
    cond = condition_for("label_photo", index)
    kind = ["tube", "form", "sheet"][index % 3]
    orientation = None
    if kind == "tube":
        pg = printed_labels.specimen_label(rng, p)
        photo, fn, applied = paper.photograph_tube(pg.img, rng, condition=cond)
    else:
        pg = printed_labels.request_form(rng, p) if kind == "form" else printed_labels.label_sheet(rng, p)
        photo, fn, applied = paper.photograph_sheet(pg.img, rng, strength=0.75, condition=cond, max_rot=8.0,
                                                    crop_chance=0.1 if kind == "form" else 0.3, fill=(0.78, 0.97))
        if photo.height > photo.width and rng.random() < 0.6:
            orientation = rng.choice([6, 8])
    meta = {"layout": f"label_{kind}", "site": p.site, "lang": p.lang, **applied}
    labels = _paper_labels(pg, fn, photo.size, meta)
    path, fmt, planted, jobs, extra = _save_photo(photo, stem, rng, heic_share=0.15, orientation=orientation,
                                                  condition=cond)
    meta.update(extra)
    return path, fmt, labels, planted, jobs, meta


def gen_letter_photo(rng, nrng, stem: Path, index: int):
    """Phone photos of printed letters and forms (serif, names in the prose), mostly stored sideways."""
    pg, meta, p = letters.document(rng)
    cond = condition_for("letter_photo", index)
    photo, fn, applied = paper.photograph_sheet(pg.img, rng, size=rng.choice(LETTER_SIZES), strength=0.6,
                                                condition=cond, crop_chance=0.25, fill=(0.8, 0.98), max_rot=7.0)
    meta.update(applied)
    labels = _paper_labels(pg, fn, photo.size, meta)
    orientation = [6, 8, None][index % 3]
    path, fmt, planted, jobs, extra = _save_photo(photo, stem, rng, heic_share=0.15, orientation=orientation,
                                                  condition=cond)
    meta.update(extra)
    return path, fmt, labels, planted, jobs, meta


def gen_us_vendor(rng, nrng, stem: Path, index: int):
    """Vendor ultrasound consoles, yellow/green on black, name on the line of settings; every third photographed."""
    pg, meta, p = us_vendor.screen(rng, nrng)
    if index % 3 == 2:
        return _photo_screen(pg, meta, rng, stem, "us_vendor", index,
                             size=rng.choice([(1600, 1200), (1440, 1080), (2000, 1500)]))
    return _save_page(pg, meta, rng, stem, index, VENDOR_FORMATS, 0.3, (85, 95))


def gen_screen_4k(rng, nrng, stem: Path, index: int):
    """3840x2160 screenshots: a PACS viewer, an EHR with a patient band, a worklist; UI scaling 100-200%."""
    p = ids.make_patient(rng)
    ui = rng.choice([1.0, 1.25, 1.5, 2.0])
    which = ["viewer_dark", "ehr_banner", rng.choice(["worklist", "ehr_banner", "viewer_dark"])][index % 3]
    if which == "viewer_dark":
        pg, meta = render.viewer_dark(rng, nrng, p, size=UHD, ui=ui)
    elif which == "worklist":
        pg, meta = render.worklist(rng, nrng, p, size=UHD, ui=ui)
    else:
        pg, meta = ehr.ehr_banner(rng, nrng, p, size=UHD, ui=ui)
    meta.update(site=p.site, lang=p.lang)
    return _save_page(pg, meta, rng, stem, index, K4_FORMATS, 0.5, (88, 95))


GENERATORS = {"screen_crisp": gen_screen_crisp, "screen_photo": gen_screen_photo, "screenshot": gen_screenshot,
              "wristband": gen_wristband, "face": gen_face, "control": gen_control,
              "ehr_banner": gen_ehr_banner, "chat": gen_chat, "label_photo": gen_label_photo,
              "letter_photo": gen_letter_photo, "us_vendor": gen_us_vendor, "screen_4k": gen_screen_4k}


def make_one(task) -> dict | None:
    out, seed, family, index = task
    s = seed_for(seed, family, index)
    rng = random.Random(s)
    nrng = np.random.default_rng(s)
    (out / family).mkdir(parents=True, exist_ok=True)
    stem = out / family / f"{family}-{index:03d}"
    if family == "ultrasound_real":
        res = gen_ultrasound_real(rng, nrng, stem, index)
    else:
        res = GENERATORS[family](rng, nrng, stem, index)
    if res is None:
        return None
    path, fmt, labels, planted, jobs, meta = res
    with Image.open(path) as im:
        from PIL import ImageOps

        w, h = ImageOps.exif_transpose(im).size
    rec = {
        "file": str(path.relative_to(out)),
        "family": family,
        "format": fmt,
        "width": w,
        "height": h,
        "identifiers": labels["identifiers"],
        "technical": labels["technical"],
        "context": labels["context"],
        "identifier_lines": labels["identifier_lines"],
        "planted_metadata": sorted(set(planted)),
        "is_control": family == "control",
        "label_source": "rapidocr-auto" if family == "ultrasound_real" else "generator",
        "params": meta,
    }
    return {"record": rec, "jobs": jobs}


def generate(out: Path, seed: int, count: int, families: list[str], workers: int | None = None,
             progress: bool = True) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    tasks = [(out, seed, fam, i) for fam in families for i in range(count)]
    # ultrasound_real OCRs its sources once: keep it in this process, fan the rest out
    local = [t for t in tasks if t[2] == "ultrasound_real"]
    remote = [t for t in tasks if t[2] != "ultrasound_real"]
    workers = workers or max(1, min(len(os.sched_getaffinity(0)), 8))
    results: dict[tuple, dict | None] = {}
    t0 = time.monotonic()
    done = 0

    def tick(task):
        nonlocal done
        done += 1
        if progress:
            print(f"\rgenerate: {done}/{len(tasks)} {task[2]:<16}", end="", file=sys.stderr, flush=True)

    if remote:
        if workers > 1:
            with get_context("fork").Pool(workers) as pool:
                for task, res in zip(remote, pool.imap(make_one, remote, chunksize=1)):
                    results[task[2:]] = res
                    tick(task)
        else:
            for task in remote:
                results[task[2:]] = make_one(task)
                tick(task)
    for task in local:
        results[task[2:]] = make_one(task)
        tick(task)
    batch = plant.ExiftoolBatch()
    records = []
    for task in tasks:
        res = results.get(task[2:])
        if res is None:
            continue
        records.append(res["record"])
        for path, assignments in res["jobs"]:
            batch.add(Path(path), assignments)
    batch.run()
    with open(out / "labels.jsonl", "w") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    manifest = {"generator_version": GENERATOR_VERSION, "seed": seed, "count_per_family": count,
                "families": families, "images": len(records), "seconds": round(time.monotonic() - t0, 1)}
    (out / "corpus.json").write_text(json.dumps(manifest, indent=1))
    if progress:
        print(f"\rgenerate: {len(records)} images in {manifest['seconds']} s{' ' * 20}", file=sys.stderr)
    return records


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count-per-family", type=int, default=DEFAULT_COUNT)
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset of: " + ", ".join(FAMILIES))
    ap.add_argument("--workers", type=int, default=None)
    a = ap.parse_args(argv)
    fams = [f for f in a.families.split(",") if f]
    bad = set(fams) - set(FAMILIES)
    if bad:
        ap.error(f"unknown families: {', '.join(sorted(bad))}")
    generate(a.out, a.seed, a.count_per_family, fams, a.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
