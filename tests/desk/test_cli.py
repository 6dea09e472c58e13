"""The desk's command line, end to end through Click's CliRunner on a real vault."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tipline.bundle import KIND_REPLY, BundleReader
from tipline.crypto import envelope
from tipline.crypto.manifest import verify_manifest
from tipline.desk.vault import today

from .conftest import PASS, Run, Source, Sub, bundle_bytes, make_source, public_keys, submission

Imported = Callable[..., Sub]


@pytest.fixture
def imported(tmp_path: Path, vault_dir: Path, run: Run) -> Imported:
    """Seal a submission from a source to the vault's active keys and import it in a bundle."""

    def one(source: Source, message: str, files: Sequence[tuple[str, bytes]] = ()) -> Sub:
        sub = submission(public_keys(vault_dir), source, message, files)
        bundle = tmp_path / "b.tlb"
        bundle.write_bytes(bundle_bytes([sub]))
        run("import", str(bundle))
        return sub

    return one


def test_init_asks_twice_and_refuses_an_existing_vault(tmp_path: Path, run: Run) -> None:
    from click.testing import CliRunner

    from tipline.desk.cli import cli

    target = tmp_path / "new"
    result = CliRunner().invoke(
        cli,
        ["--vault", str(target), "init", "--role", "both", "--kdf", "interactive"],
        input="a long passphrase\na long passphrase\n",
    )
    assert result.exit_code == 0, result.output
    assert (target / "vault.key").is_file()
    again = CliRunner().invoke(
        cli,
        ["--vault", str(target), "init", "--role", "journalist"],
        input="a long passphrase\na long passphrase\n",
    )
    assert again.exit_code == 1
    assert again.stderr.startswith("tipline-desk: a vault already exists here")
    differ = CliRunner().invoke(
        cli,
        ["--vault", str(tmp_path / "x"), "init", "--role", "journalist"],
        input="a long passphrase\nanother one\n",
    )
    assert differ.exit_code == 2 and "differ" in differ.stderr
    short = CliRunner().invoke(
        cli,
        ["--vault", str(tmp_path / "y"), "init", "--role", "journalist"],
        input="short\nshort\n",
    )
    assert short.exit_code == 2
    assert short.stderr == "tipline-desk: the passphrase must be at least 8 characters\n"
    weak = CliRunner().invoke(
        cli,
        ["--vault", str(tmp_path / "z"), "init", "--kdf", "test"],
        input="a long passphrase\na long passphrase\n",
    )
    assert weak.exit_code == 2 and not (tmp_path / "z").exists()  # the test suite's preset only
    roleless = CliRunner().invoke(
        cli,
        ["--vault", str(tmp_path / "r"), "init"],
        input="a long passphrase\na long passphrase\n",
    )
    assert roleless.exit_code == 2 and not (tmp_path / "r").exists()
    assert "--role journalist" in roleless.stderr


def test_wrong_passphrase_is_one_line(run: Run) -> None:
    result = run("list", input="not the passphrase\n", code=3)
    assert result.stderr == (
        "tipline-desk: the passphrase is wrong, or the locked file was changed\n"
    )
    assert "Traceback" not in result.output


def test_missing_vault(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tipline.desk.cli import cli

    result = CliRunner().invoke(cli, ["--vault", str(tmp_path / "none"), "list"], input="x\n")
    assert result.exit_code == 1
    assert "there is no vault here" in result.stderr


def test_import_triage_and_search(tmp_path: Path, vault_dir: Path, run: Run) -> None:
    pks = public_keys(vault_dir)
    otter, heron = make_source("tidy otter"), make_source("grey heron")
    subs = [
        submission(pks, otter, "the mayor takes bribes at the harbour", [("ledger.csv", b"a,b")]),
        submission(pks, otter, "more about the harbour deal", received="2026-11-21"),
        submission(pks, heron, "nothing to do with it"),
    ]
    path = tmp_path / "export.tlb"
    path.write_bytes(bundle_bytes(subs))
    out = run("import", str(path))
    assert "imported 3 new, 0 already in the vault" in out.stdout
    again = run("import", str(path))
    assert "imported 0 new, 3 already in the vault" in again.stdout

    listing = run("list").stdout
    assert "tidy otter" in listing and "grey heron" in listing
    otter_block = (
        listing.split("tidy otter")[1].split("grey heron")[0]
        if listing.index("tidy otter") < listing.index("grey heron")
        else listing.split("tidy otter")[1]
    )
    assert subs[0].item.id[:12] in otter_block and subs[1].item.id[:12] in otter_block

    found = run("search", "harbour").stdout
    assert subs[0].item.id[:12] in found and subs[1].item.id[:12] in found
    assert subs[2].item.id[:12] not in found
    assert subs[0].item.id[:12] in run("search", "ledger").stdout  # attachment names
    assert "nothing here" in run("search", "bribe", "heron").stderr

    first = subs[0].item.id[:8]
    shown = run("show", first).stdout
    assert "the mayor takes bribes" in shown and "ledger.csv" in shown
    assert "status read" in run("show", first).stdout

    run("tag", first, "Politics")
    run("star", first)
    run("status", first, "follow-up")
    run("note", first, "call the port authority")
    assert subs[0].item.id[:12] in run("list", "--tag", "politics").stdout
    assert subs[1].item.id[:12] not in run("list", "--starred").stdout
    assert subs[0].item.id[:12] in run("list", "--status", "follow-up").stdout
    assert subs[0].item.id[:12] in run("search", "authority").stdout  # notes are searchable
    assert "note: call the port authority" in run("show", first).stdout
    run("tag", first, "politics", "--remove")
    assert "nothing here" in run("list", "--tag", "politics").stderr
    assert run("status", first, "archived", code=2).exit_code == 2
    assert "tipline-desk: no item" in run("show", "ffff", code=1).stderr


def test_export_writes_safe_names_only_on_request(
    tmp_path: Path, run: Run, imported: Imported
) -> None:
    sub = imported(
        make_source(),
        "see files",
        [
            ("../../etc/passwd", b"one"),
            ("/abs/path.txt", b"two"),
            ("CON", b"three"),
            ("evil\x1b[2J\u202etxt.exe", b"four"),
            ("ok.pdf", b"five"),
            ("ok.pdf", b"six"),
        ],
    )
    out = tmp_path / "out"
    out.mkdir()
    assert list(out.iterdir()) == []  # importing wrote nothing in plaintext anywhere
    result = run("export", sub.item.id[:10], "--to", str(out), "--with-message", "--original")
    assert "it can attack the program that opens it" in result.stderr  # the warning
    names = sorted(p.name for p in out.iterdir() if not p.name.endswith(".provenance.json"))
    prefix = sub.item.id[:8]
    assert names == sorted(
        [
            f"{prefix}-01-passwd",
            f"{prefix}-02-path.txt",
            f"{prefix}-03-_CON",
            f"{prefix}-04-evil_[2J_txt.exe",
            f"{prefix}-05-ok.pdf",
            f"{prefix}-06-ok.pdf",
            f"{prefix}-message.txt",
        ]
    )
    assert len(list(out.glob("*.provenance.json"))) == 6  # one sidecar per copy
    assert (out / f"{prefix}-01-passwd").read_bytes() == b"one"
    assert (out / f"{prefix}-06-ok.pdf").read_bytes() == b"six"
    assert (out / f"{prefix}-message.txt").read_text() == "see files"
    paths = [
        line.split(": ", 1)[1]
        for line in result.stdout.splitlines()
        if line.startswith(("  original copy: ", "  provenance: ", "message: "))
    ]
    assert len(paths) == 13 and all(Path(p).parent == out for p in paths)
    run("export", sub.item.id[:10], "--to", str(out), "--original")  # again: never overwrites
    assert (out / f"{prefix}-01-passwd (2)").read_bytes() == b"one"


def test_ansi_and_long_lines_are_neutralised(run: Run, imported: Imported) -> None:
    hostile = "hi\x1b]0;pwned\x07\x1b[31mred\r\u202eevil\u0000" + "A" * 1_000_000
    source = make_source("tidy otter")
    sub = imported(source, hostile[:500_000], [("a\x1b[1mname\x9b", b"x")])
    for output in (
        run("list").stdout,
        run("show", sub.item.id[:8]).stdout,
        run("search", "hi").stdout,
    ):
        assert "\x1b" not in output and "\r" not in output and "\u202e" not in output
        assert "\x07" not in output and "\x00" not in output and "\x9b" not in output
    shown = run("show", sub.item.id[:8]).stdout
    assert "hi\\x1b]0;pwned\\x07\\x1b[31mred\\x0d\\u202eevil\\x00" in shown
    assert max(len(line) for line in shown.splitlines()) <= 200


def test_reply_goes_to_the_source_and_the_journalists(
    tmp_path: Path, run: Run, imported: Imported
) -> None:
    source = make_source("tidy otter")
    imported(source, "hello")
    attachment = tmp_path / "questions.txt"
    attachment.write_bytes(b"1. who?\n")
    out = tmp_path / "reply.tlb"
    result = run(
        "reply",
        "tidy otter",
        "-m",
        "thank you, we are looking",
        "--attach",
        str(attachment),
        "--out",
        str(out),
    )
    assert "written to" in result.stdout
    with out.open("rb") as f:
        reader = BundleReader(f, KIND_REPLY)
        assert [i.source_id for i in reader.items] == [source.id]
        envelopes = []
        for entry in reader:
            envelopes.append(entry.read())
            assert entry.finish()
    got = []
    inner = envelope.open_envelope(
        io.BytesIO(envelopes[0]),
        [source.reply_secret],
        lambda i, a: got.append(io.BytesIO()) or got[-1],
    )  # type: ignore[func-returns-value]
    assert inner.kind == "reply" and inner.sealed_by == "desk"
    assert inner.message == "thank you, we are looking"
    assert got[0].getvalue() == b"1. who?\n"
    # the journalists can read it too, and the thread shows it
    assert "→" in run("list").stdout
    assert run("reply", "nobody", "-m", "x", "--out", str(tmp_path / "r2"), code=1)
    assert (
        "already exists" in run("reply", "tidy otter", "-m", "x", "--out", str(out), code=2).stderr
    )


def test_keys_manifest_rotation_and_rekey(
    tmp_path: Path, vault_dir: Path, run: Run, imported: Imported
) -> None:
    sub = imported(make_source(), "before the rotation")
    run("manifest", "--out", str(tmp_path / "m0.json"), code=1)  # no org key yet
    fp = run("keys", "org-create").stdout.split("fingerprint ")[1].strip()
    run("keys", "org-export", "--out", str(tmp_path / "org.json"))
    org_pk = json.loads((tmp_path / "org.json").read_text())["public_key"]
    run("manifest", "--out", str(tmp_path / "m1.json"))
    import base64

    org = base64.b64decode(org_pk)
    signed = verify_manifest((tmp_path / "m1.json").read_bytes(), org, today(), 0)
    assert signed.manifest.version == 1 and len(signed.manifest.recipients) == 1
    old_id = signed.manifest.recipients[0].key_id.hex()

    # rotate asks first: "n" changes nothing, "y" rotates
    assert (
        "nothing changed" in run("keys", "rotate", old_id[:8], input=PASS + "\nn\n", code=2).stderr
    )
    assert run("keys", "list").stdout.count("active") == 1
    rotated = run("keys", "rotate", old_id[:8], input=PASS + "\ny\n").stdout
    assert f"retired {old_id[:8]}" in rotated
    run("manifest", "--out", str(tmp_path / "m2.json"))
    m2 = verify_manifest((tmp_path / "m2.json").read_bytes(), org, today(), 1)
    new_id = m2.manifest.recipients[0].key_id.hex()
    assert new_id != old_id and m2.manifest.version == 2
    assert fp in run("keys", "list").stdout
    # the old item still opens with the retired key
    assert "before the rotation" in run("show", sub.item.id[:8]).stdout
    assert "re-wrapped 1 of 1" in run("rekey").stdout
    from tipline.crypto import format as fmt

    data = (vault_dir / "items" / f"{sub.item.id}.env").read_bytes()
    assert [k.hex() for k in fmt.parse_header(data).key_ids] == [new_id]
    assert "re-wrapped 0 of 1" in run("rekey").stdout
    run("verify", "--deep")
    # retiring the last active key is refused; compromise re-wraps and signs in one command
    assert "last active key" in run("keys", "retire", new_id[:8], "--yes", code=1).stderr
    run("keys", "add", "Bob Editor")
    out = run(
        "keys",
        "retire",
        new_id[:8],
        "--compromised",
        "--yes",
        "--manifest-out",
        str(tmp_path / "m3.json"),
    ).stdout
    assert "compromised" in out and "re-wrapped 1" in out
    m3 = verify_manifest((tmp_path / "m3.json").read_bytes(), org, today(), 2)
    assert [r.label for r in m3.manifest.recipients] == ["Bob Editor"]
    run("keys", "export", "bob editor", "--out", str(tmp_path / "bob.pub.json"))
    assert "public_key" in (tmp_path / "bob.pub.json").read_text()
    assert "secret" not in (tmp_path / "bob.pub.json").read_text()


def test_delete_asks_first(vault_dir: Path, run: Run, imported: Imported) -> None:
    sub = imported(make_source(), "delete me")
    run("delete", sub.item.id[:8], input=PASS + "\nn\n", code=2)
    assert (vault_dir / "items" / f"{sub.item.id}.env").exists()
    run("delete", sub.item.id[:8], input=PASS + "\ny\n")
    assert not (vault_dir / "items" / f"{sub.item.id}.env").exists()
    assert "nothing here" in run("list").stderr


def test_reply_from_standard_input_after_the_passphrase(
    tmp_path: Path, run: Run, imported: Imported
) -> None:
    source = make_source("tidy otter")
    imported(source, "hello")
    out = tmp_path / "reply.tlb"
    run(
        "reply", "tidy", "--message-file", "-", "--out", str(out), code=1, input=PASS + "\nx\n"
    )  # "tidy" is neither a designation nor an id prefix
    run(
        "reply",
        "tidy otter",
        "--message-file",
        "-",
        "--out",
        str(out),
        input=PASS + "\nline one\nline two\n",
    )
    with out.open("rb") as f:
        entry = next(iter(BundleReader(f, KIND_REPLY)))
        data = entry.read()
    inner = envelope.open_envelope(io.BytesIO(data), [source.reply_secret])
    assert inner.message == "line one\nline two\n"
    assert run("reply", "tidy otter", "--out", str(tmp_path / "r3"), code=2).stderr.startswith(
        "tipline-desk: give the reply as --message or --message-file"
    )
