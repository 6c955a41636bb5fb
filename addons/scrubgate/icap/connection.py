"""One ICAP client connection: bytes in, bytes out, and the quick path.

Most ICAP traffic is a request that is not ours, answered `204` from its heads alone
(Squid asks about every request it sees). The connection answers those straight from
`buffer_updated`: a quick look (`protocol.recognise`, a strict subset of REQMOD), then one
write, with no task, no coroutine and no timer per request. Anything else, such as
OPTIONS, a catalogue request, a body or a malformed request, goes to a task that reads
from the `Inbox` with the full parser. When that request is done and nothing more has
arrived, the connection returns to the quick path.

The server decides (`IcapServer.quick_answer`, `IcapServer.serve`); this module only moves
bytes, bounds them and keeps time.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..proxy import metrics
from .protocol import MAX_HEAD_BYTES, MORE, recognise

if TYPE_CHECKING:
    from .server import IcapServer

# Reading pauses above this many buffered bytes. It is more than the quick path ever
# needs (an ICAP head, the encapsulated heads and an empty preview), so a paused quick
# path cannot deadlock.
_HIGH_WATER = 4 * MAX_HEAD_BYTES
_RECV_BYTES = 64 * 1024  # one read at most


class Inbox:
    """Bytes received and not yet read. Offers StreamReader's `readuntil` and `readexactly`
    (same exceptions) to the stream parser, with the same flow control, and lets the quick
    path look at and drop bytes directly."""

    def __init__(self, transport: asyncio.Transport, limit: int = MAX_HEAD_BYTES) -> None:
        self.buf = bytearray()
        self.eof = False
        self.limit = limit
        self._transport = transport
        self._paused = False
        self._waiter: asyncio.Future | None = None

    def feed(self, data: bytes | memoryview) -> None:
        self.buf += data
        if self._waiter is not None:
            self._wake()
        self.flow()

    def feed_eof(self) -> None:
        self.eof = True
        self._wake()

    def drop(self, n: int) -> None:
        del self.buf[:n]
        self.flow()

    def flow(self) -> None:
        """Pause reading above the high-water mark, resume below half of it (after bytes
        were added to or taken from `buf` directly)."""
        if len(self.buf) > _HIGH_WATER:
            if not self._paused:
                self._paused = True
                self._transport.pause_reading()
        elif self._paused and len(self.buf) <= _HIGH_WATER // 2:
            self._paused = False
            self._transport.resume_reading()

    def _take(self, n: int) -> bytes:
        data = bytes(self.buf[:n])
        self.drop(n)
        return data

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self._waiter = None

    async def _wait(self) -> None:
        if self._paused:  # someone is waiting for more: let it in (StreamReader does the same)
            self._paused = False
            self._transport.resume_reading()
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        while True:
            at = self.buf.find(separator)
            if at >= 0:
                if at > self.limit:
                    raise asyncio.LimitOverrunError("separator found past the limit", at)
                return self._take(at + len(separator))
            if len(self.buf) > self.limit:
                raise asyncio.LimitOverrunError("separator not found within the limit", len(self.buf))
            if self.eof:
                partial = self._take(len(self.buf))
                raise asyncio.IncompleteReadError(partial, None)
            await self._wait()

    async def readexactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if self.eof:
                partial = self._take(len(self.buf))
                raise asyncio.IncompleteReadError(partial, n)
            await self._wait()
        return self._take(n)


class IcapConnection(asyncio.BufferedProtocol):
    """The transport side of one ICAP connection; it is also the `writer` the server's
    stream path writes to (`write`, `drain`, `close`, `get_extra_info`).

    A BufferedProtocol: the loop reads into one buffer per connection. (A plain Protocol
    gets a fresh 256 KiB bytes object per read, which costs more than the rest of a 204.)"""

    def __init__(self, server: IcapServer, timeout: float) -> None:
        self.server = server
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.inbox: Inbox | None = None
        self.streaming = False  # the stream path has the connection
        self.task: asyncio.Task | None = None  # held, so that the loop does not lose it
        self.counted = False
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future] = []
        self._last = 0.0  # loop time the last request was answered (or the connection opened)
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._recv = memoryview(bytearray(_RECV_BYTES))

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.inbox = Inbox(transport)
        if not self.server.admit_connection(self):
            transport.close()
            return
        self.counted = True
        self._loop = loop = asyncio.get_running_loop()
        self._last = loop.time()
        self._timer = loop.call_at(self._last + self.timeout, self._on_timer)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._recv

    def buffer_updated(self, nbytes: int) -> None:
        if self.streaming:
            self.inbox.feed(self._recv[:nbytes])
            return
        # The quick path, inlined: a 204 here costs about as much as the socket calls
        # around it, so each attribute lookup and call shows in requests per second.
        self.inbox.buf += self._recv[:nbytes]
        self._quick()
        self.inbox.flow()  # what is left may wait for answers the client does not read

    def eof_received(self) -> bool:
        self.inbox.feed_eof()
        if not self.streaming:
            if self.inbox.buf:
                self._start_task()  # half a request: the stream parser says what is wrong
            else:
                self.transport.close()  # closed between requests
        return True  # keep our side open: an answer may still be written

    def connection_lost(self, exc: Exception | None) -> None:
        self.inbox.feed_eof()
        if self._timer:
            self._timer.cancel()
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionResetError("connection lost"))
        self._drain_waiters.clear()
        if self.counted:
            self.counted = False
            self.server.release_connection(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()
        if not self.streaming and not self.transport.is_closing():
            self._quick()

    # -- the writer the stream path uses -------------------------------------------------------
    def write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        if self.transport.is_closing():
            await asyncio.sleep(0)
            raise ConnectionResetError("connection closed")
        if self._write_paused:
            waiter = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def close(self) -> None:
        self.transport.close()

    def get_extra_info(self, name: str, default=None):
        return self.transport.get_extra_info(name, default)

    # -- the quick path ------------------------------------------------------------------------
    def _quick(self) -> None:
        """Answer every whole request in the inbox that the server can answer from its heads;
        hand the first one it cannot to the stream path."""
        inbox = self.inbox
        buf = inbox.buf
        if not buf or self._write_paused or self.transport.is_closing():
            return  # (write paused: the client is not reading our answers; read no more of its requests)
        write = self.transport.write
        quick_answer = self.server.quick_answer
        answered = False
        while True:
            found = recognise(buf)
            if found.__class__ is not tuple:
                if found != MORE:
                    self._start_task()
                break
            length, http_head = found
            answer = quick_answer(http_head)
            if answer is None:
                self._start_task()
                break
            del buf[:length]
            write(answer)
            answered = True
            if not buf or self._write_paused:
                break
        if answered:
            self._last = self._loop.time()
            inbox.flow()

    def _start_task(self) -> None:
        # A flag, not `self.task`: under an eager task factory the task may finish before
        # create_task returns.
        self.streaming = True
        self.task = asyncio.get_running_loop().create_task(self._stream())

    async def _stream(self) -> None:
        """The stream path: serve requests until the inbox is empty between two, then give the
        connection back to the quick path (or close it)."""
        try:
            keep = await self.server.serve(self)
        finally:
            self.streaming = False
        if not keep or self.transport.is_closing():
            self.transport.close()
            return
        self._last = asyncio.get_running_loop().time()
        if self.inbox.buf:
            self._quick()
        elif self.inbox.eof:
            self.transport.close()

    def _on_timer(self) -> None:
        """Idle and slow clients: cut off `timeout` seconds after the last answer. The stream
        path keeps its own time per request, so a connection in it is left alone."""
        loop = asyncio.get_running_loop()
        if not self.streaming and loop.time() >= self._last + self.timeout:
            if self.inbox.buf:  # a request started and never finished arriving
                metrics.ICAP_ERRORS.labels("timeout").inc()
            self.transport.close()
            return
        when = loop.time() + self.timeout if self.streaming else self._last + self.timeout
        self._timer = loop.call_at(when, self._on_timer)
