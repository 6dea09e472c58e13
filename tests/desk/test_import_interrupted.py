"""An import stopped part-way through its threaded path: by an error on a helper thread (a
stick pulled, a full disk) or by SIGKILL. The vault keeps what it had plus whole items only:
every listed item is on disk and authenticated, nothing half-written is listed, and importing
the same bundle again brings the rest."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tipline.crypto import envelope
from tipline.desk import importer
from tipline.desk.importer import import_bundle
from tipline.desk.maintenance import verify
from tipline.desk.vault import Vault

from .conftest import PASS, Sub, bundle_bytes, make_source, public_keys, submission

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def threaded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One chunk per block, so a 300 KB envelope goes through the read-ahead and write-behind
    threads; none of them may outlive the import."""
    monkeypatch.setattr(envelope, "BLOCK_CHUNKS", 1)
    monkeypatch.setattr(importer, "spare_core", lambda: True)
    yield
    assert [t.name for t in threading.enumerate() if t.name.startswith("tipline-")] == []


def big_subs(vault_dir: Path, count: int, size: int = 300_000) -> list[Sub]:
    pks = public_keys(vault_dir)
    source = make_source()
    return [
        submission(pks, source, f"item {n}", [("f.bin", os.urandom(size))]) for n in range(count)
    ]


def files(vault_dir: Path) -> set[str]:
    return {p.name for p in (vault_dir / "items").iterdir()}


def consistent(vault_dir: Path, subs: list[Sub]) -> list[str]:
    """The vault after a stop: every listed item whole and opening; return the listed ids."""
    with Vault.open(vault_dir, PASS) as vault:  # opening removes temporaries, as the desk does
        listed = vault.store.all_ids()
        report = verify(vault, deep=True)
        assert report.problems == []
        for item_id in listed:
            data = next(s.data for s in subs if s.item.id == item_id)
            assert vault.item_file(item_id).read_bytes() == data
    assert not [n for n in files(vault_dir) if n.startswith(".tmp")]
    return listed


def finish_again(vault_dir: Path, subs: list[Sub], data: bytes) -> None:
    with Vault.open(vault_dir, PASS) as vault:
        report = import_bundle(vault, io.BytesIO(data))
        assert report.ok
        assert sorted(vault.store.all_ids()) == sorted(s.item.id for s in subs)
        assert verify(vault, deep=True).problems == [] and verify(vault).unlisted == []


class FailingSource(io.BytesIO):
    """A bundle on a stick pulled out at byte ``at``: reads past it fail (EIO)."""

    def __init__(self, data: bytes, at: int) -> None:
        super().__init__(data)
        self.at = at
        self.failed: int | None = None  # the thread that met the error

    def read(self, n: int | None = -1, /) -> bytes:
        if self.tell() + (n if n is not None and n >= 0 else 1 << 62) > self.at:
            self.failed = threading.get_ident()
            raise OSError(5, "Input/output error")
        return super().read(n)


def test_a_read_error_in_the_middle_of_an_item(vault_dir: Path) -> None:
    subs = big_subs(vault_dir, 3)
    data = bundle_bytes(subs)
    at = data.index(subs[1].data) + 150_000  # half-way through the second envelope
    before = files(vault_dir)
    src = FailingSource(data, at)
    with Vault.open(vault_dir, PASS) as vault, pytest.raises(OSError, match="Input/output"):
        import_bundle(vault, src)
    # control: the error came from the stick, met on the read-ahead thread
    assert src.failed is not None and src.failed != threading.get_ident()
    assert consistent(vault_dir, subs) == [subs[0].item.id]
    assert files(vault_dir) == before | {f"{subs[0].item.id}.env"}
    finish_again(vault_dir, subs, data)


def test_a_write_error_in_the_middle_of_an_item(
    vault_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subs = big_subs(vault_dir, 3)
    data = bundle_bytes(subs)
    real = importer._Store.write
    stores: list[importer._Store] = []
    threads: set[int] = set()

    def write(self: importer._Store, chunk: bytes | bytearray | memoryview, /) -> int:
        if self not in stores:
            stores.append(self)
        if len(stores) == 2 and self.written > 150_000:  # half-way through the second
            threads.add(threading.get_ident())
            raise OSError(28, "No space left on device")
        return real(self, chunk)

    monkeypatch.setattr(importer._Store, "write", write)
    with Vault.open(vault_dir, PASS) as vault, pytest.raises(OSError, match="No space"):
        import_bundle(vault, io.BytesIO(data))
    # control: it failed in the second envelope, written behind on a helper thread
    assert len(stores) == 2 and threads and threading.get_ident() not in threads
    listed = consistent(vault_dir, subs)
    assert listed == [subs[0].item.id]
    finish_again(vault_dir, subs, data)


KILL_PROBE = """
import sys
from pathlib import Path
from tipline.crypto import envelope
from tipline.desk import importer
from tipline.desk.vault import Vault

envelope.BLOCK_CHUNKS = 1       # the threaded path, as in the tests above
importer.SAVE_EVERY = 0         # save after every item, so some are listed when it is killed
importer.spare_core = lambda: True
done = 0

def progress(_size):
    global done
    done += 1
    if done == 3:  # the second was saved after its progress call: two at least are listed
        print("three", flush=True)  # the parent kills now, during the next items

with Vault.open(Path(sys.argv[1]), sys.argv[2]) as vault, open(sys.argv[3], "rb") as src:
    importer.import_bundle(vault, src, progress)
print("finished", flush=True)
"""


def test_a_kill_in_the_middle_of_an_import(vault_dir: Path, tmp_path: Path) -> None:
    subs = big_subs(vault_dir, 12, size=2_000_000)
    data = bundle_bytes(subs)
    bundle = tmp_path / "export.tlb"
    bundle.write_bytes(data)
    with subprocess.Popen(
        [sys.executable, "-c", KILL_PROBE, str(vault_dir), PASS, str(bundle)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "three\n"
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
    assert proc.returncode == -signal.SIGKILL and "finished" not in rest  # control: killed
    listed = consistent(vault_dir, subs)
    assert len(listed) >= 2 and len(listed) < len(subs)  # some in, not all
    assert listed == [s.item.id for s in subs[: len(listed)]]
    finish_again(vault_dir, subs, data)
