"""The desk's promises that a leftovers scan cannot see, each checked where it can break:

- import writes only sealed bytes (watched under strace while it runs: a plaintext file made and
  removed during import is caught, not only one left behind);
- a reply leaves no plaintext copy in the vault;
- the KDF presets are libsodium's own constants, and a vault made without choosing one uses
  "moderate";
- import saves the triage database only once every envelope it lists is in place and on disk.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import sys
from pathlib import Path

import nacl.pwhash
import pytest
from click.testing import CliRunner

from tests.watch import audited, run_traced
from tipline.desk import importer
from tipline.desk.cli import cli
from tipline.desk.outgoing import write_reply
from tipline.desk.vault import KDF_PRESETS, USER_KDFS, Vault

from .conftest import PASS, bundle_bytes, make_source, public_keys, submission
from .import_probe import REPLY

ROOT = Path(__file__).resolve().parents[2]
MARKERS = (b"PROBEMSG", b"PROBEFILE", b"PROBENAME", REPLY.encode())


def small_bundle(vault_dir: Path, count: int = 5) -> bytes:
    pks = public_keys(vault_dir)
    source = make_source("tidy otter")
    return bundle_bytes(
        [
            submission(
                pks,
                source,
                f"PROBEMSG {n} the ministry informant",
                [(f"PROBENAME-{n}.txt", f"PROBEFILE {n}\n".encode())],
            )
            for n in range(count)
        ]
    )


def test_import_and_reply_write_only_sealed_bytes(vault_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    vault_dir.rename(work / "vault")
    (work / "bundle.tlb").write_bytes(small_bundle(work / "vault"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done, trace = run_traced(
        [sys.executable, "-m", "tests.desk.import_probe", str(work)],
        tmp_path / "strace.txt",
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0 and done.stdout.strip() == "5", done.stderr
    assert trace.leaks(MARKERS) == []
    assert trace.network() == []
    # what it did write: the envelopes, the sealed database and the reply bundle
    written = trace.written()
    assert sum(1 for p in written if "/vault/items/" in p) >= 6
    assert any(p.endswith("reply.tlb") or "reply.tlb" in p for p in written)


def test_control_a_transient_plaintext_file_is_caught(tmp_path: Path) -> None:
    """The check above on a process that writes a message to a file and removes it at once."""
    code = (
        "import os, tempfile\n"
        "with tempfile.TemporaryFile() as f: f.write(b'PROBEMSG 1')\n"
        "p = 'note.txt'; open(p, 'w').write('PROBEREPLYMARKER see you at noon'); os.unlink(p)\n"
    )
    done, trace = run_traced([sys.executable, "-c", code], tmp_path / "strace.txt", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {m for _, m in trace.leaks(MARKERS)} == {b"PROBEMSG", REPLY.encode()}


def test_a_reply_leaves_no_plaintext_in_the_vault(vault_dir: Path, tmp_path: Path) -> None:
    data = small_bundle(vault_dir, 1)
    with Vault.open(vault_dir, PASS) as vault:
        report = importer.import_bundle(vault, io.BytesIO(data))
        source = vault.store.get(report.added[0]).source_id
        out = tmp_path / "usb" / "reply.tlb"
        out.parent.mkdir()
        with audited() as log:
            write_reply(vault, source, REPLY, [], out)
        # every file opened for writing is in the vault (sealed) or the reply bundle's folder
        assert log.writes_outside([vault_dir, out.parent]) == []
    for path in [*vault_dir.rglob("*"), out]:
        if path.is_file():
            data = path.read_bytes()
            assert not [m for m in MARKERS if m in data], path


def test_kdf_presets_are_libsodiums_constants() -> None:
    argon = nacl.pwhash.argon2id
    assert {name: KDF_PRESETS[name] for name in USER_KDFS} == {
        "moderate": (argon.OPSLIMIT_MODERATE, argon.MEMLIMIT_MODERATE),
        "sensitive": (argon.OPSLIMIT_SENSITIVE, argon.MEMLIMIT_SENSITIVE),
        "interactive": (argon.OPSLIMIT_INTERACTIVE, argon.MEMLIMIT_INTERACTIVE),
    }
    assert "test" not in USER_KDFS
    assert inspect.signature(Vault.create).parameters["kdf"].default == "moderate"
    assert inspect.signature(Vault.change_passphrase).parameters["kdf"].default == "moderate"


def test_a_vault_made_without_choosing_uses_moderate(tmp_path: Path) -> None:
    """`tipline-desk init` with no --kdf: the vault key is locked at libsodium's moderate cost
    (read from the file, so a weaker default anywhere on the way is caught)."""
    path = tmp_path / "vault"
    args = ["--vault", str(path), "init", "--role", "journalist"]
    result = CliRunner().invoke(cli, args, input=f"{PASS}\n{PASS}\n")
    assert result.exit_code == 0, result.output
    locked = json.loads((path / "vault.key").read_bytes())
    argon = nacl.pwhash.argon2id
    assert (locked["opslimit"], locked["memlimit"]) == (
        argon.OPSLIMIT_MODERATE,
        argon.MEMLIMIT_MODERATE,
    )


def test_import_saves_the_database_only_after_its_envelopes(
    vault_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saved after every item: at each save, every item the database lists has its envelope
    under its final name, complete, and fsynced."""
    monkeypatch.setattr(importer, "SAVE_EVERY", -1.0)
    synced: set[str] = set()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.add(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    saves: list[int] = []
    data = small_bundle(vault_dir, 4)
    with Vault.open(vault_dir, PASS) as vault:
        real_save = vault.save_store

        def save() -> None:
            if vault.store.dirty:
                ids = vault.store.all_ids()
                for item_id in ids:
                    path = vault.item_file(item_id)
                    assert path.is_file(), f"the database is saved listing {item_id} first"
                    assert path.stat().st_size == vault.store.get(item_id).size
                    assert str(path) in synced, f"{item_id} is listed before it is on disk"
                saves.append(len(ids))
            real_save()

        monkeypatch.setattr(vault, "save_store", save)
        report = importer.import_bundle(vault, io.BytesIO(data))
    assert report.ok and len(report.added) == 4
    assert saves and saves[-1] == 4 and len(saves) >= 4
