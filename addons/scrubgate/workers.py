"""A process pool that can time out a job and survive a dead worker.

mitmproxy serves every flow from one asyncio loop, so decoding and cleaning
images there would stall everybody's chat. Jobs go to worker processes
instead. `concurrent.futures.ProcessPoolExecutor` cannot kill one stuck job
and breaks entirely when one worker dies, so this pool keeps one pipe per
worker: a job that overruns gets its worker killed and replaced, and only
that job fails.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

log = logging.getLogger("scrubgate.workers")

# Workers run below the proxy's priority. On a small gateway the OCR workers
# can take every core, and then each chat message waits for the scheduler
# behind them; niced, the event loop (milliseconds of work per request) is
# served first and the uploads, which wait seconds for OCR anyway, barely
# notice. Raising niceness needs no privilege. SCRUBGATE_WORKER_NICENESS
# overrides it (0 turns it off; bench/proxy.py compares the two).
WORKER_NICENESS = int(os.environ.get("SCRUBGATE_WORKER_NICENESS", "10"))


# How long a starting worker may take to load its models before it is handed jobs anyway.
WARM_UP_SECONDS = 120.0


class PoolError(Exception):
    reason = "engine_error"


class JobTimeout(PoolError):
    reason = "timeout"


class WorkerDied(PoolError):
    reason = "worker_crash"


class Overloaded(PoolError):
    reason = "overloaded"


class JobFailed(PoolError):
    reason = "engine_error"


def _resolve(name: str) -> Callable[[Any], Any]:
    """'package.module:function' -> the function (names come from our code, never from traffic)."""
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def _worker_main(conn, warm_up: str | None = None) -> None:
    from . import logsafe
    logsafe.install()  # this process's stderr is the gateway's log
    # Tesseract spawns its own threads per call; on small machines they cost more than they win.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        os.nice(WORKER_NICENESS)
    except OSError:
        pass  # a sandbox that forbids it: slower chat under load, nothing worse
    functions: dict[str, Callable[[Any], Any]] = {}
    if warm_up:
        # Load models (OCR language data, detectors) before the first upload waits on them.
        try:
            _resolve(warm_up)()
        except Exception:
            pass  # the job itself will fail, and report, if the model really cannot load
    try:
        conn.send("ready")
    except (OSError, ValueError):
        return
    while True:
        try:
            name, arg, with_payload = conn.recv()
            payload = conn.recv_bytes() if with_payload else None
        except (EOFError, OSError, KeyboardInterrupt):
            return
        out = None
        try:
            if name not in functions:
                functions[name] = _resolve(name)
            if with_payload:
                value, out = functions[name](arg, payload)
            else:
                value = functions[name](arg)
            result = ("ok", value, out is not None)
        except Exception as e:  # reported by type only: messages may quote the payload
            result, out = ("err", type(e).__name__, False), None
        del payload
        try:
            conn.send(result)
            if out is not None:
                conn.send_bytes(out)
        except (OSError, ValueError):
            return


def _consume(future) -> None:
    if not future.cancelled():
        future.exception()


class _Worker:
    def __init__(self, ctx, warm_up: str | None = None) -> None:
        self.parent, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child, warm_up), daemon=True,
                                   name="scrubgate-worker")
        self.process.start()
        child.close()

    def wait_ready(self, seconds: float = WARM_UP_SECONDS) -> None:
        """Block until the worker has loaded its models. A job's timeout must not pay for
        a fresh worker's warm-up (seconds on a busy machine). A worker that dies or never
        answers is handed out anyway: its first job then fails and replaces it."""
        try:
            if self.parent.poll(seconds):
                self.parent.recv()
        except (EOFError, OSError):
            pass

    def call(self, name: str, arg: Any, payload: bytes | None) -> tuple[str, Any, bytes | None]:
        # The payload (an upload's body) goes as raw bytes beside the pickled call, and the
        # answer's bytes come back the same way: send_bytes writes from the caller's buffer,
        # so the gateway never holds a pickled copy of an upload.
        self.parent.send((name, arg, payload is not None))
        if payload is not None:
            self.parent.send_bytes(payload)
        status, value, with_out = self.parent.recv()
        return status, value, self.parent.recv_bytes() if with_out else None

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.parent.close()


class WorkerPool:
    def __init__(self, size: int = 0, max_queue: int = 64,
                 on_restart: Callable[[str], None] | None = None, warm_up: str | None = None) -> None:
        self.size = size or os.cpu_count() or 1
        self.warm_up = warm_up  # "module:function" each worker runs once at start
        self.max_queue = max_queue
        self.on_restart = on_restart or (lambda reason: None)
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(["scrubgate.job"])
        self._threads = ThreadPoolExecutor(self.size + 2, thread_name_prefix="scrubgate-pipe")
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._workers: set[_Worker] = set()
        self.waiting = 0
        self.busy = 0
        self.closed = False
        self._tasks: set[asyncio.Task] = set()

    @property
    def ready(self) -> bool:
        return not self.closed and len(self._workers) == self.size and all(
            w.process.is_alive() for w in self._workers)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        workers = await asyncio.gather(*(loop.run_in_executor(self._threads, _Worker, self._ctx, self.warm_up)
                                         for _ in range(self.size)))
        await asyncio.gather(*(loop.run_in_executor(self._threads, w.wait_ready) for w in workers))
        for w in workers:
            self._workers.add(w)
            self._idle.put_nowait(w)

    async def _replace(self, worker: _Worker, reason: str) -> None:
        loop = asyncio.get_running_loop()
        self._workers.discard(worker)
        await loop.run_in_executor(self._threads, worker.kill)
        if self.closed:
            return
        fresh = await loop.run_in_executor(self._threads, _Worker, self._ctx, self.warm_up)
        self._workers.add(fresh)
        await loop.run_in_executor(self._threads, fresh.wait_ready)
        self._idle.put_nowait(fresh)
        self.on_restart(reason)
        log.warning("scrubgate worker replaced after %s", reason)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)  # keep a reference until done, or the task may be collected
        task.add_done_callback(self._tasks.discard)

    async def run(self, function: str, arg: Any, timeout: float) -> Any:
        """`function(arg)` in a worker: its value."""
        value, _ = await self._run(function, arg, None, timeout)
        return value

    async def run_with_payload(self, function: str, arg: Any, payload: bytes,
                               timeout: float) -> tuple[Any, bytes | None]:
        """`function(arg, payload)` in a worker, which returns (value, bytes or None).
        The payload and the returned bytes cross the pipe once each, unpickled."""
        return await self._run(function, arg, payload, timeout)

    async def _run(self, function: str, arg: Any, payload: bytes | None, timeout: float):
        if self.closed:
            raise WorkerDied("pool is shut down")
        if self._idle.empty() and self.waiting >= self.max_queue:
            raise Overloaded(f"{self.waiting} uploads already waiting for a worker")
        self.waiting += 1
        try:
            worker = await self._idle.get()
        finally:
            self.waiting -= 1
        loop = asyncio.get_running_loop()
        self.busy += 1
        try:
            future = loop.run_in_executor(self._threads, worker.call, function, arg, payload)
            future.add_done_callback(_consume)  # a killed worker's late error is expected
            try:
                status, value, out = await asyncio.wait_for(asyncio.shield(future), timeout)
            except asyncio.TimeoutError:
                self._spawn(self._replace(worker, "timeout"))
                raise JobTimeout(f"job ran over {timeout:g} s") from None
            except (EOFError, OSError, BrokenPipeError):
                self._spawn(self._replace(worker, "worker_crash"))
                raise WorkerDied("worker process died during the job") from None
            except asyncio.CancelledError:
                # The flow went away (client hung up); the worker's answer is now stale.
                self._spawn(self._replace(worker, "cancelled"))
                raise
        finally:
            self.busy -= 1
        self._idle.put_nowait(worker)
        if status == "err":
            raise JobFailed(f"job raised {value}")
        return value, out

    async def close(self) -> None:
        self.closed = True
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._threads, w.kill) for w in list(self._workers)),
                             return_exceptions=True)
        self._workers.clear()
        self._threads.shutdown(wait=False, cancel_futures=True)
