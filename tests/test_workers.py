"""The worker pool: timeouts and dead workers fail one job, then the pool recovers."""

import asyncio
import os

import pytest

from scrubgate.workers import WORKER_NICENESS, JobFailed, JobTimeout, Overloaded, WorkerDied, WorkerPool


def run(coro):
    return asyncio.run(coro)


async def _with_pool(fn, size=1, max_queue=4):
    restarts = []
    pool = WorkerPool(size, max_queue, on_restart=restarts.append)
    await pool.start()
    try:
        return await fn(pool), restarts
    finally:
        await pool.close()


def test_timeout_kills_the_job_and_the_pool_recovers():
    async def scenario(pool):
        with pytest.raises(JobTimeout):
            await pool.run("jobs:sleep", 30, timeout=0.5)
        return await pool.run("jobs:echo", "after", timeout=30)

    result, restarts = run(_with_pool(scenario))
    assert result == "after" and restarts == ["timeout"]


def test_dead_worker_fails_closed_and_is_replaced():
    async def scenario(pool):
        with pytest.raises(WorkerDied):
            await pool.run("jobs:die", None, timeout=30)
        return await pool.run("jobs:echo", 42, timeout=30)

    result, restarts = run(_with_pool(scenario))
    assert result == 42 and restarts == ["worker_crash"]


def test_job_exception_is_reported_by_type_only():
    async def scenario(pool):
        with pytest.raises(JobFailed) as e:
            await pool.run("jobs:boom", None, timeout=30)
        return str(e.value)

    message, _ = run(_with_pool(scenario))
    assert "ValueError" in message and "PLANTED" not in message


def test_queue_is_bounded():
    async def scenario(pool):
        busy = asyncio.ensure_future(pool.run("jobs:sleep", 1.0, timeout=30))
        await asyncio.sleep(0.2)
        waiting = asyncio.ensure_future(pool.run("jobs:echo", 1, timeout=30))
        await asyncio.sleep(0.1)
        with pytest.raises(Overloaded):
            await pool.run("jobs:echo", 2, timeout=30)
        return await busy, await waiting

    (slept, echoed), _ = run(_with_pool(scenario, size=1, max_queue=1))
    assert (slept, echoed) == ("slept", 1)


def test_jobs_run_in_parallel():
    async def scenario(pool):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.gather(*(pool.run("jobs:sleep", 0.5, timeout=30) for _ in range(2)))
        return loop.time() - t0

    elapsed, _ = run(_with_pool(scenario, size=2))
    assert elapsed < 0.95


def test_workers_run_below_the_proxy_priority():
    # OCR must not take the CPU from the event loop that serves everybody's chat.
    async def scenario(pool):
        return await pool.run("jobs:niceness", None, timeout=30)

    worker_nice, _ = run(_with_pool(scenario))
    assert worker_nice >= os.nice(0) + WORKER_NICENESS or worker_nice == 19


def test_a_payload_crosses_the_pipe_once_each_way_and_intact():
    # 24 MB each way: raw bytes beside the pickled call (send_bytes), not inside it.
    body = os.urandom(1 << 20) * 24

    async def scenario(pool):
        value, out = await pool.run_with_payload("jobs:reverse_payload", "t", body, timeout=60)
        unchanged = await pool.run_with_payload("jobs:keep_payload", "u", b"", timeout=60)
        return value, out, unchanged

    (value, out, unchanged), _ = run(_with_pool(scenario))
    assert value == ("t", len(body)) and out == body[::-1]
    assert unchanged == ("u", None)


def test_a_worker_that_dies_on_a_payload_job_fails_only_that_job():
    body = b"\0" * (64 << 20)  # far more than a pipe holds

    async def scenario(pool):
        with pytest.raises(WorkerDied):
            await pool.run_with_payload("jobs:die_with_payload", None, body, timeout=60)
        return await pool.run("jobs:echo", "after", timeout=30)

    result, restarts = run(_with_pool(scenario))
    assert result == "after" and restarts == ["worker_crash"]
