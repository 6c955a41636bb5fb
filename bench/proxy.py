#!/usr/bin/env python3
"""Proxy overhead, head-of-line blocking and memory: scrubgate next to bare mitmdump, in one run.

    .venv/bin/python bench/proxy.py [--quick] [--out bench/results]

Starts a local HTTPS upstream (trustme CA) standing in for the services, bare `mitmdump` (with a tiny
addon that does what `--resolve` does) and real `scrubgate run --workers 2` processes, then drives them
with httpx clients (keep-alive, one client per thread). Each scenario alternates between the proxies
for several rounds so machine noise hits both. Writes bench/results/proxy-YYYY-MM-DD[-quick].md/.json.
Exit 0 whether or not the targets are met.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import importlib.util
import io
import json
import os
import shlex
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import trustme

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO / "tests"), str(HERE)]

from common_machine import machine, machine_md, pct  # noqa: E402

_spec = importlib.util.spec_from_file_location("sg_conftest", REPO / "tests" / "conftest.py")
conftest = importlib.util.module_from_spec(_spec)
sys.modules["sg_conftest"] = conftest
_spec.loader.exec_module(conftest)

REQUEST_TIMEOUT = 10.0  # a request stuck longer counts as an error (ReadTimeout)
MITMDUMP = str(Path(sys.executable).parent / "mitmdump")
SLACK = "https://slack.com/api/chat.postMessage"
DISCORD = "https://discord.com/api/v9/channels/1/messages"
BANK = "https://bank.example.org/api/transfer"

RESOLVE_ADDON = '''
TABLE = {TABLE!r}
def server_connect(data):
    if not data.server.address:
        return
    host, port = str(data.server.address[0]).lower(), data.server.address[1]
    target = TABLE.get(host)
    if target and port == 443:
        if data.server.sni is None:
            data.server.sni = host
        data.server.address = tuple(target)
'''


class _Handler(conftest._UpstreamHandler):
    """The conftest upstream, without keeping the bodies (the bench sends gigabytes)."""

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        left = length
        while left:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
        reply = json.dumps({"ok": True, "bytes": length}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = _handle


def start_upstream(tmp: Path):
    ca = trustme.CA()
    cert = ca.issue_cert(*conftest.UPSTREAM_HOSTS)
    ca_pem = tmp / "upstream-ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    # handshake in the handler thread, not in accept(): one slow handshake must not stall the listener
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return conftest.Upstream(server.server_address[1], ca_pem, b""), server


class Proxy:
    def __init__(self, name, proc, port, trust_pem, metrics_port=None, log_path=None):
        self.name, self.proc, self.port, self.trust_pem = name, proc, port, trust_pem
        self.metrics_port, self.log_path = metrics_port, log_path

    def client(self) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(self.trust_pem))
        return httpx.Client(proxy=f"http://127.0.0.1:{self.port}", verify=ctx, timeout=REQUEST_TIMEOUT)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_mitmdump(tmp: Path, up) -> Proxy:
    port = conftest.free_ports(1)[0]
    addon = tmp / "resolve_addon.py"
    addon.write_text(RESOLVE_ADDON.replace("{TABLE!r}", repr({h: ["127.0.0.1", up.port] for h in conftest.UPSTREAM_HOSTS})))
    conf = tmp / "mitm-conf"
    log = tmp / "mitmdump.log"
    cmd = [MITMDUMP, "--listen-host", "127.0.0.1", "--listen-port", str(port), "--set", f"confdir={conf}",
           "--set", f"ssl_verify_upstream_trusted_ca={up.ca_pem}", "--set", "connection_strategy=lazy",
           "-s", str(addon), "-q"]
    proc = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=REPO)
    deadline = time.monotonic() + 60
    while not (conf / "mitmproxy-ca-cert.pem").is_file() or not _port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mitmdump did not start:\n{log.read_text()}")
        time.sleep(0.2)
    trust = tmp / "mitm-trust.pem"
    trust.write_bytes((conf / "mitmproxy-ca-cert.pem").read_bytes() + up.ca_pem.read_bytes())
    return Proxy("mitmdump", proc, port, trust, log_path=log)


def _port_open(port: int) -> bool:
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def start_scrubgate(tmp: Path, up, name: str, policy: Path | None = None) -> Proxy:
    d = tmp / name
    d.mkdir()
    gw = conftest.start_gateway(d, up, policy=policy, extra=["-q"])
    return Proxy(name, gw.proc, gw.port, gw.trust_pem, gw.metrics_port, gw.log_path)


# ---------------------------------------------------------------- load


def run_load(proxy: Proxy, make, seconds: float, threads: int, pause: float = 0.0) -> dict:
    """`threads` threads, each with its own keep-alive client, call make(client) until the deadline."""
    lat, sent, codes, errors = [], [0], {}, []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    start = threading.Barrier(threads + 1)

    def worker():
        with proxy.client() as c:
            start.wait()
            while time.monotonic() < deadline:
                t = time.perf_counter()
                try:
                    r, nbytes = make(c)
                    dt_ = time.perf_counter() - t
                    with lock:
                        lat.append(dt_)
                        sent[0] += nbytes
                        codes[r.status_code] = codes.get(r.status_code, 0) + 1
                except httpx.HTTPError as e:
                    with lock:
                        errors.append(type(e).__name__)
                if pause:
                    time.sleep(pause)

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    start.wait()
    t0 = time.monotonic()
    for t in ts:  # a request that hangs past the httpx timeout is abandoned and counted as stuck
        t.join(max(0.1, deadline + REQUEST_TIMEOUT + 5 - time.monotonic()))
    stuck = sum(t.is_alive() for t in ts)
    wall = time.monotonic() - t0
    with lock:
        return {"latencies": list(lat), "bytes": sent[0], "wall": wall, "codes": dict(codes),
                "errors": list(errors) + ["stuck"] * stuck}


def summarise(runs: list[dict]) -> dict:
    lat = [x for r in runs for x in r["latencies"]]
    wall = sum(r["wall"] for r in runs)
    nbytes = sum(r["bytes"] for r in runs)
    codes: dict = {}
    for r in runs:
        for k, v in r["codes"].items():
            codes[str(k)] = codes.get(str(k), 0) + v
    errs = [e for r in runs for e in r["errors"]]
    return {"requests": len(lat), "seconds": round(wall, 2), "req_s": len(lat) / wall if wall else 0,
            "mb_s": nbytes / 1e6 / wall if wall else 0, "p50_ms": 1000 * pct(lat, 50), "p95_ms": 1000 * pct(lat, 95),
            "p99_ms": 1000 * pct(lat, 99), "status": codes, "errors": len(errs),
            "error_kinds": sorted(set(errs))}


def payloads():
    from pictures import encode, viewer_screen
    import engine as eng  # bench/engine.py: the 12 MP photo with EXIF/XMP planted

    # distinct screenshots (a few changed pixels each) so no cache keyed on the bytes can answer for the engine
    import random
    base = viewer_screen()
    screen = []
    for i in range(48):
        im = base.copy()
        for k in range(8):
            im.putpixel((600 + 3 * k, 470 + (i % 40)), (i * 5 % 256, k * 30, 77))
        screen.append(encode(im, "PNG"))
    random.shuffle(screen)
    photo = eng.encode_planted(eng.photo_12mp(), "JPEG")
    return {"screen_png": screen, "photo_jpeg": photo, "blob_2mb": os.urandom(2 * 1024 * 1024)}


def scenarios(p):
    small = json.dumps({"amount": 12, "to": "NL00BANK0123456789"}).encode()

    def bank(c):
        return c.post(BANK, content=small, headers={"Content-Type": "application/json"}), len(small)

    def chat(c):
        body = {"channel": "C1", "text": "ward round at 10, bed 4 stable"}
        return c.post(SLACK, json=body), 60

    def blob(c):
        return c.post(BANK.replace("transfer", "backup"), content=p["blob_2mb"],
                      headers={"Content-Type": "application/octet-stream"}), len(p["blob_2mb"])

    def photo(c):
        return c.post(DISCORD, files={"files[0]": ("IMG_0001.jpg", p["photo_jpeg"], "image/jpeg")}), len(p["photo_jpeg"])

    counter = iter(range(10**9))

    def screen(c):
        body = p["screen_png"][next(counter) % len(p["screen_png"])]
        return c.post(DISCORD, files={"files[0]": ("screen.png", body, "image/png")}), len(body)

    # (key, description, request, client threads, scrubgate instance)
    return [("a_bank_small", "small JSON POSTs to bank.example.org (outside the catalogue)", bank, 8, "scrubgate"),
            ("b_slack_chat", "chat-text POSTs to slack.com/api/chat.postMessage", chat, 8, "scrubgate"),
            ("c_bank_2mb", "2 MB octet-stream POSTs to bank.example.org", blob, 4, "scrubgate"),
            ("d1_discord_photo_12mp", "12 MP JPEG photo (2.7 MB, EXIF/XMP) multipart to Discord; "
             "scrubgate with a policy copy `text: none, faces: keep`", photo, 2, "scrubgate-textnone"),
            ("d2_discord_screen_ocr", "1280x960 viewer screenshot PNG multipart to Discord, default policy (OCR)",
             screen, 4, "scrubgate")], chat, screen


# ---------------------------------------------------------------- memory


def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            for ln in Path(f"/proc/{p}/status").read_text().splitlines():
                if ln.startswith("VmRSS:"):
                    total += int(ln.split()[1]) * 1024
        except OSError:
            pass
    return total


class RssSampler:
    def __init__(self, root: int, every: float = 0.02):
        self.root, self.every, self.peak, self.stop_ = root, every, 0, threading.Event()
        self.pids = tree_pids(root)
        self.baseline = rss_bytes(self.pids)

    def __enter__(self):
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        return self

    def _run(self):
        n = 0
        while not self.stop_.is_set():
            if n % 25 == 0:
                self.pids = tree_pids(self.root)
            self.peak = max(self.peak, rss_bytes(self.pids))
            n += 1
            time.sleep(self.every)

    def __exit__(self, *a):
        self.stop_.set()
        self.t.join()


def bench_memory(sg: Proxy, quick: bool) -> list[dict]:
    from dicoms import secondary_capture
    from pictures import encode, viewer_screen

    rows = []
    frames = 12 if quick else 46
    big = secondary_capture(frames=frames, size=(1024, 1024))
    with RssSampler(sg.proc.pid) as s, sg.client() as c:
        t = time.perf_counter()
        r = c.post(DISCORD, files={"files[0]": ("study.dcm", big, "application/dicom")})
        took = time.perf_counter() - t
        time.sleep(0.3)
    rows.append({"case": f"one {len(big) / 1e6:.0f} MB DICOM ({frames} frames 1024x1024) multipart to Discord",
                 "upload_bytes": len(big), "status": r.status_code, "seconds": round(took, 2),
                 "rss_before": s.baseline, "rss_peak": s.peak, "rss_growth": s.peak - s.baseline,
                 "processes": len(s.pids), "peak_over_upload": s.peak / len(big),
                 "growth_over_upload": (s.peak - s.baseline) / len(big)})

    small = encode(viewer_screen(size=(480, 360), text_px=14), "PNG")
    n = 100
    codes: dict = {}
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def one():
        with sg.client() as c:
            barrier.wait()
            try:
                code = str(c.post(DISCORD, files={"files[0]": ("s.png", small, "image/png")}).status_code)
            except httpx.HTTPError as e:
                code = type(e).__name__
        with lock:
            codes[code] = codes.get(code, 0) + 1

    with RssSampler(sg.proc.pid) as s:
        t = time.perf_counter()
        ts = [threading.Thread(target=one, daemon=True) for _ in range(n)]
        for th in ts:
            th.start()
        for th in ts:
            th.join()
        took = time.perf_counter() - t
    total = n * len(small)
    rows.append({"case": f"{n} concurrent {len(small) / 1e3:.0f} kB PNG screenshots to Discord (OCR)",
                 "upload_bytes": total, "status": codes, "seconds": round(took, 2), "rss_before": s.baseline,
                 "rss_peak": s.peak, "rss_growth": s.peak - s.baseline, "processes": len(s.pids),
                 "peak_over_upload": s.peak / total, "growth_over_upload": (s.peak - s.baseline) / total})
    return rows


# ---------------------------------------------------------------- report


def report(res: dict) -> str:
    L = [f"# Proxy speed — {res['date']}", "", f"Command: `{res['command']}`  ", f"Wall time: {res['wall_s']:.0f} s  ",
         f"Rounds: {res['rounds']} × {res['seconds_per_round']} s per proxy per scenario, alternating", "",
         "## Machine", "", *machine_md(res["machine"]), "", "## Targets", "",
         "| target | measured | met? |", "| --- | --- | --- |"]
    for t in res["targets"]:
        L.append(f"| {t['target']} | {t['measured']} | {t['verdict']} |")
    L += ["", "## Throughput and latency, scrubgate vs bare mitmdump", "",
          "Clients, upstream and both proxies share the machine's cores. The ratio is scrubgate / mitmdump "
          "(>1 for latency means slower; <1 for req/s means fewer).", "",
          "| scenario | threads | proxy | req/s | MB/s | p50 ms | p99 ms | status | errors | req/s ratio | p50 ratio | p99 ratio |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in res["scenarios"]:
        m, g = s["mitmdump"], s["scrubgate"]
        L.append(f"| {s['key']} | {s['threads']} | mitmdump | {m['req_s']:.1f} | {m['mb_s']:.2f} | {m['p50_ms']:.1f} | "
                 f"{m['p99_ms']:.1f} | {m['status']} | {m['errors']} | | | |")
        L.append(f"| | | {s['scrubgate_instance']} | {g['req_s']:.1f} | {g['mb_s']:.2f} | {g['p50_ms']:.1f} | "
                 f"{g['p99_ms']:.1f} | {g['status']} | {g['errors']} | {s['ratio_req_s']:.2f} | "
                 f"{s['ratio_p50']:.2f} | {s['ratio_p99']:.2f} |")
    L += ["", "Scenarios:", ""] + [f"- `{s['key']}`: {s['description']}" for s in res["scenarios"]]
    h = res["head_of_line"]
    L += ["", "## Head-of-line blocking (scrubgate, default policy, 2 workers)", "",
          f"{h['chat_threads']} threads send chat POSTs to Slack (pause {h['pause_ms']} ms between), first with "
          f"nothing else going on, then while {h['upload_threads']} threads keep uploading OCR'd screenshots "
          "to Discord.", "",
          "| condition | chat requests | chat p50 ms | p95 ms | p99 ms | uploads done | upload p50 ms |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    for k in ("idle", "loaded"):
        c = h[k]["chat"]
        u = h[k].get("uploads")
        L.append(f"| {k} | {c['requests']} | {c['p50_ms']:.1f} | {c['p95_ms']:.1f} | {c['p99_ms']:.1f} | "
                 f"{u['requests'] if u else '-'} | {format(u['p50_ms'], '.0f') if u else '-'} |")
    L += ["", "## Memory (scrubgate process tree: main + workers, sum of VmRSS sampled every 20 ms)", "",
          "| case | upload | status | seconds | RSS before | RSS peak | growth | peak / upload | growth / upload |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in res["memory"]:
        L.append(f"| {r['case']} | {r['upload_bytes'] / 1e6:.1f} MB | {r['status']} | {r['seconds']} | "
                 f"{r['rss_before'] / 1e6:.0f} MB | {r['rss_peak'] / 1e6:.0f} MB | {r['rss_growth'] / 1e6:.0f} MB | "
                 f"{r['peak_over_upload']:.1f}× | {r['growth_over_upload']:.1f}× |")
    L += ["", "## Notes", "", *[f"- {n}" for n in res["notes"]], ""]
    return "\n".join(L)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 round of 2 s per scenario (about a minute)")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--seconds", type=float, help="seconds per round per proxy")
    ap.add_argument("--out", default=str(HERE / "results"))
    a = ap.parse_args(argv)
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the proxies are stopped
    rounds = a.rounds or (1 if a.quick else 3)
    secs = a.seconds or (2.0 if a.quick else 4.0)
    started = time.monotonic()
    res = {"date": dt.date.today().isoformat(),
           "command": shlex.join([".venv/bin/python", "bench/proxy.py", *(argv if argv is not None else sys.argv[1:])]),
           "machine": machine(), "rounds": rounds, "seconds_per_round": secs}
    tmp = Path(tempfile.mkdtemp(prefix="scrubgate-bench-"))
    up, server = start_upstream(tmp)
    textnone = tmp / "textnone.yaml"
    src = (REPO / "policies" / "default.yaml").read_text()
    textnone.write_text(src.replace("text: identifiers ", "text: none ").replace("faces: blur ", "faces: keep ")
                        .replace("catalogue: services.yaml", f"catalogue: {REPO / 'policies' / 'services.yaml'}"))
    procs = {}
    try:
        print("starting proxies ...", file=sys.stderr, flush=True)
        procs["mitmdump"] = start_mitmdump(tmp, up)
        procs["scrubgate"] = start_scrubgate(tmp, up, "scrubgate")
        procs["scrubgate-textnone"] = start_scrubgate(tmp, up, "scrubgate-textnone", textnone)
        p = payloads()
        scen, chat, screen = scenarios(p)
        # warm up every path once (certificates, workers' OCR models)
        for key, _, make, _, sg in scen:
            for name in ("mitmdump", sg):
                with procs[name].client() as c:
                    make(c)
        res["scenarios"] = []
        for key, desc, make, threads, sg in scen:
            print(f"scenario {key} ...", file=sys.stderr, flush=True)
            runs = {"mitmdump": [], "scrubgate": []}
            for i in range(rounds):
                order = ["mitmdump", "scrubgate"] if i % 2 == 0 else ["scrubgate", "mitmdump"]
                for who in order:
                    runs[who].append(run_load(procs["mitmdump" if who == "mitmdump" else sg], make, secs, threads))
            m, g = summarise(runs["mitmdump"]), summarise(runs["scrubgate"])
            res["scenarios"].append({"key": key, "description": desc, "threads": threads, "scrubgate_instance": sg,
                                     "mitmdump": m, "scrubgate": g,
                                     "ratio_req_s": g["req_s"] / m["req_s"] if m["req_s"] else float("nan"),
                                     "ratio_p50": g["p50_ms"] / m["p50_ms"], "ratio_p99": g["p99_ms"] / m["p99_ms"]})

        print("head-of-line ...", file=sys.stderr, flush=True)
        sg = procs["scrubgate"]
        hol_secs = secs * 2
        pause = 0.02
        hol = {"chat_threads": 2, "upload_threads": 4, "pause_ms": pause * 1000, "seconds": hol_secs}
        idle_runs, loaded_runs, upl_runs = [], [], []
        for i in range(rounds):
            idle_runs.append(run_load(sg, chat, hol_secs, 2, pause))
            box = {}
            th = threading.Thread(target=lambda: box.setdefault("u", run_load(sg, screen, hol_secs + 1, 4)))
            th.start()
            time.sleep(1.0)  # let the uploads fill the workers
            loaded_runs.append(run_load(sg, chat, hol_secs - 0.5, 2, pause))
            th.join()
            upl_runs.append(box["u"])
        hol["idle"] = {"chat": summarise(idle_runs)}
        hol["loaded"] = {"chat": summarise(loaded_runs), "uploads": summarise(upl_runs)}
        res["head_of_line"] = hol

        print("memory ...", file=sys.stderr, flush=True)
        res["memory"] = bench_memory(sg, a.quick)
    except BaseException:
        # interrupted (timeout, Ctrl-C, a crash): keep what was measured, marked partial
        res["partial"] = True
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = f"proxy-{res['date']}" + ("-quick" if a.quick else "") + "-partial"
        (out / f"{stem}.json").write_text(json.dumps(res, indent=1, default=str))
        print(f"interrupted; wrote {out / stem}.json", file=sys.stderr)
        raise
    finally:
        for pr in procs.values():
            pr.stop()
        server.shutdown()
    res["wall_s"] = time.monotonic() - started
    res["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]

    T = []
    ratio = hol["loaded"]["chat"]["p95_ms"] / hol["idle"]["chat"]["p95_ms"]
    T.append({"target": "head-of-line: chat p95 while 4 OCR uploads run ≤ 1.5× idle p95",
              "measured": f"{hol['loaded']['chat']['p95_ms']:.1f} ms vs {hol['idle']['chat']['p95_ms']:.1f} ms idle = {ratio:.2f}×",
              "verdict": "met" if ratio <= 1.5 else "gap: the chat path shares the event loop / CPU with the uploads "
                                                   "(2 cores, 2 OCR workers busy)"})
    for r in res["memory"]:
        ok = r["peak_over_upload"] < 10
        T.append({"target": f"memory bounded < 10× upload: {r['case']}",
                  "measured": f"peak {r['rss_peak'] / 1e6:.0f} MB = {r['peak_over_upload']:.1f}× "
                              f"(growth {r['rss_growth'] / 1e6:.0f} MB = {r['growth_over_upload']:.1f}×)",
                  "verdict": "met" if ok else ("met for growth, gap for the whole tree (fixed per-process baseline "
                                               "dominates small uploads)" if r["growth_over_upload"] < 10 else "gap")})
    res["targets"] = T
    res["notes"] = [
        "bare mitmdump decrypts bank.example.org (it has no pass-through list); scrubgate tunnels it without "
        "decryption because it is outside the catalogue. So (a) and (c) compare a TLS-intercepting proxy with a "
        "plain TCP tunnel on the scrubgate side.",
        "bare mitmdump forwards the Discord uploads untouched; scrubgate sanitises them in a worker process, so "
        "(d1)/(d2) ratios are the full cost of cleaning, not proxy overhead.",
        "(d1) runs against a second scrubgate with a policy copy `text: none, faces: keep`. Even so the engine "
        "decodes the pixels to scan for barcodes (policy has no metadata-only switch), so this is not the pure "
        "metadata-only path; bench/engine.py measures that one in-process.",
        "Everything (clients, upstream, both proxies, scrubgate's workers) runs on the same 2 cores, so "
        "absolute numbers are pessimistic; the ratios are the point.",
        "(d1) hung in both trial runs: with concurrent 2.7 MB JPEG uploads the text-none scrubgate stopped "
        "answering (idle CPU) and finished the queued requests only when it was shut down. Requests still "
        "running REQUEST_TIMEOUT + 5 s after a round ends are abandoned and counted as errors `stuck`; "
        "see the errors column.",
        "Memory: the sum of VmRSS counts shared pages (Python, libraries, Tesseract models) once per process.",
    ]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"proxy-{res['date']}" + ("-quick" if a.quick else "")
    (out / f"{stem}.json").write_text(json.dumps(res, indent=1, default=str))
    (out / f"{stem}.md").write_text(report(res))
    print(f"wrote {out / stem}.md/.json in {res['wall_s']:.0f} s", file=sys.stderr)
    for s in res["scenarios"]:
        print(f"{s['key']}: req/s {s['mitmdump']['req_s']:.1f} -> {s['scrubgate']['req_s']:.1f} "
              f"(×{s['ratio_req_s']:.2f}), p50 ×{s['ratio_p50']:.2f}, p99 ×{s['ratio_p99']:.2f}")
    for t in T:
        print(f"{t['target']}: {t['measured']} -> {t['verdict']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
