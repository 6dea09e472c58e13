"""`tipline-desk export` and `show` around the converter: kinds of copy, text, sound, what cannot
be converted, fingerprints taken at import and printed, and vaults from before fingerprints."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

from tipline.desk.vault import Vault

from ..conftest import PASS, Run
from .conftest import Imported, sha256

HOSTILE_TEXT = (
    "Dear editor,\r\n\x1b]0;owned\x07\x1b[2J\x1b[31mthe ledger\x1b[0m is \u202egnissim"
    "\u202c\nline two\x08\x9b6n\tend\u2028last"
)


def sidecars(folder: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.provenance.json"))]


def test_import_fingerprints_and_show_prints_them(run: Run, imported: Imported) -> None:
    files = [("a.txt", b"first file", "text/plain"), ("b.bin", bytes(range(256)), "x/y")]
    sub = imported(files)
    shown = run("show", sub.item.id[:8]).stdout
    assert f"envelope sha256 {sha256(sub.data)} (as received)" in shown
    assert f"sha256 {sha256(b'first file')}" in shown
    assert f"sha256 {sha256(bytes(range(256)))}" in shown


def test_text_becomes_an_inert_text_file(run: Run, imported: Imported, out: Path) -> None:
    raw = HOSTILE_TEXT.encode()
    assert b"\x1b" in raw and "\u202e".encode() in raw  # control: the sample carries them
    sub = imported([("letter.txt", raw, "text/plain")])
    result = run("export", sub.item.id[:8], "--to", str(out))
    copy = out / f"{sub.item.id[:8]}-01-letter.viewing.txt"
    text = copy.read_text(encoding="utf-8")
    assert text == "Dear editor,\nthe ledger is gnissim\nline two\tend\nlast"
    assert not any(ch in text for ch in "\x1b\x07\r\x00\x08\x9b\u202e\u202c\u2028")
    (meta,) = sidecars(out)
    assert meta["original_sha256"] == sha256(raw) and meta["content"] == "text"
    assert meta["envelope_sha256"] == sha256(sub.data)
    assert str(copy) in result.stdout


def mp3_with_tags() -> bytes:
    """An ID3v2.3 tag naming an artist and a comment, then ten silent MPEG-1 layer III frames."""

    def frame(kind: bytes, text: str) -> bytes:
        body = b"\x00" + text.encode("latin-1")
        return kind + struct.pack(">I", len(body)) + b"\x00\x00" + body

    frames = frame(b"TPE1", "Jane Q Source") + frame(b"TIT2", "recorded at the ministry")
    size = len(frames)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    audio = (b"\xff\xfb\x90\x64" + bytes(413)) * 10
    return b"ID3\x03\x00\x00" + syncsafe + frames + audio


def test_sound_is_cleaned_not_converted_with_a_warning(
    run: Run, imported: Imported, out: Path
) -> None:
    data = mp3_with_tags()
    assert b"Jane Q Source" in data  # control
    sub = imported([("call.mp3", data, "audio/mpeg")])
    result = run("export", sub.item.id[:8], "--to", str(out))
    copy = out / f"{sub.item.id[:8]}-01-call.publication.mp3"
    cleaned = copy.read_bytes()
    assert b"Jane Q Source" not in cleaned and b"ministry" not in cleaned
    assert cleaned.endswith(b"\xff\xfb\x90\x64" + bytes(413))  # the sound itself is kept
    assert "sound and video are not converted" in result.stdout
    (meta,) = sidecars(out)
    assert meta["copy"] == "publication" and "sound and video are not converted" in str(
        meta["notes"]
    )


def test_what_cannot_be_converted_is_one_sentence_and_original_still_works(
    run: Run, imported: Imported, out: Path
) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("inside.exe", b"MZ")
    sub = imported(
        [("files.zip", archive.getvalue(), "application/zip"), ("ok.txt", b"fine", "text/plain")]
    )
    result = run("export", sub.item.id[:8], "--to", str(out), code=1)
    assert result.stderr.splitlines() == [
        "tipline-desk: attachment 1 not exported: the attachment could not be made into a safe "
        "copy, and nothing was written: the desk cannot make a safe copy of a ZIP archive (not "
        "unpacked by the desk); export it with --original only if you must"
    ]
    assert sorted(p.name.split("-", 1)[1] for p in out.iterdir()) == [
        "02-ok.viewing.txt",
        "02-ok.viewing.txt.provenance.json",
    ]
    result = run("export", sub.item.id[:8], "--to", str(out), "--original", "--attachment", "1")
    assert (out / f"{sub.item.id[:8]}-01-files.zip").read_bytes() == archive.getvalue()
    assert "warning" in result.stderr
    run("export", sub.item.id[:8], "--to", str(out), "--original", "--publication", code=2)


def test_a_vault_from_before_fingerprints_opens_and_export_records_them(
    run: Run, imported: Imported, out: Path, vault_dir: Path
) -> None:
    sub = imported([("a.txt", b"older file", "text/plain")])
    with Vault.open(vault_dir, PASS) as vault:  # make it what an older desk wrote: schema 1
        vault.store.db.execute("DROP TABLE fingerprints")
        for table in ("triage_clock", "triage_seen", "triage_pending"):  # schema 3
            vault.store.db.execute(f"DROP TABLE {table}")
        vault.store.db.execute("DROP TABLE triage_parked")  # schema 4
        vault.store.db.execute("UPDATE meta SET value='1' WHERE key='schema'")
        vault.store.dirty = True
        vault.save_store()
    shown = run("show", sub.item.id[:8]).stdout
    assert "not recorded" in shown and "envelope sha256" not in shown
    result = run("export", sub.item.id[:8], "--to", str(out))
    assert "envelope sha256 not recorded" in result.stdout
    assert f"sha256 {sha256(b'older file')}" in result.stdout
    assert f"sha256 {sha256(b'older file')}" in run("show", sub.item.id[:8]).stdout
    with Vault.open(vault_dir, PASS) as vault:
        assert (
            vault.store.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == "4"
        )


def test_a_changed_vault_is_refused(
    run: Run, imported: Imported, out: Path, vault_dir: Path
) -> None:
    sub = imported([("a.txt", b"the real file", "text/plain")])
    with Vault.open(vault_dir, PASS) as vault:
        vault.store.add_fingerprints(sub.item.id, {1: bytes(32)})
        vault.save_store()
    result = run("export", sub.item.id[:8], "--to", str(out), code=1)
    assert "is not the file fingerprinted at import" in result.stderr
    assert list(out.iterdir()) == []
