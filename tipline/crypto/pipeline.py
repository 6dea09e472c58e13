"""Reading ahead and writing behind on helper threads, so one stream uses two cores.

Opening an envelope reads ciphertext, decrypts it and writes plaintext, one step after another.
libsodium (through cffi) and the read and write system calls all release the GIL, so a thread
that reads the next block and a thread that writes the previous one run while the caller
decrypts. Both are bounded: a fixed ring of reusable buffers, handed back and forth, caps the
memory in flight whatever the stream's size.

The rules every user of these classes relies on:
- a helper thread never outlives the ``with`` block that started it: leaving it, by return,
  exception or KeyboardInterrupt, stops the thread and joins it;
- an exception raised in a helper thread (a read or write error, say) is raised again in the
  caller, the same object, at the point where the caller would have met it had it done the work
  itself; nothing after it is read or written.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self

Buffer = bytes | bytearray | memoryview


class Source(Protocol):
    """What ``ReadAhead`` reads from: ``read(n)``; ``readinto`` is used when there is one."""

    def read(self, size: int = -1, /) -> bytes: ...


class Target(Protocol):
    """What ``WriteBehind`` writes to."""

    def write(self, data: Buffer, /) -> int | None: ...


def write_all(target: Target, data: Buffer) -> None:
    """Write every byte of ``data``: raw files may take less than they are given."""
    view = memoryview(data)
    while len(view):
        n = target.write(view)
        if n is None or n >= len(view):
            return
        view = view[n:]


def fill(src: Source, buf: bytearray | memoryview) -> int:
    """Read into ``buf`` until it is full or ``src`` ends; return how many bytes came."""
    view = memoryview(buf)
    readinto: Callable[[memoryview], int | None] | None = getattr(src, "readinto", None)
    got = 0
    while got < len(view):
        if readinto is not None:
            n = readinto(view[got:]) or 0
        else:
            piece = src.read(len(view) - got)
            n = len(piece)
            view[got : got + n] = piece
        if not n:
            break
        got += n
    return got


class _StoppedError(Exception):
    """Internal: the consumer left, so the helper thread ends quietly."""


class _Helper:
    """One daemon thread and the error it met, joined on exit."""

    def __init__(self, name: str) -> None:
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._stop = False
        self.error: BaseException | None = None

    def _run(self) -> None:
        raise NotImplementedError

    def _main(self) -> None:
        try:
            self._run()
        except _StoppedError:
            pass
        except BaseException as exc:  # handed to the caller, who raises it
            self.error = exc
        finally:
            self._finished()

    def _finished(self) -> None:
        """Called last on the helper thread, whatever happened (wakes the consumer)."""

    def _wake(self) -> None:
        """Called on the consumer's thread to unblock a helper waiting for work or buffers."""

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop = True
        self._wake()
        self._thread.join()


class ReadAhead(_Helper):
    """Reads ``src`` to its end in blocks of ``block_size`` bytes, up to ``depth`` blocks ahead.

    ``next()`` returns the next block (every block is full except perhaps the last) or an empty
    view at the end; the view stays valid until the following ``next()``. ``held`` is the
    caller's buffer for the block it holds before the first ``next()``; it joins the ring.
    Each block is filled completely before it is handed over, so block boundaries depend only
    on ``block_size``, never on how the reads happened to come back.
    """

    def __init__(
        self, src: Source, block_size: int, depth: int = 2, held: bytearray | None = None
    ) -> None:
        super().__init__("tipline-read-ahead")
        self._src = src
        self._size = block_size
        self._free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        self._full: queue.SimpleQueue[tuple[Buffer, bytearray] | None] = queue.SimpleQueue()
        for _ in range(depth):  # ``depth`` blocks ahead of the consumer, who holds one more
            self._free.put(bytearray(block_size))
        # The buffer the caller read its own first block into joins the ring once released.
        self._held: bytearray | None = held if held is not None else bytearray(block_size)
        self._ended = False

    def _run(self) -> None:
        direct = getattr(self._src, "readinto", None) is None
        while True:
            buf = self._free.get()
            if buf is None or self._stop:
                raise _StoppedError
            data: Buffer
            if direct:
                # A reader that hands out new bytes objects (a bundle entry): keep its object
                # rather than copying it, when it gave a whole block in one read.
                data = self._src.read(self._size)
                if len(data) > self._size:
                    raise ValueError("read returned more bytes than it was asked for")
                if 0 < len(data) < self._size:
                    buf[: len(data)] = data
                    n = len(data) + fill(self._src, memoryview(buf)[len(data) :])
                    data = memoryview(buf)[:n]
            else:
                data = memoryview(buf)[: fill(self._src, buf)]
            self._full.put((data, buf))
            if len(data) < self._size:
                return  # the end: an empty or short block

    def _finished(self) -> None:
        self._full.put(None)

    def _wake(self) -> None:
        self._free.put(None)

    def next(self) -> memoryview:
        """The next block, or an empty view once the stream has ended."""
        if self._held is not None:
            self._free.put(self._held)
            self._held = None
        if self._ended:
            return memoryview(b"")
        item = self._full.get()
        if item is None:
            self._ended = True
            if self.error is not None:
                raise self.error
            return memoryview(b"")
        data, self._held = item
        if len(data) < self._size:
            self._ended = True
        return memoryview(data)

    def keep(self) -> Callable[[], None]:
        """Keep the block last returned valid after the next ``next()``; call the function
        returned (from any thread) once done with it, to give its buffer back to the ring."""
        buf, self._held = self._held, None
        if buf is None:
            return lambda: None
        return lambda: self._free.put(buf)


_Write = tuple[Target, memoryview, Callable[[], None] | None]
_Job = tuple[bytearray | None, list[_Write]]


class WriteBehind(_Helper):
    """Writes blocks of pending writes on a helper thread, ``depth`` blocks behind the caller.

    The caller fills a buffer from ``buffer()``, records writes of views into it with
    ``write()``, and hands the whole block over with ``submit()``; the buffer comes back to
    ``buffer()`` once its writes are done. ``drain()`` waits until every write recorded so far
    is done, and raises the first write error.
    """

    def __init__(self, block_size: int, depth: int = 2) -> None:
        super().__init__("tipline-write-behind")
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._todo: queue.SimpleQueue[_Job | None]
        self._todo = queue.SimpleQueue()
        for _ in range(depth + 1):
            self._free.put(bytearray(block_size))
        self._pending: list[_Write] = []
        self._current: bytearray | None = None
        self._outstanding = 0
        self._done = threading.Condition()

    def _run(self) -> None:
        while True:
            job = self._todo.get()
            if job is None:
                raise _StoppedError
            buf, writes = job
            for target, view, release in writes:
                try:
                    if self.error is None and not self._stop:
                        write_all(target, view)
                except BaseException as exc:  # kept for the caller; later writes are skipped
                    self.error = exc
                finally:
                    if release is not None:
                        release()
            writes.clear()
            if buf is not None:
                self._free.put(buf)
            with self._done:
                self._outstanding -= 1
                self._done.notify_all()

    def _finished(self) -> None:
        with self._done:
            self._outstanding = 0
            self._done.notify_all()

    def _wake(self) -> None:
        self._todo.put(None)

    def buffer(self) -> bytearray:
        """The buffer to fill next (waits for the writer to hand one back)."""
        if self._current is None:
            self._current = self._free.get()
        return self._current

    def write(
        self, target: Target, view: memoryview, release: Callable[[], None] | None = None
    ) -> None:
        """Write ``view`` (of the current buffer, or of memory left untouched until
        ``release``, called on the writer's thread once the write is done) to ``target``."""
        self._pending.append((target, view, release))

    def submit(self) -> None:
        """Hand the current buffer and its writes to the writer; raise an earlier write error."""
        if self.error is not None:
            raise self.error
        if self._current is None:
            return
        buf, self._current = self._current, None
        if not self._pending:
            self._free.put(buf)
            return
        writes, self._pending = self._pending, []
        with self._done:
            self._outstanding += 1
        self._todo.put((buf, writes))

    def drain(self) -> None:
        """Wait until every write recorded so far is done; raise the first write error.

        The current buffer stays the caller's: a view into it may still be in use.
        """
        if self.error is not None:
            raise self.error
        if self._pending:
            writes, self._pending = self._pending, []
            with self._done:
                self._outstanding += 1
            self._todo.put((None, writes))
        with self._done:
            self._done.wait_for(lambda: self._outstanding == 0)
        if self.error is not None:
            raise self.error
