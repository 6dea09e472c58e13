"""A TCP proxy between a browser and the test server: it records every byte the browser sends,
and can make the link behave like a Tor circuit (a round trip of most of a second, a few hundred
kB/s shared by every connection, and a round trip to open each stream).

The recording is what the browser really put on the wire, whatever the request's body type
(a Blob, a stream, a form), so a test that searches it for plaintext sees everything; each test
that relies on it also shows it finds a planted marker (a positive control).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

PIECE = 16 * 1024  # bytes read at a time: the granularity of the emulated link


@dataclass
class Link:
    """One direction of the emulated link: serialised at ``rate`` bytes/s, then ``delay`` s."""

    delay: float
    rate: float | None
    free_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arrival(self, size: int) -> float:
        """When ``size`` bytes handed over now reach the other side."""
        now = time.monotonic()
        with self.lock:
            start = max(now, self.free_at)
            end = start + (size / self.rate if self.rate else 0.0)
            self.free_at = end
        return end + self.delay


class Tap:
    """``with Tap(port, rtt=0.8, rate=500_000) as tap``: browse ``tap.url`` instead of the
    server; ``tap.sent()`` is every byte browsers sent through it since the last ``clear()``.
    """

    def __init__(self, port: int, rtt: float = 0.0, rate: float | None = None) -> None:
        self.upstream = port
        self.rtt = rtt
        self.up = Link(rtt / 2, rate)  # browser -> server
        self.down = Link(rtt / 2, rate)  # server -> browser
        # Each connection's reads, the connections in the order they first sent.
        self._sent: dict[int, list[bytes]] = {}
        self._connections = itertools.count()
        self._lock = threading.Lock()
        # Every task and stream of the tap's own, so that stopping ends and closes them all.
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._listener = socket.socket()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        """The address browsers use."""
        return f"http://127.0.0.1:{self.port}"

    def sent(self) -> bytes:
        """Everything browsers sent: each connection's bytes together and in order, the
        connections one after another in the order they first sent.

        Not in the order the reads arrived: connections send at the same time (Chromium fetches
        /favicon.ico on a connection of its own whenever it gets to it), and a request body
        read in pieces would then be cut by another connection's bytes, so a search for a run
        of it would miss bytes that did go out."""
        with self._lock:
            return b"".join(b"".join(pieces) for pieces in self._sent.values())

    def seen(self, marker: bytes, timeout: float = 10.0) -> bool:
        """Whether ``marker`` passed through within ``timeout`` seconds. For positive controls:
        a server may answer before it has read a body (a 404 to a PUT), so the browser can
        have its answer while the body's last bytes are still on their way through the tap."""
        deadline = time.monotonic() + timeout
        while marker not in self.sent():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def clear(self) -> None:
        """Forget what was recorded so far."""
        with self._lock:
            self._sent.clear()

    def __enter__(self) -> Tap:
        self._thread.start()
        self._listener.bind(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, sock=self._listener), self._loop
        )
        self._server = future.result(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        async def stop() -> None:
            # First no new connections; then those already accepted, each asyncio's task for
            # a turn or two more, hand their streams over while the server is still open (an
            # accept that finds it closed fails and leaves its socket open, and one cancelled
            # before it ran does too: a ResourceWarning, an error in this suite); then close.
            self._loop.remove_reader(self._listener.fileno())
            others = asyncio.all_tasks() - self._tasks - {asyncio.current_task()}
            if others:  # the accepts under way: none can start now
                await asyncio.wait(others, timeout=5)
            if self._server is not None:
                self._server.close()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # A connection's task cancelled before it ran closed nothing: close every stream.
            writers = list(self._writers)
            for writer in writers:
                writer.close()
            await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task of the tap's own, remembered until it ends."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        """A browser's new connection: its stream is remembered at once, and served by a task
        (not a coroutine handed to asyncio, whose task is not the tap's to end)."""
        self._writers.add(client_w)
        self._spawn(self._serve(client_r, client_w))

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            client_w.close()
            self._writers.discard(client_w)
            return
        self._writers.add(server_w)
        # Opening a stream to an onion service costs a round trip of the circuit.
        opened = time.monotonic() + self.rtt
        connection = next(self._connections)
        await asyncio.gather(
            self._spawn(self._pump(client_r, server_w, self.up, opened, record=connection)),
            self._spawn(self._pump(server_r, client_w, self.down, opened, record=None)),
            return_exceptions=True,
        )
        self._writers.difference_update((client_w, server_w))  # both closed by their pumps

    async def _pump(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        link: Link,
        opened: float,
        record: int | None,
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                at, data = await queue.get()
                wait = max(at, opened) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    with contextlib.suppress(OSError, RuntimeError):
                        if dst.can_write_eof():
                            dst.write_eof()
                        else:
                            dst.close()
                    return
                if dst.is_closing():
                    continue
                dst.write(data)
                with contextlib.suppress(OSError, ConnectionError):
                    await dst.drain()

        writer = self._spawn(deliver())
        try:
            await self._read(src, queue, link, record)
            await writer
        except asyncio.CancelledError:
            pass
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            with contextlib.suppress(OSError, RuntimeError):
                dst.close()

    async def _read(
        self,
        src: asyncio.StreamReader,
        queue: asyncio.Queue[tuple[float, bytes]],
        link: Link,
        record: int | None,
    ) -> None:
        """Read one direction until it ends, timing each piece; recorded as connection
        ``record`` unless that is None."""
        while True:
            try:
                data = await src.read(PIECE)
            except (OSError, ConnectionError):
                data = b""
            if record is not None and data:
                with self._lock:
                    self._sent.setdefault(record, []).append(data)
            await queue.put((link.arrival(len(data)) if data else time.monotonic(), data))
            if not data:
                break


@contextlib.contextmanager
def tapped(port: int, rtt: float = 0.0, rate: float | None = None) -> Iterator[Tap]:
    """A running ``Tap`` in front of ``port``."""
    with Tap(port, rtt, rate) as tap:
        yield tap
