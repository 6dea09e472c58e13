"""The read-ahead / write-behind threads: same bytes, same errors, never a thread left behind."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tipline.crypto import envelope, keys
from tipline.crypto import format as fmt
from tipline.crypto.encoding import b64d, b64e
from tipline.crypto.errors import (
    EnvelopeContentError,
    EnvelopeFormatError,
    EnvelopeOpenError,
    TiplineError,
)
from tipline.crypto.inner import Attachment, Inner
from tipline.crypto.pipeline import ReadAhead, WriteBehind, fill, write_all

REPLY_PK = bytes(range(32))
FULL = 65536 + 17
VECTORS = sorted((Path(__file__).parents[1] / "vectors").glob("envelope-*.json"))
ERRORS: dict[str, type[TiplineError]] = {
    "format_error": EnvelopeFormatError,
    "open_error": EnvelopeOpenError,
    "content_error": EnvelopeContentError,
}


def helpers() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("tipline-")]


@pytest.fixture(autouse=True)
def no_thread_outlives_a_test() -> Iterator[None]:
    assert helpers() == []
    yield
    assert helpers() == []


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """One chunk per block: every envelope of two chunks or more takes the threaded path."""
    monkeypatch.setattr(envelope, "BLOCK_CHUNKS", 1)


@pytest.fixture
def threaded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The helper threads that open_envelope starts, by kind ("read" or "write")."""
    started: list[str] = []

    class CountedRead(ReadAhead):
        def __enter__(self) -> CountedRead:
            started.append("read")
            return super().__enter__()

    class CountedWrite(WriteBehind):
        def __enter__(self) -> CountedWrite:
            started.append("write")
            return super().__enter__()

    monkeypatch.setattr(envelope, "ReadAhead", CountedRead)
    monkeypatch.setattr(envelope, "WriteBehind", CountedWrite)
    return started


@pytest.fixture(params=[False, True], ids=["read-here", "read-ahead"])
def read_ahead(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture(scope="module")
def alice() -> keys.RecipientSecret:
    return keys.RecipientSecret.generate("Alice")


class Pieces:
    """A reader without readinto that returns at most ``step`` bytes per read."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.pos, self.step = data, 0, step

    def read(self, n: int = -1, /) -> bytes:
        n = min(self.step, len(self.data) - self.pos if n < 0 else n)
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out


class Failing(Pieces):
    """Fails with ``error`` once ``at`` bytes have been read."""

    def __init__(self, data: bytes, at: int, error: BaseException) -> None:
        super().__init__(data, 1 << 20)
        self.at, self.error = at, error

    def read(self, n: int = -1, /) -> bytes:
        if self.pos >= self.at:
            raise self.error
        return super().read(min(n, self.at - self.pos))


def sealed(alice: keys.RecipientSecret, blobs: list[bytes]) -> bytes:
    inner = Inner(
        "submission",
        "server",
        "hello",
        REPLY_PK,
        tuple(Attachment(f"f{i}", len(b)) for i, b in enumerate(blobs)),
    )
    out = io.BytesIO()
    envelope.seal(out, [alice.public.public_key], inner, [io.BytesIO(b) for b in blobs])
    return out.getvalue()


def opened(alice: keys.RecipientSecret, src: Any, **kw: Any) -> tuple[Inner, list[bytes]]:
    outputs: list[io.BytesIO] = []
    done: list[bytes] = []

    def sink(index: int, attachment: Attachment) -> io.BytesIO:
        if outputs:  # the earlier file is complete before the next one is asked for
            done.append(outputs[-1].getvalue())
            assert len(done[-1]) == sizes[len(done) - 1]
            outputs[-1].close()
        outputs.append(io.BytesIO())
        return outputs[-1]

    sizes: list[int] = kw.pop("sizes", [])
    inner = envelope.open_envelope(src, [alice.secret_key], sink, **kw)
    return inner, [*done, *(o.getvalue() for o in outputs[len(done) :])]


# The helpers on their own.


@pytest.mark.parametrize("step", [1 << 20, 1000, 7])
@pytest.mark.parametrize("readinto", [True, False])
def test_read_ahead_gives_every_byte_in_full_blocks(step: int, readinto: bool) -> None:
    data = os.urandom(10_000 + step % 13)
    src: Any = io.BytesIO(data) if readinto else Pieces(data, step)
    got = []
    with ReadAhead(src, 1024, depth=2) as ahead:
        while block := ahead.next():
            got.append(bytes(block))
        assert not ahead.next()  # stays at the end
    assert b"".join(got) == data
    assert all(len(b) == 1024 for b in got[:-1]) and 0 < len(got[-1]) <= 1024


def test_read_ahead_raises_the_readers_error_in_place() -> None:
    error = OSError(5, "input/output error")
    src = Failing(os.urandom(5000), 3000, error)
    got = b""
    with ReadAhead(src, 1000) as ahead, pytest.raises(OSError) as caught:
        while block := ahead.next():
            got += bytes(block)
    assert caught.value is error
    assert len(got) == 3000  # everything before the failure, nothing after


def test_leaving_early_stops_and_joins_the_reader() -> None:
    class Endless:
        def read(self, n: int = -1, /) -> bytes:
            return b"x" * n

    with pytest.raises(KeyboardInterrupt), ReadAhead(Endless(), 4096) as ahead:
        ahead.next()
        raise KeyboardInterrupt
    # the autouse fixture checks that no helper thread is left


def test_fill_stops_at_the_end_of_a_short_source() -> None:
    buf = bytearray(100)
    assert fill(Pieces(b"abc" * 10, 4), buf) == 30
    assert bytes(buf[:30]) == b"abc" * 10


def test_write_behind_writes_in_order_and_reuses_its_buffers() -> None:
    out = io.BytesIO()
    expected = b""
    with WriteBehind(16, depth=1) as writer:
        seen = set()
        for n in range(50):
            buf = writer.buffer()
            seen.add(id(buf))
            buf[:] = bytes([n]) * 16
            writer.write(out, memoryview(buf)[: n % 16 + 1])
            expected += bytes([n]) * (n % 16 + 1)
            writer.submit()
        writer.drain()
        assert out.getvalue() == expected
        assert len(seen) <= 2  # depth 1: one buffer in flight and one being filled


def test_write_behind_raises_the_writers_error() -> None:
    error = OSError(28, "no space left on device")

    class Full(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            raise error

    with WriteBehind(8) as writer, pytest.raises(OSError) as caught:
        for _ in range(10):
            writer.buffer()[:] = b"12345678"
            writer.write(Full(), memoryview(writer.buffer()))
            writer.submit()
        writer.drain()
    assert caught.value is error


def test_short_raw_writes_are_completed() -> None:
    class Dribble(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            self.data += bytes(data[:3])
            return min(3, len(data))

    out = Dribble()
    with WriteBehind(10) as writer:
        writer.buffer()[:] = b"0123456789"
        writer.write(out, memoryview(writer.buffer()))
        writer.drain()
    assert bytes(out.data) == b"0123456789"


# open_envelope on the threaded path.


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_every_envelope_vector_on_the_threaded_path(path: Path, read_ahead: bool) -> None:
    doc = json.loads(path.read_text())
    data = b64d(doc["envelope"], None, TiplineError, "vector")
    identities = [b64d(s, None, TiplineError, "vector") for s in doc["identities"]]
    outputs: list[io.BytesIO] = []

    def sink(index: int, attachment: object) -> io.BytesIO:
        outputs.append(io.BytesIO())
        return outputs[-1]

    if doc["outcome"] == "ok":
        inner = envelope.open_envelope(io.BytesIO(data), identities, sink, read_ahead=read_ahead)
        assert json.loads(inner.encode()) == doc["expected"]["inner"]
        assert [b64e(o.getvalue()) for o in outputs] == doc["expected"]["attachments"]
    else:
        with pytest.raises(ERRORS[doc["outcome"]]):
            envelope.open_envelope(io.BytesIO(data), identities, sink, read_ahead=read_ahead)


@pytest.mark.parametrize("step", [0, 1 << 20, 65553, 1000])
def test_large_envelopes_round_trip(
    alice: keys.RecipientSecret, step: int, read_ahead: bool, threaded: list[str]
) -> None:
    blobs = [os.urandom(3 << 20), b"", os.urandom(100_000), os.urandom(65536 * 5)]
    data = sealed(alice, blobs)
    copy = io.BytesIO()
    src = Pieces(data, step) if step else io.BytesIO(data)  # step 0: with readinto
    inner, outputs = opened(
        alice, src, copy_to=copy, sizes=[len(b) for b in blobs], read_ahead=read_ahead
    )
    assert outputs == blobs and inner.message == "hello"
    assert copy.getvalue() == data  # the envelope, byte for byte
    assert threaded == (["read", "write"] if read_ahead else ["write"])


def test_small_envelopes_start_no_thread(alice: keys.RecipientSecret, threaded: list[str]) -> None:
    blobs = [os.urandom(100_000)]
    assert opened(alice, io.BytesIO(sealed(alice, blobs)), read_ahead=True)[1] == blobs
    assert threaded == []


def test_nothing_to_write_starts_no_writer(
    alice: keys.RecipientSecret, threaded: list[str]
) -> None:
    data = sealed(alice, [os.urandom(1 << 20)])
    envelope.open_envelope(io.BytesIO(data), [alice.secret_key])
    assert threaded == []


@pytest.mark.usefixtures("small_blocks")
def test_truncation_at_every_chunk_boundary_is_refused(
    alice: keys.RecipientSecret, read_ahead: bool, threaded: list[str]
) -> None:
    data = sealed(alice, [os.urandom(65536 * 6)])
    for cut in range(fmt.header_size(1), len(data), FULL):
        for end in (e for e in (cut, cut + 1, cut + FULL - 1) if e < len(data)):
            with pytest.raises(EnvelopeOpenError):
                opened(alice, io.BytesIO(data[:end]), read_ahead=read_ahead)
    assert len(threaded) > 10  # all but the shortest went through the helper threads


@pytest.mark.usefixtures("small_blocks")
def test_tampering_and_trailing_bytes_are_refused(
    alice: keys.RecipientSecret, read_ahead: bool
) -> None:
    data = sealed(alice, [os.urandom(65536 * 4)])
    for pos in (len(data) // 2, len(data) - 1):
        bad = bytearray(data)
        bad[pos] ^= 1
        with pytest.raises(EnvelopeOpenError):
            opened(alice, io.BytesIO(bytes(bad)), read_ahead=read_ahead)
    for extra in (b"\x00", os.urandom(FULL), os.urandom(3 * FULL)):
        with pytest.raises(EnvelopeOpenError):
            opened(alice, io.BytesIO(data + extra), read_ahead=read_ahead)


@pytest.mark.usefixtures("small_blocks")
def test_a_readers_error_reaches_the_caller_unchanged(alice: keys.RecipientSecret) -> None:
    data = sealed(alice, [os.urandom(65536 * 8)])

    class DamagedStickError(TiplineError):
        """the stick was pulled"""

    error = DamagedStickError()
    with pytest.raises(DamagedStickError) as caught:
        opened(alice, Failing(data, len(data) // 2, error), read_ahead=True)
    assert caught.value is error


@pytest.mark.usefixtures("small_blocks")
def test_a_sinks_write_error_reaches_the_caller_unchanged(
    alice: keys.RecipientSecret, read_ahead: bool
) -> None:
    data = sealed(alice, [os.urandom(65536 * 8)])
    error = OSError(28, "no space left on device")

    class Full(io.RawIOBase):
        """Fills up after three writes: the later ones are on the writer's thread."""

        writes = 0

        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            self.writes += 1
            if self.writes > 3:
                assert threading.current_thread().name == "tipline-write-behind"
                raise error
            return len(data)

    with pytest.raises(OSError) as caught:
        envelope.open_envelope(
            io.BytesIO(data),
            [alice.secret_key],
            lambda i, a: Full(),  # type: ignore[arg-type,return-value]
            read_ahead=read_ahead,
        )
    assert caught.value is error


@pytest.mark.usefixtures("small_blocks")
def test_keyboard_interrupt_in_the_sink_joins_every_thread(
    alice: keys.RecipientSecret, read_ahead: bool
) -> None:
    data = sealed(alice, [os.urandom(65536 * 4), os.urandom(10)])

    def sink(index: int, attachment: Attachment) -> io.BytesIO:
        if index == 1:
            raise KeyboardInterrupt
        return io.BytesIO()

    with pytest.raises(KeyboardInterrupt):
        envelope.open_envelope(io.BytesIO(data), [alice.secret_key], sink, read_ahead=read_ahead)


def test_without_write_behind_everything_stays_on_the_callers_thread(
    alice: keys.RecipientSecret, threaded: list[str]
) -> None:
    blobs = [os.urandom(1 << 20), os.urandom(300_000)]
    data = sealed(alice, blobs)
    copy = io.BytesIO()
    _, outputs = opened(
        alice, io.BytesIO(data), copy_to=copy, write_behind=False, sizes=[len(b) for b in blobs]
    )
    assert outputs == blobs and copy.getvalue() == data
    assert threaded == []


# The helpers' finer promises: what each reads and writes, when, and from which buffer.


class Recorded:
    """A reader without readinto that records the size of every read it is asked for."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.pos, self.step = data, 0, step
        self.asked: list[int] = []

    def read(self, n: int = -1, /) -> bytes:
        self.asked.append(n)
        n = min(self.step, len(self.data) - self.pos, n)
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def test_fill_asks_for_exactly_what_is_missing() -> None:
    src = Recorded(bytes(range(100)), 30)
    buf = bytearray(70)
    assert fill(src, buf) == 70
    assert src.asked == [70, 40, 10]  # never more than the room left, never a read of 0
    assert bytes(buf) == bytes(range(70))
    short = Recorded(b"abc", 2)
    assert fill(short, bytearray(10)) == 3
    assert short.asked == [10, 8, 7]  # the read that returns nothing ends it


def test_fill_uses_readinto_when_there_is_one() -> None:
    class Into(io.BytesIO):
        calls = 0

        def read(self, n: int | None = -1, /) -> bytes:
            raise AssertionError("read instead of readinto")

        def readinto(self, b: Any, /) -> int:
            self.calls += 1
            return super().readinto(b)

    src = Into(b"x" * 50)
    assert fill(src, bytearray(80)) == 50
    assert src.calls == 2


def test_write_all_takes_none_as_everything_written() -> None:
    class Unbuffered:
        def __init__(self) -> None:
            self.got: list[bytes] = []

        def write(self, data: Any, /) -> None:
            self.got.append(bytes(data))

    target = Unbuffered()
    write_all(target, b"abcdef")
    assert target.got == [b"abcdef"]


def test_helper_threads_are_daemons() -> None:
    # A helper must never keep the interpreter alive after the caller is gone.
    with ReadAhead(io.BytesIO(b"x" * 10), 4), WriteBehind(4):
        names = {t.name: t.daemon for t in threading.enumerate() if t.name.startswith("tipline-")}
    assert names == {"tipline-read-ahead": True, "tipline-write-behind": True}


class Gate:
    """A reader that blocks in ``read`` until the gate opens, counting its reads."""

    def __init__(self) -> None:
        self.open, self.entered = threading.Event(), threading.Event()
        self.reads = 0

    def read(self, n: int = -1, /) -> bytes:
        self.reads += 1
        self.entered.set()
        assert self.open.wait(10)
        return b"g" * n


def test_read_ahead_stops_reading_once_the_consumer_left() -> None:
    src = Gate()
    timer = threading.Timer(0.5, src.open.set)
    with pytest.raises(KeyboardInterrupt), ReadAhead(src, 8, depth=2):
        assert src.entered.wait(10)
        timer.start()
        raise KeyboardInterrupt  # leaves while the helper is inside its first read
    timer.join()
    assert src.reads == 1  # a free buffer was waiting, but the helper did not read into it


@pytest.mark.parametrize(("depth", "ahead"), [(None, 2), (1, 1), (3, 3)])
def test_read_ahead_reads_depth_blocks_ahead(depth: int | None, ahead: int) -> None:
    src = Recorded(b"r" * 1000, 1000)
    kw = {} if depth is None else {"depth": depth}
    with ReadAhead(src, 10, **kw) as reader:
        deadline = time.monotonic() + 5
        while len(src.asked) < ahead and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # time enough to read one too many, were it allowed to
        assert len(src.asked) == ahead
        assert bytes(reader.next()) == b"r" * 10
        deadline = time.monotonic() + 5
        while len(src.asked) < ahead + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert len(src.asked) == ahead + 1  # the consumer holds one block: one more read


def test_read_ahead_ring_has_depth_buffers_and_the_one_held() -> None:
    seen: set[int] = set()
    with ReadAhead(io.BytesIO(os.urandom(4000)), 10, depth=2) as reader:
        while block := reader.next():
            assert isinstance(block.obj, bytearray)  # a ring buffer, not a new object
            seen.add(id(block.obj))
    assert len(seen) == 3


def test_read_ahead_puts_the_callers_first_buffer_in_the_ring() -> None:
    mine = bytearray(10)
    used = False
    with ReadAhead(io.BytesIO(os.urandom(1000)), 10, depth=1, held=mine) as reader:
        while block := reader.next():
            used = used or block.obj is mine
    assert used


def test_read_ahead_keeps_a_readers_own_whole_blocks() -> None:
    # A reader that hands out new bytes objects: a whole block is passed on as it came.
    class Whole:
        def __init__(self) -> None:
            self.given: list[bytes] = []

        def read(self, n: int = -1, /) -> bytes:
            out = os.urandom(n) if len(self.given) < 3 else b""
            self.given.append(out)
            return out

    src = Whole()
    got = []
    with ReadAhead(src, 16) as reader:
        while block := reader.next():
            got.append(block.obj)
    assert len(got) == 3 and all(a is b for a, b in zip(got, src.given, strict=False))


def test_read_ahead_tops_up_a_short_first_read() -> None:
    # A reader that gives 1 byte, then the rest: blocks are still whole, whatever the reads.
    class Dribble:
        def __init__(self, data: bytes) -> None:
            self.data, self.first = data, True

        def read(self, n: int = -1, /) -> bytes:
            n = 1 if self.first else n
            self.first = False
            out, self.data = self.data[:n], self.data[n:]
            return out

    data = os.urandom(100)
    with ReadAhead(Dribble(data), 16) as reader:
        blocks = []
        while block := reader.next():
            blocks.append(bytes(block))
    assert b"".join(blocks) == data
    assert [len(b) for b in blocks] == [16] * 6 + [4]


def test_read_ahead_after_an_error_stays_at_the_end() -> None:
    error = OSError(5, "input/output error")
    with ReadAhead(Failing(b"x" * 100, 50, error), 10) as reader:
        with pytest.raises(OSError):
            while reader.next():
                pass
        assert not reader.next()  # ended: it does not wait for a block that never comes
        assert not reader.next()


def test_keep_without_a_held_block_is_harmless() -> None:
    with ReadAhead(io.BytesIO(b"x" * 30), 10) as reader:
        release = reader.keep()  # nothing returned yet: nothing to keep
        assert release() is None
        assert bytes(reader.next()) == b"x" * 10


def test_write_behind_writes_nothing_after_an_error() -> None:
    error = OSError(28, "no space left on device")

    class FailsOnce:
        def __init__(self) -> None:
            self.calls = 0
            self.after: list[bytes] = []

        def write(self, data: Any, /) -> int:
            self.calls += 1
            if self.calls == 1:
                raise error
            self.after.append(bytes(data))
            return len(data)

    target = FailsOnce()
    with WriteBehind(4, depth=2) as writer, pytest.raises(OSError) as caught:
        for i in range(6):
            buf = writer.buffer()
            buf[:] = bytes([i]) * 4
            writer.write(target, memoryview(buf))
            writer.submit()
        writer.drain()
    assert caught.value is error
    assert target.after == []


def test_write_behind_drops_queued_writes_when_the_caller_leaves() -> None:
    gate, entered = threading.Event(), threading.Event()

    class Slow:
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def write(self, data: Any, /) -> int:
            entered.set()
            assert gate.wait(10)
            self.writes.append(bytes(data))
            return len(data)

    target = Slow()
    timer = threading.Timer(0.5, gate.set)
    with pytest.raises(KeyboardInterrupt), WriteBehind(4, depth=2) as writer:
        for i in range(3):
            buf = writer.buffer()
            buf[:] = bytes([i]) * 4
            writer.write(target, memoryview(buf))
            writer.submit()
        assert entered.wait(10)  # the first write is under way
        timer.start()
        raise KeyboardInterrupt
    timer.join()
    assert target.writes == [bytes(4)]  # the write under way ends; the queued ones are dropped


@pytest.mark.parametrize(("depth", "buffers"), [(None, 3), (1, 2)])
def test_write_behind_has_depth_blocks_in_flight(depth: int | None, buffers: int) -> None:
    gate = threading.Event()

    class Blocked:
        def write(self, data: Any, /) -> int:
            assert gate.wait(10)
            return len(data)

    got = 0

    def fill_blocks(writer: WriteBehind) -> None:
        nonlocal got
        for _ in range(buffers + 2):
            buf = writer.buffer()
            got += 1
            writer.write(Blocked(), memoryview(buf))
            writer.submit()

    kw = {} if depth is None else {"depth": depth}
    with WriteBehind(4, **kw) as writer:
        filler = threading.Thread(target=fill_blocks, args=(writer,))
        filler.start()
        deadline = time.monotonic() + 5
        while got < buffers and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # time enough to take one buffer too many, were there one
        assert got == buffers  # the next buffer() waits for the writer
        gate.set()
        filler.join(10)
        writer.drain()
    assert got == buffers + 2


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("copy", [False, True])
def test_the_read_ring_is_deeper_when_the_ciphertext_is_copied(
    alice: keys.RecipientSecret, monkeypatch: pytest.MonkeyPatch, copy: bool
) -> None:
    # A copied block stays out of the ring until the writer is done with it, so the reader gets
    # COPY_DEPTH more buffers then; and the block the caller read first joins the ring.
    made: list[tuple[int, int, bytearray | None]] = []

    class Recording(ReadAhead):
        def __init__(
            self, src: Any, size: int, depth: int = 2, held: bytearray | None = None
        ) -> None:
            made.append((size, depth, held))
            super().__init__(src, size, depth, held)

    monkeypatch.setattr(envelope, "ReadAhead", Recording)
    blobs = [os.urandom(65536 * 4)]
    data = sealed(alice, blobs)
    out = io.BytesIO() if copy else None
    assert opened(alice, io.BytesIO(data), read_ahead=True, copy_to=out)[1] == blobs
    assert out is None or out.getvalue() == data
    [(size, depth, held)] = made
    assert size == FULL  # one chunk per block here
    assert depth == envelope.DEPTH + (envelope.COPY_DEPTH if copy else 0) == (4 if copy else 2)
    assert isinstance(held, bytearray) and len(held) == FULL


def test_read_ahead_refuses_a_reader_that_gives_too_much() -> None:
    class Generous:
        def read(self, n: int = -1, /) -> bytes:
            return b"y" * (n + 1)

    with ReadAhead(Generous(), 10) as reader, pytest.raises(ValueError) as caught:
        reader.next()
    assert str(caught.value) == "read returned more bytes than it was asked for"


def test_read_ahead_reads_nothing_after_the_end() -> None:
    src = Recorded(b"z" * 20, 100)
    with ReadAhead(src, 10) as reader:
        assert [bytes(b) for b in iter(reader.next, memoryview(b""))] == [b"z" * 10] * 2
    assert src.asked == [10, 10, 10]  # the empty read ends it: no second look
