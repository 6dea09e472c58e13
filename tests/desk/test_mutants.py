"""Sharp tests for the desk's text neutraliser and vault, each written against a mutant that the
rest of the suite let through (``make mutation-paths``, tests/mutation/survivors.md): every
assertion here fails on the mutant named beside it.
"""

from __future__ import annotations

import datetime
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tipline.crypto.errors import LockedSecretError
from tipline.desk import sealed
from tipline.desk import vault as vault_module
from tipline.desk.errors import (
    NotFoundError,
    UsageError,
    VaultDamagedError,
    VaultExistsError,
    VaultMissingError,
)
from tipline.desk.importer import import_bundle
from tipline.desk.text import fold, neutralise, one_line, safe_filename, text_file
from tipline.desk.vault import KDF_PRESETS, VAULT_INFO, Vault

from .conftest import PASS, bundle_bytes, make_source, public_keys, submission

ITEM = "0123456789abcdef" * 2


# --- text.py -------------------------------------------------------------------------------


def test_without_newlines_kept_a_newline_and_a_tab_are_escaped_and_flattened() -> None:
    # The fast path must not skip a text whose only unprintable character is a newline.
    assert neutralise("a\nb", keep_newlines=False) == "a\\x0ab"
    assert neutralise("a\tb", keep_newlines=False) == "a b"
    assert neutralise("a\tb") == "a    b"


def test_one_line_never_exceeds_its_width() -> None:
    for width in range(1, 8):
        shown = one_line("abcdefghij", width)
        assert len(shown) <= width, (width, shown)
        assert shown.endswith("…")
    assert one_line("abcde", 5) == "abcde"  # exactly the width: whole, no ellipsis
    assert one_line("abcdef", 5) == "abcd…"


def test_one_line_reads_a_bounded_prefix() -> None:
    # Only the first 4 x width characters are looked at, however much white space they hold.
    assert one_line("a" + " " * 40 + "b", 10) == "a"
    assert one_line("a" + " " * 30 + "b", 10) == "a b"


def test_fold_keeps_short_lines_apart() -> None:
    assert fold("aaa\nbbb", 4) == "aaa\nbbb"
    assert fold("aaaaaa\nbb", 4) == "aaaa\naa\nbb"


def test_safe_filename_keeps_ordinary_letters_and_dots_inside() -> None:
    assert safe_filename("Xmas.XLS", 0, ITEM) == f"{ITEM[:8]}-01-Xmas.XLS"
    assert safe_filename("..X-ray.X..", 1, ITEM) == f"{ITEM[:8]}-02-X-ray.X"


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("a" * 200, "a" * 120),  # no extension: the first 120 bytes
        ("b" * 200 + ".abcdefghij", "b" * 109 + ".abcdefghij"),  # a 10-letter extension kept
        ("c" * 200 + ".abcdefghijk", "c" * 120),  # 11 letters is no extension
        ("r" * 200 + ".tar.gz", "r" * 117 + ".gz"),  # only the last extension
        ("a" + "é" * 100 + ".txt", "a" + "é" * 57 + ".txt"),  # no half character
    ],
)
def test_a_long_name_is_cut_to_120_bytes_keeping_a_short_extension(name: str, kept: str) -> None:
    out = safe_filename(name, 0, ITEM)
    assert out == f"{ITEM[:8]}-01-{kept}"
    assert len(kept.encode()) <= 120


def test_text_file_removes_escapes_whole_and_makes_line_breaks_newlines() -> None:
    assert text_file("a\x1b[31mb\x1b]0;title\x07c") == "abc"
    assert text_file("a\r\nb") == "a\nb"
    assert text_file("a\u2028b\u2029c") == "a\nb\nc"
    assert text_file("a\u202eb\x00c") == "abc"


# --- vault.py and sealed.py ------------------------------------------------------------------


def test_a_changed_passphrase_opens_the_vault_and_the_old_one_no_longer_does(
    vault_dir: Path,
) -> None:
    with Vault.open(vault_dir, PASS) as vault:
        with pytest.raises(UsageError, match="at least 8 characters"):
            vault.change_passphrase("7 chars", kdf="test")
        vault.change_passphrase("8 chars!", kdf="test")
    with pytest.raises(LockedSecretError):
        Vault.open(vault_dir, PASS)
    with Vault.open(vault_dir, "8 chars!") as vault:
        assert vault.keyring is not None
    assert not list(vault_dir.glob(".tmp-*"))


def test_an_unchanged_store_is_not_written_again(vault_dir: Path) -> None:
    with Vault.open(vault_dir, PASS) as vault:
        vault.store.dirty = True
        vault.save_store()
        assert vault.store.dirty is False
        written = vault.triage_file.stat().st_ino
        vault.save_store()
        assert vault.triage_file.stat().st_ino == written


def test_removing_an_item_whose_envelope_is_gone_is_not_an_error(vault_dir: Path) -> None:
    pks = public_keys(vault_dir)
    subs = [submission(pks, make_source("tidy otter"), "hello", [])]
    with Vault.open(vault_dir, PASS) as vault:
        import_bundle(vault, io.BytesIO(bundle_bytes(subs)))
        (item,) = vault.store.all_ids()
        vault.item_file(item).unlink()
        vault.remove_item(item)
        assert vault.store.all_ids() == [] and vault.store.dirty is False
        with pytest.raises(NotFoundError, match=re.escape("no item '../x'")):
            vault.item_file("../x")


def test_opening_names_what_is_wrong(vault_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(VaultMissingError, match=re.escape(str(tmp_path / "none"))):
        Vault.open(tmp_path / "none", PASS)
    info = vault_dir / "vault.json"
    for wrong in (json.dumps({"type": "tipline-desk-vault", "v": 2}), "{not json"):
        info.write_text(wrong)
        with pytest.raises(VaultDamagedError) as caught:
            Vault.open(vault_dir, PASS)
        assert caught.value.detail == "vault.json is not a version 1 vault"
    info.write_text(json.dumps(VAULT_INFO))
    (vault_dir / "vault.key").unlink()
    with pytest.raises(VaultDamagedError) as caught:
        Vault.open(vault_dir, PASS)
    assert caught.value.detail == "vault.key is missing"


def test_vault_json_is_read_up_to_4096_bytes_and_no_more(vault_dir: Path) -> None:
    info = vault_dir / "vault.json"
    text = json.dumps(VAULT_INFO)
    info.write_text(text + " " * (4096 - len(text)))
    Vault.open(vault_dir, PASS).close()
    info.write_text(text + " " * (4097 - len(text)))
    with pytest.raises(VaultDamagedError, match=re.escape("vault.json is larger than 4096 bytes")):
        Vault.open(vault_dir, PASS)


def test_read_bounded_reads_a_file_of_exactly_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    assert sealed.read_bounded(path, 10, "f") == b"x" * 10
    with pytest.raises(VaultDamagedError, match="f is larger than 9 bytes"):
        sealed.read_bounded(path, 9, "f")
    with pytest.raises(VaultDamagedError, match=re.escape("vault.key is missing")):
        sealed.read_bounded(tmp_path / "gone", 10, "vault.key")


def test_clean_temps_counts_what_it_removed(tmp_path: Path) -> None:
    assert sealed.clean_temps(tmp_path) == 0
    for name in ("a", "b", "c"):
        sealed.write_atomic(tmp_path / name, b"kept")
        sealed.temp_name(tmp_path / name).write_bytes(b"left by a crash")
    assert sealed.clean_temps(tmp_path) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


def _kdf(vault_dir: Path) -> tuple[int, int]:
    locked = json.loads((vault_dir / "vault.key").read_bytes())
    return locked["opslimit"], locked["memlimit"]


def test_without_a_choice_the_vault_key_is_locked_at_moderate(tmp_path: Path) -> None:
    path = tmp_path / "v"
    with Vault.create(path, PASS) as vault:
        assert _kdf(path) == KDF_PRESETS["moderate"]
        vault.change_passphrase("another passphrase", kdf="test")
        assert _kdf(path) == KDF_PRESETS["test"]
        vault.change_passphrase("another passphrase")
        assert _kdf(path) == KDF_PRESETS["moderate"]
        with pytest.raises(UsageError) as caught:
            vault.change_passphrase("short")
        assert caught.value.detail == "the passphrase must be at least 8 characters"


def test_a_new_vault_is_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "vault"  # parents are made
    with Vault.create(path, "8 chars!", kdf="test"):  # 8 characters are enough
        assert path.stat().st_mode & 0o777 == 0o700
        assert (path / "items").stat().st_mode & 0o777 == 0o700
        assert (path / "lock").stat().st_mode & 0o777 == 0o600
    empty = tmp_path / "empty"
    empty.mkdir()
    Vault.create(empty, PASS, kdf="test").close()  # an existing empty folder will do
    with pytest.raises(VaultExistsError) as exists:
        Vault.create(path, PASS, kdf="test")
    assert exists.value.detail == str(path)
    with pytest.raises(UsageError) as role:
        Vault.create(tmp_path / "r", PASS, kdf="test", role="editor")
    assert role.value.detail == "the role must be one of signer, journalist, both"
    with pytest.raises(UsageError) as short:
        Vault.create(tmp_path / "s", "7 chars", kdf="test")
    assert short.value.detail == "the passphrase must be at least 8 characters"


def test_today_is_the_utc_date_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime.datetime.now(datetime.UTC)
    # A zone whose date differs from UTC's right now: UTC+14 late in the UTC day, else UTC-12.
    zone = "Etc/GMT-14" if now.hour >= 10 else "Etc/GMT+12"
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        assert datetime.datetime.now().date() != now.date()  # the control: the zone differs
        assert vault_module.today() == datetime.datetime.now(datetime.UTC).date()
    finally:
        monkeypatch.undo()
        time.tzset()


KEY = bytes(range(32))


@pytest.mark.parametrize(
    "size", [0, sealed.CHUNK - 1, sealed.CHUNK, sealed.CHUNK + 1, 2 * sealed.CHUNK + 5]
)
def test_sealed_files_of_every_chunk_count_open(size: int) -> None:
    plain = bytes(i % 251 for i in range(size))
    data = sealed.seal(KEY, "triage", plain)
    assert bytes(sealed.unseal(KEY, "triage", data)) == plain


class Trickle(io.RawIOBase):
    """A stream that gives at most 1000 bytes a read, as a pipe or a network file may."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(min(len(buffer), 1000))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_a_sealed_file_read_in_short_pieces_opens() -> None:
    plain = b"p" * (sealed.CHUNK + 3000)
    data = sealed.seal(KEY, "keyring", plain)
    assert bytes(sealed._unseal(KEY, "keyring", Trickle(data), len(data))) == plain


def test_a_short_or_foreign_file_is_not_a_sealed_vault_file(tmp_path: Path) -> None:
    data = sealed.seal(KEY, "triage", b"x")
    start = len(sealed.MAGIC) + sealed.HEADER
    for wrong in (data[: start + sealed.ABYTES - 1], data[:start], b"XXXXXXXX" + data[8:]):
        with pytest.raises(VaultDamagedError) as caught:
            sealed.unseal(KEY, "triage", wrong)
        assert caught.value.detail == "triage is not a sealed vault file"
    with pytest.raises(VaultDamagedError) as caught:
        sealed.unseal(KEY, "keyring", data)
    assert caught.value.detail == "keyring does not open under this vault's key"


def test_unseal_file_reads_a_file_of_exactly_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "triage.sealed"
    data = sealed.seal(KEY, "triage", b"rows")
    path.write_bytes(data)
    assert bytes(sealed.unseal_file(KEY, "triage", path, len(data))) == b"rows"
    with pytest.raises(VaultDamagedError) as caught:
        sealed.unseal_file(KEY, "triage", path, len(data) - 1)
    assert caught.value.detail == f"triage.sealed is larger than {len(data) - 1} bytes"


def test_a_write_into_a_missing_folder_fails_as_such(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        sealed.write_atomic(tmp_path / "missing" / "f", b"x")
