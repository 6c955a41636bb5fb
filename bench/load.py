#!/usr/bin/env python3
"""Load: hundreds of concurrent uploads, memory against the in-flight budget, and throughput.

    .venv/bin/python -m bench.load [--uploads 500] [--baseline GIT_REF] [--sustain 60] [--out bench/results]

Three parts, each against a real `scrubgate run --workers 2` and a local HTTPS sink that
checks every byte it receives:

1. **Burst**: `--uploads` uploads of mixed sizes (phone photos of a screen, 12 MP photos,
   10 MB and 49 MB DICOM studies) start at once. Each carries its own planted marker in
   EXIF (with GPS), a JPEG comment or the DICOM header. Every upload must be either
   cleaned (delivered once, marker and GPS gone, still a valid file) or refused with
   `overloaded`; the report counts anything else as lost, duplicated, leaked or other.
   The gateway's process tree is sampled for RSS (sum of VmRSS, every 50 ms) and its
   `scrubgate_inflight_bytes` gauge is polled, both against `limits.max_inflight_bytes`.
2. **One 49 MB upload**, alternating between this tree and `--baseline` (a git worktree
   run by the same interpreter): the main process's RSS growth, i.e. how many copies of
   an upload the proxy holds.
3. **Sustained** (`--sustain` seconds each): a closed loop of 6 clients uploading photos,
   once with the shipped policy (OCR, faces) and once with `text: none, faces: keep`
   (metadata plus barcode scan): cleaned images per second and CPU-seconds per image,
   the input of the README's capacity model.

Writes bench/results/load-YYYY-MM-DD.md/.json. Exit 0 whether or not targets are met.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from bench.common_machine import machine, machine_md, pct
from bench.proxy import REPO, RssSampler, conftest, cpu_seconds, start_scrubgate, start_upstream

MARK = b"LOADPHI-"  # every planted value starts with it; the sink looks for it in every byte
HOLE = MARK + b"XXXXXXXXXXXX"  # the template's placeholder: same length as each upload's marker
SLACK_UPLOAD = "https://slack.com/api/files.upload"


def marker(n: int) -> bytes:
    return MARK + b"%012d" % n


# ---------------------------------------------------------------- what is uploaded

def _gps() -> dict:
    return {1: "N", 2: (51.0, 30.0, 12.5), 3: "W", 4: (0.0, 7.0, 39.0)}


def photo_template(size: tuple[int, int]) -> bytes:
    """A phone photo of a viewer screen: EXIF with GPS and the placeholder, and a comment."""
    from PIL import Image
    from scrubgate.samples import phone_photo, viewer_screen

    im = phone_photo(viewer_screen(size=size, text_px=max(16, size[1] // 50)))
    exif = Image.Exif()
    exif[0x013B] = HOLE.decode()  # Artist
    exif[0x010E] = HOLE.decode()  # ImageDescription
    exif[0x010F], exif[0x0110] = "DemoPhone", "DemoPhone 12"
    gps = exif.get_ifd(0x8825)
    gps.update(_gps())
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=92, exif=exif.tobytes())
    data = buf.getvalue()
    com = b"\xff\xfe" + (len(HOLE) + 2).to_bytes(2, "big") + HOLE
    return data[:2] + com + data[2:]


def dicom_template(frames: int) -> bytes:
    import pydicom
    from scrubgate.samples import secondary_capture

    ds = pydicom.dcmread(io.BytesIO(secondary_capture(frames=frames, size=(1024, 1024))))
    ds.PatientID = HOLE.decode()
    ds.PatientName = HOLE.decode()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


KINDS = {  # name: (template builder, MIME type, file name, share of a burst)
    "photo 1.3 MP": (lambda: photo_template((1280, 960)), "image/jpeg", "photo.jpg", 0.60),
    "photo 12 MP": (lambda: photo_template((4000, 3000)), "image/jpeg", "big.jpg", 0.24),
    "DICOM 10 MB": (lambda: dicom_template(10), "application/dicom", "series.dcm", 0.12),
    "DICOM 49 MB": (lambda: dicom_template(47), "application/dicom", "study.dcm", 0.04),
}


# ---------------------------------------------------------------- the sink

def split_multipart(ctype: str, body: bytes) -> list[tuple[str, bytes]]:
    """(Content-Type, bytes) of each file part: a plain split on the boundary, not
    scrubgate's parser, since the sink judges scrubgate."""
    boundary = ctype.split("boundary=", 1)[1].split(";")[0].strip().strip('"').encode()
    out = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.partition(b"\r\n\r\n")
        if b"filename=" in head:
            types = [ln.split(b":", 1)[1].strip().decode() for ln in head.split(b"\r\n")
                     if ln.lower().startswith(b"content-type:")]
            out.append((types[0] if types else "", data[:-2] if data.endswith(b"\r\n") else data))
    return out


class Sink:
    """Counts each upload id it receives, and judges every body: no marker byte, no GPS,
    and each file still opens (PIL, pydicom: judges outside scrubgate)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count: dict[str, int] = {}
        self.leaks: list[str] = []
        self.broken: list[str] = []
        self.bytes = 0

    def judge(self, uid: str, ctype: str, body: bytes) -> None:
        problems = []
        if MARK in body:
            problems.append("marker")
        try:
            parts = split_multipart(ctype, body)
            if not parts:
                raise ValueError("no file part")
            for part_type, data in parts:
                if part_type == "image/jpeg":
                    from PIL import Image
                    with Image.open(io.BytesIO(data)) as im:
                        im.load()
                        if im.getexif().get_ifd(0x8825):
                            problems.append("gps")
                else:
                    import pydicom
                    ds = pydicom.dcmread(io.BytesIO(data))
                    if MARK.decode() in str(ds.get("PatientID", "")) + str(ds.get("PatientName", "")):
                        problems.append("dicom header")
        except Exception as e:  # a delivered file that no longer opens
            with self.lock:
                self.broken.append(f"{uid}: {type(e).__name__}")
        with self.lock:
            self.count[uid] = self.count.get(uid, 0) + 1
            self.bytes += len(body)
            if problems:
                self.leaks.append(f"{uid}: {', '.join(problems)}")


def start_sink(tmp: Path, sink: Sink):
    class Handler(conftest._UpstreamHandler):
        def _handle(self) -> None:
            if "transfer-encoding" in self.headers:
                body, _ = self._chunked()
            else:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
            uid = parse_qs(urlsplit(self.path).query).get("u", ["-"])[0]
            if body:
                sink.judge(uid, self.headers.get("content-type", ""), body)
            self.reply_json({"ok": True, "bytes": len(body)})

        do_GET = do_POST = do_PUT = _handle

    return start_upstream(tmp, Handler)


# ---------------------------------------------------------------- the gateway side

def gauge(proxy, name: str) -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{proxy.metrics_port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return -1
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return -1


class GaugePoller:
    def __init__(self, proxy, name: str, every: float = 0.1):
        self.proxy, self.name, self.every, self.peak = proxy, name, every, 0.0
        self.stop_ = threading.Event()

    def __enter__(self):
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        return self

    def _run(self):
        while not self.stop_.is_set():
            self.peak = max(self.peak, gauge(self.proxy, self.name))
            time.sleep(self.every)

    def __exit__(self, *a):
        self.stop_.set()
        self.t.join()


def client(proxy, connections: int) -> httpx.AsyncClient:
    ctx = ssl.create_default_context(cafile=str(proxy.trust_pem))
    return httpx.AsyncClient(proxy=f"http://127.0.0.1:{proxy.port}", verify=ctx, timeout=900,
                             limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections))


async def post(c: httpx.AsyncClient, uid: str, name: str, ctype: str, data: bytes):
    return await c.post(f"{SLACK_UPLOAD}?u={uid}", files=[("file", (name, data, ctype))])


# ---------------------------------------------------------------- 1. burst

def plan_burst(n: int) -> list[str]:
    kinds, out = list(KINDS), []
    for k in kinds:
        out += [k] * round(n * KINDS[k][3])
    out = (out + [kinds[0]] * n)[:n]
    # interleave, so big and small arrive mixed rather than in blocks
    return [out[(i * 7919) % n] for i in range(n)] if n % 7919 else out


async def _burst(proxy, templates: dict, kinds: list[str], sink: Sink) -> list[dict]:
    rows: list[dict] = [{} for _ in kinds]
    start = asyncio.Event()

    async def one(i: int, kind: str, c: httpx.AsyncClient):
        _, ctype, name, _ = KINDS[kind]
        uid = f"b{i}"
        data = templates[kind].replace(HOLE, marker(i))
        await start.wait()
        t0 = time.perf_counter()
        row = {"uid": uid, "kind": kind, "bytes": len(data)}
        try:
            r = await post(c, uid, name, ctype, data)
            row.update(status=r.status_code, reason=r.headers.get("x-scrubgate-reason"))
        except Exception as e:  # no answer: counted as lost
            row.update(status=None, error=type(e).__name__)
        row["seconds"] = time.perf_counter() - t0
        rows[i] = row

    async with client(proxy, len(kinds) + 8) as c:
        tasks = [asyncio.create_task(one(i, k, c)) for i, k in enumerate(kinds)]
        await asyncio.sleep(0.5)
        start.set()
        await asyncio.gather(*tasks)
    return rows


def bench_burst(proxy, templates: dict, n: int, budget: int) -> dict:
    sink = proxy.sink
    kinds = plan_burst(n)
    with RssSampler(proxy.proc.pid, every=0.05) as s, GaugePoller(proxy, "scrubgate_inflight_bytes") as g:
        t0 = time.perf_counter()
        rows = asyncio.run(_burst(proxy, templates, kinds, sink))
        took = time.perf_counter() - t0
    time.sleep(1)
    classes = {"cleaned": 0, "overloaded": 0, "other": 0, "lost": 0, "duplicated": 0, "forwarded_refused": 0}
    others: dict[str, int] = {}
    by_kind: dict[str, dict] = {}
    with sink.lock:
        counts = dict(sink.count)
    for r in rows:
        got = counts.get(r["uid"], 0)
        k = by_kind.setdefault(r["kind"], {"sent": 0, "cleaned": 0, "overloaded": 0, "other": 0, "seconds": []})
        k["sent"] += 1
        if got > 1:
            classes["duplicated"] += 1
        if r.get("status") is None:
            classes["lost"] += 1
            others[r.get("error", "?")] = others.get(r.get("error", "?"), 0) + 1
        elif r["status"] == 200 and got == 1:
            classes["cleaned"] += 1
            k["cleaned"] += 1
            k["seconds"].append(r["seconds"])
        elif r["status"] == 200:
            classes["lost"] += 1  # answered 200 but never reached the sink
        elif r["status"] == 403 and r.get("reason") == "overloaded":
            classes["overloaded"] += 1
            k["overloaded"] += 1
            if got:
                classes["forwarded_refused"] += 1
        else:
            classes["other"] += 1
            k["other"] += 1
            key = f"{r['status']} {r.get('reason')}"
            others[key] = others.get(key, 0) + 1
            if got:
                classes["forwarded_refused"] += 1
    for k in by_kind.values():
        secs = k.pop("seconds")
        k["cleaned_median_s"] = round(statistics.median(secs), 2) if secs else None
        k["cleaned_p95_s"] = round(pct(secs, 95), 2) if secs else None
    return {"uploads": n, "seconds": round(took, 1), "offered_bytes": sum(r["bytes"] for r in rows),
            "classes": classes, "others": others, "by_kind": by_kind,
            "leaks": sink.leaks[:20], "leak_count": len(sink.leaks), "broken": sink.broken[:20],
            "rss_before": s.baseline, "rss_peak": s.peak, "budget": budget,
            "inflight_gauge_peak": g.peak,
            "per_process": {str(k): v for k, v in sorted(s.per_process.items())}}


# ---------------------------------------------------------------- 2. one big upload, this tree vs baseline

class Worktree:
    def __init__(self, ref: str):
        self.ref = ref
        self.tree = Path(tempfile.mkdtemp(prefix="scrubgate-load-base-")) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(self.tree), ref],
                       check=True, capture_output=True)
        self.rev = subprocess.run(["git", "-C", str(self.tree), "rev-parse", "--short", "HEAD"],
                                  capture_output=True, text=True).stdout.strip()

    def close(self):
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(self.tree)], capture_output=True)
        shutil.rmtree(self.tree.parent, ignore_errors=True)


def one_big(proxy, data: bytes, i: int) -> dict:
    async def go():
        async with client(proxy, 2) as c:
            return await post(c, f"big{i}", "study.dcm", "application/dicom", data.replace(HOLE, marker(900000 + i)))

    with RssSampler(proxy.proc.pid, every=0.01) as s:
        r = asyncio.run(go())
        time.sleep(0.3)
    main = s.per_process.get(proxy.proc.pid, {})
    return {"status": r.status_code, "main_before": main.get("first", 0), "main_peak": main.get("peak", 0),
            "tree_before": s.baseline, "tree_peak": s.peak}


def bench_copies(tmp: Path, up, templates: dict, baseline: str | None, rounds: int) -> dict:
    big = templates["DICOM 49 MB"]
    trees = {"this tree": None}
    base = Worktree(baseline) if baseline else None
    if base:
        trees[f"baseline {base.rev}"] = {"PYTHONPATH": str(base.tree / "addons")}
    proxies = {name: start_scrubgate(tmp, up, f"copies-{i}", env=env) for i, (name, env) in enumerate(trees.items())}
    try:
        for p in proxies.values():  # warm-up: codecs and first-use buffers are baseline, not the upload's cost
            one_big(p, big, 0)
            one_big(p, big, 1)
        rows = {name: [] for name in proxies}
        for k in range(rounds):
            for name, p in proxies.items():
                rows[name].append(one_big(p, big, 10 + k))
    finally:
        for p in proxies.values():
            p.stop()
        if base:
            base.close()
    out = {}
    for name, rs in rows.items():
        growth = [r["main_peak"] - r["main_before"] for r in rs]
        out[name] = {"statuses": [r["status"] for r in rs], "main_growth_mb": [round(g / 1e6) for g in growth],
                     "main_growth_over_upload": round(statistics.median(growth) / len(big), 2)}
    return {"upload_bytes": len(big), "rounds": rounds, "trees": out}


# ---------------------------------------------------------------- 3. sustained

async def _sustain(proxy, template: bytes, seconds: float, clients: int, first: int) -> list[dict]:
    rows: list[dict] = []
    stop_at = time.perf_counter() + seconds
    counter = iter(range(first, first + 10**6))

    async def loop(c):
        while time.perf_counter() < stop_at:
            i = next(counter)
            t0 = time.perf_counter()
            try:
                r = await post(c, f"s{i}", "photo.jpg", "image/jpeg", template.replace(HOLE, marker(i)))
                rows.append({"status": r.status_code, "reason": r.headers.get("x-scrubgate-reason"),
                             "seconds": time.perf_counter() - t0})
            except Exception as e:
                rows.append({"status": None, "reason": type(e).__name__, "seconds": time.perf_counter() - t0})

    async with client(proxy, clients + 2) as c:
        await asyncio.gather(*(loop(c) for _ in range(clients)))
    return rows


def bench_sustained(proxy, template: bytes, seconds: float, label: str, first: int, clients: int = 6) -> dict:
    cpu0, t0 = cpu_seconds(proxy.proc.pid), time.perf_counter()
    rows = asyncio.run(_sustain(proxy, template, seconds, clients, first))
    wall, cpu = time.perf_counter() - t0, cpu_seconds(proxy.proc.pid) - cpu0
    ok = [r for r in rows if r["status"] == 200]
    return {"label": label, "seconds": round(wall, 1), "clients": clients, "requests": len(rows), "cleaned": len(ok),
            "refused": {f"{r['status']} {r['reason']}": sum(1 for x in rows if (x["status"], x["reason"]) ==
                                                           (r["status"], r["reason"]))
                        for r in rows if r["status"] != 200},
            "images_per_s": round(len(ok) / wall, 2), "gateway_cpu_s": round(cpu, 1),
            "cpu_s_per_image": round(cpu / len(ok), 3) if ok else None,
            "median_s": round(statistics.median(r["seconds"] for r in ok), 2) if ok else None,
            "p95_s": round(pct([r["seconds"] for r in ok], 95), 2) if ok else None}


# ---------------------------------------------------------------- report

def mb(x: float) -> str:
    return f"{x / 1e6:.0f} MB"


def report(res: dict) -> str:
    b = res["burst"]
    c = b["classes"]
    L = [f"# Load — {res['date']}", "", f"Command: `{res['command']}`  ", f"Wall time: {res['wall_s']:.0f} s  ", "",
         *machine_md(res["machine"]), "",
         "Everything (the async httpx client, the sink that judges every body, the gateway and its 2 workers) "
         "runs on the same machine; the gateway's workers run niced.", "",
         f"## 1. Burst: {b['uploads']} uploads started at once ({mb(b['offered_bytes'])} offered)", "",
         "Each upload carries its own planted marker (EXIF Artist/ImageDescription with GPS and a JPEG comment, "
         "or DICOM PatientID/PatientName). The sink judges each body it receives with PIL/pydicom and a byte "
         "search for the marker prefix.", "",
         "| outcome | uploads |", "| --- | --- |"]
    L += [f"| {k} | {v} |" for k, v in c.items()]
    L += [f"| delivered bodies with a marker, GPS or a planted DICOM value | {b['leak_count']} |",
          f"| delivered files that no longer open | {len(b['broken'])} |", ""]
    if b["others"]:
        L += ["Other answers: " + ", ".join(f"{k} × {v}" for k, v in b["others"].items()), ""]
    L += ["| kind | sent | cleaned | overloaded | other | cleaned: median s | p95 s |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for k, v in b["by_kind"].items():
        L.append(f"| {k} | {v['sent']} | {v['cleaned']} | {v['overloaded']} | {v['other']} | "
                 f"{v['cleaned_median_s']} | {v['cleaned_p95_s']} |")
    procs = ", ".join(f"{v['name']} {v['first'] / 1e6:.0f}→{v['peak'] / 1e6:.0f}" for v in b["per_process"].values())
    L += ["", f"Burst took {b['seconds']} s.", "",
          "| memory | value |", "| --- | --- |",
          f"| limits.max_inflight_bytes (the budget) | {mb(b['budget'])} |",
          f"| peak of scrubgate_inflight_bytes (polled every 100 ms) | {mb(b['inflight_gauge_peak'])} |",
          f"| process tree RSS before | {mb(b['rss_before'])} |",
          f"| process tree RSS peak (sum of VmRSS, every 50 ms) | {mb(b['rss_peak'])} |",
          f"| growth | {mb(b['rss_peak'] - b['rss_before'])} ({(b['rss_peak'] - b['rss_before']) / b['budget']:.2f}× the budget) |",
          "", f"Each process, first seen → peak MB: {procs}", ""]
    cp = res.get("copies")
    if cp:
        L += [f"## 2. Copies: one {mb(cp['upload_bytes'])} DICOM upload, main process RSS growth", "",
              "Alternating between the trees, after two warm-up uploads each.", "",
              "| tree | statuses | main process growth per round | growth / upload (median) |", "| --- | --- | --- | --- |"]
        for name, t in cp["trees"].items():
            L.append(f"| {name} | {t['statuses']} | {', '.join(f'{g} MB' for g in t['main_growth_mb'])} | "
                     f"{t['main_growth_over_upload']}× |")
        L.append("")
    if res.get("sustained"):
        L += ["## 3. Sustained: a closed loop of 6 clients uploading 1.3 MP phone photos", "",
              "| policy | seconds | cleaned | refused | images/s | gateway CPU s / image | median s | p95 s |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for s in res["sustained"]:
            L.append(f"| {s['label']} | {s['seconds']} | {s['cleaned']} | {s['refused'] or '-'} | {s['images_per_s']} | "
                     f"{s['cpu_s_per_image']} | {s['median_s']} | {s['p95_s']} |")
        L += ["", "CPU s / image is the whole gateway tree's CPU time (main, forkserver, workers) over the run divided "
              "by the images cleaned: its inverse is images per second per core, the capacity model's input. The "
              "client and the sink share the same 2 cores, so images/s is a floor.", ""]
    return "\n".join(L)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--uploads", type=int, default=500, help="uploads in the burst (default 500)")
    ap.add_argument("--baseline", help="git ref to compare the one-big-upload memory with (a worktree)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the one-big-upload comparison")
    ap.add_argument("--sustain", type=float, default=60, help="seconds of each sustained run (0: skip)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    a = ap.parse_args(argv)
    started = time.perf_counter()
    res = {"date": dt.date.today().isoformat(), "command": "python -m bench.load " + " ".join(argv or sys.argv[1:]),
           "machine": machine()}
    print("building templates ...", flush=True)
    templates = {k: v[0]() for k, v in KINDS.items()}
    res["templates"] = {k: len(v) for k, v in templates.items()}
    with tempfile.TemporaryDirectory(prefix="scrubgate-load-") as d:
        tmp = Path(d)
        sink = Sink()
        up, server = start_sink(tmp, sink)
        try:
            from scrubgate.policy.validate import load_yaml
            budget = load_yaml(REPO / "policies" / "default.yaml")["limits"]["max_inflight_bytes"]
            gw = start_scrubgate(tmp, up, "burst")
            gw.sink = sink
            try:
                print(f"burst of {a.uploads} ...", flush=True)
                res["burst"] = bench_burst(gw, templates, a.uploads, budget)
                print(json.dumps(res["burst"]["classes"]), flush=True)
                if a.sustain:
                    print("sustained, shipped policy ...", flush=True)
                    res["sustained"] = [bench_sustained(gw, templates["photo 1.3 MP"], a.sustain,
                                                        "shipped (OCR, faces, barcodes)", 1_000_000)]
            finally:
                gw.stop()
            if a.sustain:
                policies = tmp / "policies"
                shutil.copytree(REPO / "policies", policies)
                p = policies / "default.yaml"
                p.write_text(p.read_text().replace("\ntext: identifiers", "\ntext: none")
                             .replace("\nfaces: blur", "\nfaces: keep"))
                gw = start_scrubgate(tmp, up, "metadata", policy=p)
                gw.sink = sink
                try:
                    print("sustained, text: none, faces: keep ...", flush=True)
                    res["sustained"].append(bench_sustained(gw, templates["photo 1.3 MP"], a.sustain,
                                                            "text: none, faces: keep (metadata, barcodes)",
                                                            2_000_000))
                finally:
                    gw.stop()
            print("copies ...", flush=True)
            res["copies"] = bench_copies(tmp, up, templates, a.baseline, a.rounds)
            res["sink_leaks_total"] = len(sink.leaks)
        finally:
            server.shutdown()
    res["wall_s"] = time.perf_counter() - started
    a.out.mkdir(parents=True, exist_ok=True)
    stem = a.out / f"load-{res['date']}"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1, default=str))
    stem.with_suffix(".md").write_text(report(res))
    print(report(res))
    print(f"\nwrote {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
