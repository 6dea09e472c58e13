"""Importing export bundles: idempotence, every kind of bad input, and a real kill part-way."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tipline.bundle import KIND_EXPORT, ExportItem, write_bundle
from tipline.crypto import keys
from tipline.desk.errors import ImportRefusedError
from tipline.desk.importer import import_bundle
from tipline.desk.maintenance import verify
from tipline.desk.vault import Vault

from .conftest import PASS, Run, bundle_bytes, make_source, public_keys, submission


def import_bytes(vault_dir: Path, data: bytes):  # type: ignore[no-untyped-def]
    with Vault.open(vault_dir, PASS) as vault:
        return import_bundle(vault, io.BytesIO(data))


def stored(vault_dir: Path) -> list[str]:
    with Vault.open(vault_dir, PASS) as vault:
        return vault.store.all_ids()


def test_a_damaged_item_is_reported_and_the_rest_imported(vault_dir: Path) -> None:
    pks = public_keys(vault_dir)
    source = make_source()
    subs = [submission(pks, source, f"message {n}") for n in range(3)]
    data = bytearray(bundle_bytes(subs))
    # flip one byte inside the second envelope's payload
    pos = data.index(subs[1].data[200:260]) + 30
    data[pos] ^= 1
    report = import_bytes(vault_dir, bytes(data))
    assert sorted(report.added) == sorted([subs[0].item.id, subs[2].item.id])
    assert [i for i, _ in report.failed] == [subs[1].item.id]
    assert report.failed[0][1] == "its checksum does not match: it was damaged on the way"
    assert report.bundle_error is None  # the Z checksum covers the H records, not the data
    assert not (vault_dir / "items" / f"{subs[1].item.id}.env").exists()
    assert not [p for p in (vault_dir / "items").iterdir() if p.name.startswith(".tmp")]


def test_a_wrong_item_checksum_is_reported(vault_dir: Path) -> None:
    pks = public_keys(vault_dir)
    subs = [submission(pks, make_source(), "x")]
    data = bytearray(bundle_bytes(subs))
    hpos = len(data) - 41 - 32  # the H record's digest sits before the Z record
    data[hpos] ^= 1
    report = import_bytes(vault_dir, bytes(data))
    assert report.failed == [
        (subs[0].item.id, "its checksum does not match: it was damaged on the way")
    ]
    assert report.bundle_error and "final checksum" in report.bundle_error
    assert stored(vault_dir) == []


def test_truncated_bundle_keeps_what_was_whole(vault_dir: Path) -> None:
    pks = public_keys(vault_dir)
    subs = [submission(pks, make_source(), f"m{n}") for n in range(3)]
    data = bundle_bytes(subs)
    cut = data.index(subs[2].data[:64]) + 100
    report = import_bytes(vault_dir, data[:cut])
    assert sorted(report.added) == sorted(s.item.id for s in subs[:2])
    assert report.bundle_error == "this bundle cannot be read: the bundle is truncated"
    report = import_bytes(vault_dir, data)  # the whole bundle later: only the missing one
    assert report.added == [subs[2].item.id] and report.duplicates == 2 and report.ok


def test_unknown_keys_and_replies_are_refused(vault_dir: Path) -> None:
    stranger = keys.RecipientSecret.generate("Mallory")
    pks = public_keys(vault_dir)
    good = submission(pks, make_source(), "fine")
    foreign = submission([stranger.public.public_key], make_source(), "not for us")
    report = import_bytes(vault_dir, bundle_bytes([foreign, good]))
    assert report.added == [good.item.id]
    assert report.failed == [
        (
            foreign.item.id,
            "the envelope could not be opened: it is "
            "damaged, truncated, or not sealed to any of your keys",
        )
    ]


def test_not_a_bundle_and_wrong_kind(vault_dir: Path, tmp_path: Path, run: Run) -> None:
    with pytest.raises(ImportRefusedError, match="not a Tipline bundle"):
        import_bytes(vault_dir, b"PK\x03\x04" + bytes(100))
    junk = tmp_path / "junk"
    junk.write_bytes(b"TLBUNDLE\x01\x02" + bytes(20))
    assert "this is not an export bundle" in run("import", str(junk), code=1).stderr
    huge = tmp_path / "huge"
    huge.write_bytes(b"TLBUNDLE\x01\x01M" + (1 << 40).to_bytes(8, "big"))
    assert "larger than" in run("import", str(huge), code=1).stderr


def test_envelope_with_trailing_bytes_in_the_bundle(vault_dir: Path) -> None:
    # The bundle says the envelope is longer than it is: the envelope reader refuses it.
    pks = public_keys(vault_dir)
    sub = submission(pks, make_source(), "x")
    longer = type(sub)(
        ExportItem(
            sub.item.id,
            sub.item.source_id,
            sub.item.source_designation,
            sub.item.received,
            sub.item.size + 5,
        ),
        sub.data + b"extra",
    )
    report = import_bytes(vault_dir, bundle_bytes([longer]))
    assert report.failed and report.failed[0][0] == sub.item.id and not report.added


def test_a_vault_without_keys_refuses(tmp_path: Path) -> None:
    Vault.create(tmp_path / "v", PASS, "test").close()
    out = io.BytesIO()
    write_bundle(out, KIND_EXPORT, [], lambda i: io.BytesIO())
    with (
        Vault.open(tmp_path / "v", PASS) as vault,
        pytest.raises(ImportRefusedError, match="no keys"),
    ):
        import_bundle(vault, io.BytesIO(out.getvalue()))


def test_killed_import_leaves_a_consistent_vault(tmp_path: Path, vault_dir: Path) -> None:
    pks = public_keys(vault_dir)
    source = make_source()
    subs = [
        submission(pks, source, f"item {n}", [("f.bin", os.urandom(20_000))]) for n in range(40)
    ]
    data = bundle_bytes(subs)
    fifo = tmp_path / "bundle.fifo"
    os.mkfifo(fifo)
    desk = Path(sys.executable).with_name("tipline-desk")
    err = (tmp_path / "stderr").open("wb")
    proc = subprocess.Popen(
        [str(desk), "--vault", str(vault_dir), "import", str(fifo)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    err.close()
    assert proc.stdin is not None
    proc.stdin.write(PASS.encode() + b"\n")
    proc.stdin.close()
    half = data.index(subs[25].data[:64]) + 5000  # in the middle of item 26

    def feed() -> None:
        with fifo.open("wb") as f:
            f.write(data[:half])
            done.wait(60)

    done = threading.Event()
    writer = threading.Thread(target=feed)
    writer.start()
    try:
        deadline = time.monotonic() + 60
        while len(list((vault_dir / "items").glob("*.env"))) < 25:
            assert proc.poll() is None, (tmp_path / "stderr").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)  # let it block on the half-written item 26
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        done.set()
        writer.join()
    leftovers = [p.name for p in (vault_dir / "items").iterdir() if p.name.startswith(".tmp")]
    assert leftovers  # the half-written item 26 was killed under its temporary name
    with Vault.open(vault_dir, PASS) as vault:  # opens fine; temporary files are swept
        report = verify(vault)
        assert report.problems == []
        assert len(report.unlisted) + vault.store.count() == 25
        assert not [p for p in (vault_dir / "items").iterdir() if p.name.startswith(".tmp")]
        again = import_bundle(vault, io.BytesIO(data))
        assert again.ok and len(again.added) + again.duplicates == 40
        final = verify(vault, deep=True)
        assert final.problems == [] and final.unlisted == [] and final.checked == 40


def raw_bundle(manifest: dict[str, object], records: bytes = b"") -> bytes:
    import json
    import struct

    body = json.dumps(manifest).encode()
    return b"TLBUNDLE\x01\x01" + struct.pack(">cQ", b"M", len(body)) + body + records


def test_duplicate_ids_in_a_bundle_are_refused(vault_dir: Path) -> None:
    entry = {
        "id": "ab" * 16,
        "source_id": "cd" * 16,
        "source_designation": "tidy otter",
        "received": "2026-11-20",
        "size": 10,
    }
    data = raw_bundle(
        {"type": "tipline-export-bundle", "v": 1, "created": "2026-11-20", "items": [entry, entry]}
    )
    with pytest.raises(ImportRefusedError, match="repeats the id"):
        import_bytes(vault_dir, data)


def test_not_an_envelope_and_not_a_submission(vault_dir: Path) -> None:
    from tipline.crypto.inner import Inner

    pks = public_keys(vault_dir)
    garbage = submission(pks, make_source(), "x")
    garbage = type(garbage)(garbage.item, b"NOTANENVELOPE" + garbage.data[13:])
    reply_env = io.BytesIO()
    from tipline.crypto import envelope

    envelope.seal(reply_env, pks, Inner("reply", "desk", "a reply", None, ()))
    reply = submission(pks, make_source(), "placeholder")
    reply = type(reply)(
        ExportItem(
            reply.item.id,
            reply.item.source_id,
            reply.item.source_designation,
            reply.item.received,
            len(reply_env.getvalue()),
        ),
        reply_env.getvalue(),
    )
    report = import_bytes(vault_dir, bundle_bytes([garbage, reply]))
    assert not report.added and report.bundle_error is None
    problems = dict(report.failed)
    assert "not a Tipline envelope" in problems[garbage.item.id]
    assert problems[reply.item.id] == "it is not a submission"


def test_import_cli_reports_and_exits_nonzero(tmp_path: Path, vault_dir: Path, run: Run) -> None:
    pks = public_keys(vault_dir)
    stranger = keys.RecipientSecret.generate("Mallory")
    good = submission(pks, make_source(), "fine")
    foreign = submission([stranger.public.public_key], make_source(), "not for us")
    path = tmp_path / "b.tlb"
    path.write_bytes(bundle_bytes([good, foreign]))
    result = run("import", str(path), code=1)
    assert "imported 1 new, 0 already in the vault" in result.stdout
    assert f"tipline-desk: item {foreign.item.id} not imported: the envelope could not" in (
        result.stderr
    )
    assert "Traceback" not in result.output


VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def test_every_shared_envelope_vector_through_a_bundle(tmp_path: Path) -> None:
    # Each committed envelope vector, carried in a bundle to a vault holding the vector's keys:
    # the good submission is imported, every broken envelope is refused and nothing of it kept.
    import base64
    import json

    from tipline.desk.keyring import Recipient
    from tipline.desk.vault import today

    from .conftest import Sub

    vectors = sorted(VECTORS.glob("envelope-*.json"))
    assert len(vectors) >= 20
    imported = 0
    for path in vectors:
        vector = json.loads(path.read_text())
        vault_dir = tmp_path / path.stem
        with Vault.create(vault_dir, PASS, "test") as vault:
            for n, sk in enumerate(vector["identities"]):
                secret = keys.RecipientSecret(base64.b64decode(sk), f"key {n}")
                vault.keyring.recipients.append(
                    Recipient(secret.public, "active", "2026-11-25", secret=secret)
                )
            vault.save_keyring()
        data = base64.b64decode(vector["envelope"])
        item = ExportItem(
            os.urandom(16).hex(), "ab" * 16, "tidy otter", today().isoformat(), len(data)
        )
        report = import_bytes(vault_dir, bundle_bytes([Sub(item, data)]))
        expected = vector.get("expected") or {}
        is_submission = vector["outcome"] == "ok" and expected["inner"]["kind"] == "submission"
        assert report.bundle_error is None, path.name
        if is_submission:
            assert report.added == [item.id], (path.name, report.failed)
            imported += 1
        else:
            assert report.added == [] and len(report.failed) == 1, path.name
            assert stored(vault_dir) == []
            assert list((vault_dir / "items").iterdir()) == [], path.name
    assert imported >= 1
