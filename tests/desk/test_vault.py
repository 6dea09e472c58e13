"""The vault at rest: nothing readable, tampering detected, one desk at a time, backup/restore."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tipline.crypto.errors import LockedSecretError
from tipline.desk.errors import BackupError, VaultBusyError, VaultDamagedError
from tipline.desk.importer import import_bundle
from tipline.desk.maintenance import backup, restore, verify
from tipline.desk.vault import Vault

from .conftest import PASS, Run, bundle_bytes, make_source, public_keys, submission

SECRET_TEXT = "the informant works in the third ministry"


@pytest.fixture
def filled(vault_dir: Path) -> Path:
    pks = public_keys(vault_dir)
    subs = [submission(pks, make_source("tidy otter"), SECRET_TEXT, [("plan.txt", b"PLANB")])]
    with Vault.open(vault_dir, PASS) as vault:
        import_bundle(vault, io.BytesIO(bundle_bytes(subs)))
        vault.store.add_note(vault.store.all_ids()[0], "meet NOTEWORTHY", "2026-11-25")
        vault.save_store()
    return vault_dir


def test_nothing_decrypted_is_on_disk(filled: Path) -> None:
    for path in filled.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in (
                b"informant",
                b"ministry",
                b"PLANB",
                b"plan.txt",
                b"NOTEWORTHY",
                b"otter",
                b"SQLite",
            ):
                assert needle not in data, (path, needle)


def test_wrong_passphrase_and_tampering(filled: Path) -> None:
    with pytest.raises(LockedSecretError):
        Vault.open(filled, "wrong passphrase")
    triage = filled / "triage.sealed"
    data = bytearray(triage.read_bytes())
    data[100] ^= 1
    triage.write_bytes(bytes(data))
    with pytest.raises(VaultDamagedError, match="triage does not open"):
        Vault.open(filled, PASS)


def test_swapped_files_do_not_open(filled: Path) -> None:
    (filled / "triage.sealed").write_bytes((filled / "keyring.sealed").read_bytes())
    with pytest.raises(VaultDamagedError):
        Vault.open(filled, PASS)


def test_missing_key_file(filled: Path, run: Run) -> None:
    (filled / "keyring.sealed").unlink()
    assert run("list", code=4).stderr == (
        "tipline-desk: a vault file is damaged or was changed outside the desk: "
        "keyring.sealed is missing\n"
    )


def test_oversized_vault_key_is_refused_before_reading(filled: Path) -> None:
    (filled / "vault.key").write_bytes(b"{" * 100_000)
    with pytest.raises(VaultDamagedError, match="larger than"):
        Vault.open(filled, PASS)


def test_one_desk_at_a_time(filled: Path, run: Run) -> None:
    with Vault.open(filled, PASS):
        with pytest.raises(VaultBusyError):
            Vault.open(filled, PASS)
        assert "open in another tipline-desk" in run("list", code=5).stderr
    Vault.open(filled, PASS).close()


def test_verify_finds_a_changed_or_missing_envelope(filled: Path, run: Run) -> None:
    with Vault.open(filled, PASS) as vault:
        item_id = vault.store.all_ids()[0]
    env = filled / "items" / f"{item_id}.env"
    data = bytearray(env.read_bytes())
    data[-5] ^= 1
    env.write_bytes(bytes(data))
    assert "changed or damaged" in run("verify", code=1).stderr
    env.unlink()
    assert "its envelope is missing" in run("verify", code=1).stderr


def test_verify_reports_and_repairs_unlisted_files(filled: Path, run: Run) -> None:
    (filled / "items" / ("ab" * 16 + ".env")).write_bytes(b"left by a killed import")
    assert "1 envelope files not in the vault's list" in run("verify").stderr
    run("verify", "--repair")
    assert not (filled / "items" / ("ab" * 16 + ".env")).exists()


def test_backup_and_restore(filled: Path, tmp_path: Path, run: Run) -> None:
    out = tmp_path / "backup.tar"
    assert "backed up 1 items" in run("backup", "--to", str(out)).stdout
    assert SECRET_TEXT.encode() not in out.read_bytes()
    target = tmp_path / "restored"
    result = run("restore", str(out), "--to", str(target))
    assert "restored 1 items" in result.stdout
    with Vault.open(target, PASS) as vault:
        assert verify(vault, deep=True).problems == []
        assert vault.store.message(vault.store.all_ids()[0]) == SECRET_TEXT
    assert "already exists" in run("backup", "--to", str(out), code=2).stderr


@pytest.mark.parametrize(
    "name",
    ["../evil", "/etc/passwd", "items/../../x", "items/" + "a" * 32 + ".env/x", "vault.json.bak"],
)
def test_restore_refuses_strange_members(tmp_path: Path, name: str) -> None:
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        info = tarfile.TarInfo(name)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    target = tmp_path / "t"
    with pytest.raises(BackupError, match="unexpected entry"):
        restore(bad, target)
    assert list(target.rglob("*")) == [target / "items"] or not list(target.rglob("*.env"))
    assert not (tmp_path / "evil").exists() and not (tmp_path / "x").exists()


def test_restore_refuses_links_and_junk(tmp_path: Path, filled: Path) -> None:
    bad = tmp_path / "link.tar"
    with tarfile.open(bad, "w") as tar:
        info = tarfile.TarInfo("vault.key")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/shadow"
        tar.addfile(info)
    with pytest.raises(BackupError, match="not a regular file"):
        restore(bad, tmp_path / "t1")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(BackupError, match="damaged or not a backup"):
        restore(junk, tmp_path / "t2")
    with Vault.open(filled, PASS) as vault:
        backup(vault, tmp_path / "ok.tar")
    (tmp_path / "t3").mkdir()
    (tmp_path / "t3" / "something").write_text("x")
    with pytest.raises(BackupError, match="not empty"):
        restore(tmp_path / "ok.tar", tmp_path / "t3")


def test_sealed_files_refuse_truncation_reordering_and_another_role() -> None:
    from tipline.desk import sealed

    key = bytes(range(32))
    plain = bytes(range(256)) * (3 * 4096 + 7)  # a little over 3 MiB: four chunks
    data = sealed.seal(key, "triage", plain)
    assert bytes(sealed.unseal(key, "triage", data)) == plain
    assert bytes(sealed.unseal(key, "triage", sealed.seal(key, "triage", b""))) == b""
    whole = sealed.CHUNK + sealed.ABYTES
    start = len(sealed.MAGIC) + sealed.HEADER
    dropped_last = data[: start + 3 * whole]  # ends on a chunk boundary, without FINAL
    swapped = (
        data[:start]
        + data[start + whole : start + 2 * whole]
        + data[start : start + whole]
        + data[start + 2 * whole :]
    )
    for bad in (dropped_last, swapped, data[:-1], data + b"x"):
        with pytest.raises(VaultDamagedError):
            sealed.unseal(key, "triage", bad)
    with pytest.raises(VaultDamagedError):
        sealed.unseal(key, "keyring", data)
    with pytest.raises(VaultDamagedError):
        sealed.unseal(bytes(32), "triage", data)


def test_restore_bounds_member_sizes(tmp_path: Path) -> None:
    bad = tmp_path / "big.tar"
    with tarfile.open(bad, "w") as tar:
        info = tarfile.TarInfo("vault.json")
        info.size = 5000
        tar.addfile(info, io.BytesIO(b"{" * 5000))
    with pytest.raises(BackupError, match="larger than 4096 bytes"):
        restore(bad, tmp_path / "t")
