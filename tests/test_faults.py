"""Fault injection on a real gateway: workers killed and hung, clients that vanish or
crawl, an upstream that fails, a policy broken under load.

Every upload carries planted identifiers in three places: EXIF (Artist, Copyright,
ImageDescription), a JPEG comment, and the pixels (a PACS banner). The upstream is a
sink that records every byte it receives. For every case:

- every request gets an answer (a cleaned upload's 200, or a 403 that says why);
- nothing planted reaches the sink, in metadata or (OCR-judged) in the pixels;
- no upload is forwarded twice;
- the gateway recovers: the next upload is cleaned and forwarded.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time
import uuid

import httpx
import pytest

from conftest import gateway_with_policy_edits, stop_gateway
from uploads import (JPEG, assert_answered, assert_sink_clean, fresh, in_background, metric, received, tunnel,
                     upload)

@pytest.fixture(scope="module")
def faulty(tmp_path_factory, upstream):
    """A gateway with a short job timeout (a hung worker is found out in 6 s) on its own
    copy of the policies, so that the reload case can break and mend them."""
    tmp = tmp_path_factory.mktemp("faults")
    gw = gateway_with_policy_edits(tmp, upstream, {"job_timeout_seconds: 30": "job_timeout_seconds: 6"})
    gw.policy_path = tmp / "policies" / "default.yaml"
    yield gw
    stop_gateway(gw)


# -- helpers ----------------------------------------------------------------------------------

def worker_pids(gw) -> list[int]:
    """The sanitiser workers: children of the gateway's forkserver."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    servers = [p for p, pp in parents.items() if pp == gw.proc.pid and _is_forkserver(p)]
    return [p for p, pp in parents.items() if pp in servers]


def _is_forkserver(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"forkserver" in f.read()
    except OSError:
        return False


def wait_busy(gw, at_least: int = 1, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if metric(gw, "scrubgate_workers_busy") >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError("no worker became busy")


def assert_recovers(gw, upstream) -> None:
    tag = "after-" + uuid.uuid4().hex[:8]
    r = upload(gw, tag)
    assert r.status_code == 200, r.text[:200]
    assert len(received(upstream, tag)) == 1
    assert_sink_clean(upstream, [tag], judge_pixels=0)


# -- workers ----------------------------------------------------------------------------------

def test_sigkill_a_worker_with_20_uploads_in_flight(faulty, upstream):
    restarts = metric(faulty, "scrubgate_worker_restarts_total", reason="worker_crash")
    runner, tags, holder = in_background(faulty, "kill", 20)
    wait_busy(faulty, 2)
    victims = worker_pids(faulty)
    assert len(victims) == 2, victims
    os.kill(victims[0], signal.SIGKILL)
    runner.join(timeout=300)
    assert not runner.is_alive()
    counts = assert_answered(holder, {"worker_crash"})
    assert counts.get("worker_crash", 0) >= 1, counts  # the killed worker's job failed closed
    assert counts.get("cleaned", 0) >= 15, counts  # the rest were cleaned
    assert_sink_clean(upstream, tags)
    for tag, r in holder.items():  # a refused upload never reached the upstream
        if r.status_code == 403:
            assert received(upstream, tag) == []
    assert metric(faulty, "scrubgate_worker_restarts_total", reason="worker_crash") >= restarts + 1
    assert len(worker_pids(faulty)) == 2  # replaced
    assert_recovers(faulty, upstream)


def test_sigstop_a_worker_mid_job_times_out_and_it_is_replaced(faulty, upstream):
    restarts = metric(faulty, "scrubgate_worker_restarts_total", reason="timeout")
    runner, tags, holder = in_background(faulty, "stop", 4)
    wait_busy(faulty, 1)
    stopped = worker_pids(faulty)
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)  # hung: alive, silent
    try:
        runner.join(timeout=120)
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass  # already replaced
    assert not runner.is_alive()
    counts = assert_answered(holder, {"timeout"})
    assert counts.get("timeout", 0) >= 1, counts
    assert_sink_clean(upstream, tags, judge_pixels=0)
    assert metric(faulty, "scrubgate_worker_restarts_total", reason="timeout") >= restarts + 1
    assert not set(worker_pids(faulty)) & set(stopped)  # the hung workers are gone
    assert_recovers(faulty, upstream)


# -- clients ----------------------------------------------------------------------------------

def test_a_client_that_vanishes_halfway_through_a_10_mb_upload(faulty, upstream):
    tag = "abort-" + uuid.uuid4().hex[:8]
    body = fresh(tag) + b"\x00" * (10 * 1024 * 1024 - len(JPEG) - 64)  # 10 MB: the picture, then padding
    tls = tunnel(faulty)
    tls.sendall(f"POST /api/files.upload?fid={tag} HTTP/1.1\r\nHost: slack.com\r\n"
                f"Content-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n\r\n".encode())
    tls.sendall(body[:len(body) // 2])
    tls.close()  # gone, 5 MB short
    time.sleep(2)
    assert received(upstream, tag) == []  # no half upload was forwarded
    assert faulty.proc.poll() is None
    assert_recovers(faulty, upstream)


def test_slow_uploads_do_not_hold_up_chat(faulty, upstream):
    """Four clients send 200 kB at 20 kB/s (10 s each) while chat goes on: the gateway
    waits for each body without blocking anyone else."""
    def crawl(tag: str) -> bytes:
        body = fresh(tag) + b"\x00" * (200_000 - len(JPEG) - 64)
        tls = tunnel(faulty)
        tls.sendall(f"POST /api/files.upload?fid={tag} HTTP/1.1\r\nHost: slack.com\r\n"
                    f"Content-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        for i in range(0, len(body), 2000):
            tls.sendall(body[i:i + 2000])
            time.sleep(0.1)
        answer = tls.recv(200)
        tls.close()
        return answer

    tags = [f"crawl-{i}-{uuid.uuid4().hex[:6]}" for i in range(4)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        crawlers = [pool.submit(crawl, t) for t in tags]
        times = []
        with faulty.client() as c:
            while not all(f.done() for f in crawlers) and len(times) < 200:
                t0 = time.perf_counter()
                r = c.post("https://slack.com/api/chat.postMessage", json={"channel": "C1", "text": "bed 4 ok"})
                times.append(time.perf_counter() - t0)
                assert r.status_code == 200
                time.sleep(0.1)
        answers = [f.result() for f in crawlers]
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers), answers
    times.sort()
    p95 = times[int(0.95 * (len(times) - 1))]
    assert len(times) >= 20 and p95 < 1.0, (len(times), p95)
    assert_sink_clean(upstream, tags, judge_pixels=0)


# -- the upstream -----------------------------------------------------------------------------

@pytest.mark.parametrize("fault, status", [("500", 500), ("reset", 502), ("slow", 200)])
def test_upstream_faults_never_leak_or_duplicate(faulty, upstream, fault, status):
    tag = f"up{fault}-{uuid.uuid4().hex[:6]}"
    r = upload(faulty, f"{tag}&fault={fault}")
    assert r.status_code == status, r.text[:200]
    got = received(upstream, tag)
    assert len(got) == 1  # forwarded once, cleaned, and not retried
    assert_sink_clean(upstream, [tag], judge_pixels=0)
    assert_recovers(faulty, upstream)


# -- the policy -------------------------------------------------------------------------------

def test_a_broken_policy_under_load_fails_no_request(faulty, upstream):
    failures = metric(faulty, "scrubgate_policy_reloads_total", result="failure")
    good = faulty.policy_path.read_text()
    runner, tags, holder = in_background(faulty, "reload", 8)
    try:
        faulty.policy_path.write_text(good + "\nrules: [this is not: a rule\n")  # invalid YAML
        deadline = time.monotonic() + 15
        while metric(faulty, "scrubgate_policy_reloads_total", result="failure") <= failures:
            assert time.monotonic() < deadline, "the broken policy was never noticed"
            time.sleep(0.2)
    finally:
        faulty.policy_path.write_text(good + "\n# mended\n")
    runner.join(timeout=300)
    counts = assert_answered(holder, set())  # no refusal at all: the running policy stayed
    assert counts == {"cleaned": len(tags)}
    assert_sink_clean(upstream, tags, judge_pixels=0)
    r = httpx.get(f"http://127.0.0.1:{faulty.metrics_port}/readyz", timeout=10)
    assert r.status_code == 200
    assert_recovers(faulty, upstream)


# -- memory: the in-flight budget ---------------------------------------------------------------

@pytest.fixture(scope="module")
def budgeted(tmp_path_factory, upstream):
    """1 MiB of bodies in flight at most (and 1 MiB per upload, so one always fits)."""
    gw = gateway_with_policy_edits(tmp_path_factory.mktemp("budget"), upstream, {
        "max_body_bytes: 52428800": "max_body_bytes: 1048576",
        "max_inflight_bytes: 268435456": "max_inflight_bytes: 1048576"})
    yield gw
    stop_gateway(gw)


def test_uploads_beyond_the_inflight_budget_are_refused_and_the_budget_comes_back(budgeted, upstream):
    # A client declares 700 kB and sends only the first 100 kB: it holds 700 kB of the budget.
    held = "held-" + uuid.uuid4().hex[:6]
    tls = tunnel(budgeted)
    tls.sendall(f"POST /api/files.upload?fid={held} HTTP/1.1\r\nHost: slack.com\r\n"
                f"Content-Type: image/jpeg\r\nContent-Length: 700000\r\n\r\n".encode() + fresh(held)[:100_000])
    deadline = time.monotonic() + 10
    while metric(budgeted, "scrubgate_inflight_bytes") < 700_000:
        assert time.monotonic() < deadline, "the declared body never counted"
        time.sleep(0.05)
    # 600 kB more would overrun 1 MiB: refused before its body is even read, never forwarded.
    big = "big-" + uuid.uuid4().hex[:6]
    padded = fresh(big) + b"\x00" * (600_000 - len(JPEG) - 64)
    r = upload(budgeted, big, padded)
    assert r.status_code == 403 and r.headers["x-scrubgate-reason"] == "overloaded", r.text[:200]
    assert received(upstream, big) == []
    with budgeted.client() as c:  # chat fits beside it
        assert c.post("https://slack.com/api/chat.postMessage", json={"text": "ok"}).status_code == 200
    tls.close()  # the holder gives up: its share comes back
    deadline = time.monotonic() + 10
    while metric(budgeted, "scrubgate_inflight_bytes") > 0:
        assert time.monotonic() < deadline, "an aborted upload kept its share of the budget"
        time.sleep(0.05)
    again = "again-" + uuid.uuid4().hex[:6]
    r = upload(budgeted, again, fresh(again) + b"\x00" * (600_000 - len(JPEG) - 64))
    assert r.status_code == 200, r.text[:200]
    assert_sink_clean(upstream, [again], judge_pixels=0)
    assert received(upstream, held) == []


def test_a_chunked_upload_holds_a_whole_upload_of_the_budget_while_it_is_read(budgeted, upstream):
    # No Content-Length: mitmproxy reads a chunked body to its end, so the body's share of
    # the budget is taken up front -- a whole max_body_bytes (here 1 MiB, the whole budget).
    held = "chunked-" + uuid.uuid4().hex[:6]
    tls = tunnel(budgeted)
    first = fresh(held)[:50_000]
    tls.sendall(f"POST /api/files.upload?fid={held} HTTP/1.1\r\nHost: slack.com\r\nContent-Type: image/jpeg\r\n"
                f"Transfer-Encoding: chunked\r\n\r\n{len(first):x}\r\n".encode() + first + b"\r\n")
    deadline = time.monotonic() + 10
    while metric(budgeted, "scrubgate_inflight_bytes") < 1048576:
        assert time.monotonic() < deadline, "the chunked body never counted"
        time.sleep(0.05)
    small = "small-" + uuid.uuid4().hex[:6]
    r = upload(budgeted, small)
    assert r.status_code == 403 and r.headers["x-scrubgate-reason"] == "overloaded", r.text[:200]
    assert received(upstream, small) == []
    tls.close()
    deadline = time.monotonic() + 10
    while metric(budgeted, "scrubgate_inflight_bytes") > 0:
        assert time.monotonic() < deadline, "an aborted chunked upload kept its share of the budget"
        time.sleep(0.05)
    assert received(upstream, held) == []
    assert upload(budgeted, "after-" + uuid.uuid4().hex[:6]).status_code == 200


def test_a_download_is_streamed_through_not_held_whole(budgeted):
    # The upstream sends 64 KiB, waits 3 s, then 2 MiB: a buffering proxy would hold
    # (and count in memory) the whole answer and deliver nothing for 3 s.
    with budgeted.client() as c:
        t0 = time.monotonic()
        with c.stream("GET", "https://slack.com/files/big.bin?download=trickle") as r:
            assert r.status_code == 200
            stream = r.iter_bytes()
            first = next(stream)
            first_at = time.monotonic() - t0
            total = len(first) + sum(len(b) for b in stream)
        done_at = time.monotonic() - t0
    assert total == 65536 + (2 << 20)
    assert done_at >= 3 and first_at < 2.5, (first_at, done_at)
