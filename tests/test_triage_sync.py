"""Shared triage between two journalist desks through one server, sealed (docs/DESK.md §4.1).

Alice and Bob enrol by request on their own vaults (as in tests/test_desks.py). Both import the
same tip; Alice tags it and sets its status, Bob notes it and sets its status later. Each syncs
(a reply bundle of sealed triage updates), uploads, downloads the next export and imports it:
both desks then show Alice's tag, Bob's note and Bob's status (the later), with its writer. The
server's files and database never hold the tag in clear (a planted clear copy is found: the scan
works). Every update is signed by its writer's key (SPEC §8.5): unsigned, forged (sealed by
someone holding only the manifest), replayed, reordered, retired-writer, unknown-writer and
unknown-item updates each give a one-line outcome and change nothing; the same update signed by
the real writer's key is applied (the control).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import io
import json
import re
import shlex
from pathlib import Path

import pytest
from flask import Flask
from nacl.signing import SigningKey

from tipline import bundle as bundles
from tipline.crypto import envelope, keys
from tipline.crypto.encoding import b64e
from tipline.crypto.inner import Inner
from tipline.crypto.primitives import SIG_TRIAGE
from tipline.desk import triage
from tipline.desk.store import Store
from tipline.desk.vault import Vault
from tipline.server import create_app

from .crypto import mixed_order
from .test_desks import PASS, api_token, init, run, server_run, submit

TAG = "zanzibar-ledger"  # the tag text the server must never see
DESK_MD = Path(__file__).parents[1] / "docs" / "DESK.md"


def documented() -> list[list[str]]:
    """The `tipline-desk sync` commands of docs/DESK.md §5.1, as argument lists."""
    text = DESK_MD.read_text()
    start = text.index("### 5.1 Sharing triage")
    block = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert block
    lines = [re.sub(r"\s{2,}#.*$", "", line).strip() for line in block.group(1).splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("tipline-desk ")]


def as_written(args: list[str], usb: Path) -> list[str]:
    return [a.replace("/media/usb", str(usb)) for a in args]


def export_ids(app: Flask, token: str, ids: list[str], out: Path) -> Path:
    got = app.test_client().post(
        "/api/journalist/export",
        json={"ids": ids, "mark_downloaded": False},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert got.status_code == 200, got.text
    out.write_bytes(got.data)
    return out


def upload(app: Flask, token: str, path: Path) -> None:
    sent = app.test_client().post(
        "/api/journalist/replies",
        data=path.read_bytes(),
        content_type="application/octet-stream",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert sent.status_code == 201, sent.text


def clock(monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    monkeypatch.setattr(triage, "now", lambda: when)


def own_key(vault: Path) -> tuple[str, bytes]:
    """The key id and Ed25519 seed of the one active key a journalist's vault holds."""
    with Vault.open(vault, PASS) as opened:
        (entry,) = [r for r in opened.keyring.active() if r.secret is not None]
        assert entry.signing_seed is not None
        return entry.key_id, entry.signing_seed


def key_id_of(seed: bytes) -> str:
    return keys.key_id(bytes(SigningKey(seed).verify_key.to_curve25519_public_key())).hex()


def manifest_keys(path: Path) -> list[bytes]:
    """The public keys of a signed manifest file, as anyone holding it can read them."""
    outer = json.loads(path.read_text())
    body = json.loads(base64.b64decode(outer["body"]))
    return [base64.b64decode(r["public_key"]) for r in body["recipients"]]


def seal_message(message: str, recipients: list[bytes]) -> bytes:
    out = io.BytesIO()
    envelope.seal(out, recipients, Inner("triage", "desk", message))
    return out.getvalue()


def send(app: Flask, token: str, path: Path, sealed: dict[str, bytes]) -> None:
    """Upload hand-made triage envelopes (bundle id → envelope) as one reply bundle."""
    with path.open("wb") as dst:
        bundles.write_bundle(
            dst,
            bundles.KIND_REPLY,
            [bundles.TriageItem(i, len(d)) for i, d in sealed.items()],
            lambda it: io.BytesIO(sealed[it.id]),
        )
    upload(app, token, path)


def holds_clear(root: Path, text: bytes) -> list[Path]:
    """Every file under ``root`` (blobs, the SQLite database, its journal) holding ``text``."""
    return [p for p in root.rglob("*") if p.is_file() and text in p.read_bytes()]


@pytest.fixture
def two_desks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    signer, alice, bob = tmp_path / "signer", tmp_path / "alice", tmp_path / "bob"
    usb = tmp_path / "usb"
    usb.mkdir()
    init(signer, "signer")
    run(signer, "keys", "org-create")
    run(signer, "keys", "org-export", "--out", str(usb / "org.json"))
    for vault, who, label in ((alice, "alice", "Alice Reporter"), (bob, "bob", "Bob Editor")):
        init(vault, "journalist")
        run(vault, "keys", "org-import", str(usb / "org.json"))
        request = usb / f"{who}.request"
        run(vault, "keys", "request", "--account", who, "--label", label, "--out", str(request))
        run(signer, "keys", "accept", str(usb / f"{who}.request"), "--yes")
    run(signer, "manifest", "--out", str(usb / "m.json"))
    org = keys.load_key_file((usb / "org.json").read_bytes())
    assert isinstance(org, keys.OrgPublic)
    monkeypatch.setenv("TIPLINE_DATA_DIR", str(tmp_path / "server"))
    monkeypatch.setenv("TIPLINE_ORG_PUBLIC_KEY", b64e(org.public_key))
    monkeypatch.setenv("TIPLINE_RATELIMIT_ENABLED", "false")
    monkeypatch.setenv("TIPLINE_MIN_FREE_BYTES", "0")
    server_run("db", "upgrade")
    server_run("add-journalist", "alice")
    server_run("add-journalist", "bob")
    server_run("install-manifest", "--yes", str(usb / "m.json"))
    app = create_app()
    submit(app, "Tip: the harbour ledgers")
    tokens = {who: api_token(app, who) for who in ("alice", "bob")}
    first = app.test_client().post(
        "/api/journalist/export",
        json={"new": True},
        headers={"Authorization": f"Bearer {tokens['bob']}"},
    )
    assert first.status_code == 200
    (usb / "e0.tlb").write_bytes(first.data)
    tip = bundles.BundleReader(io.BytesIO(first.data), bundles.KIND_EXPORT).items[0].id
    hold, _write = documented()
    assert hold == ["sync", "--manifest", "/media/usb/manifest.json"]
    (usb / "manifest.json").write_bytes((usb / "m.json").read_bytes())
    for vault in (alice, bob):
        run(vault, "import", str(usb / "e0.tlb"))
        assert "holding key manifest version" in run(vault, *as_written(hold, usb)).stdout
    return {
        "alice": alice,
        "bob": bob,
        "signer": signer,
        "usb": usb,
        "app": app,
        "tokens": tokens,
        "tip": tip,
        "server": tmp_path / "server",
    }


def test_two_desks_converge_and_the_server_sees_only_ciphertext(
    two_desks: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob, usb = (
        Path(str(two_desks["alice"])),
        Path(str(two_desks["bob"])),
        Path(str(two_desks["usb"])),
    )
    app, tip = two_desks["app"], str(two_desks["tip"])
    assert isinstance(app, Flask)
    tokens = two_desks["tokens"]
    assert isinstance(tokens, dict)

    clock(monkeypatch, "2026-11-30T09:00:00Z")
    run(alice, "tag", tip[:8], TAG)
    run(alice, "status", tip[:8], "follow-up")
    clock(monkeypatch, "2026-11-30T09:05:00Z")
    run(bob, "note", tip[:8], "ask the harbour master")
    run(bob, "status", tip[:8], "done")

    # Each desk syncs once and uploads; the server stores the updates as opaque blobs.
    write = documented()[1]
    assert write == ["sync", "--out", "/media/usb/triage.tlb"]
    for who, vault in (("alice", alice), ("bob", bob)):
        stick = usb / who
        stick.mkdir()
        assert "wrote 2 triage updates" in run(vault, *as_written(write, stick)).stdout
        upload(app, tokens[who], stick / "triage.tlb")
    server_dir = Path(str(two_desks["server"]))
    blobs = [p for p in server_dir.rglob("triage/*") if p.is_file()]
    assert len(blobs) == 4
    assert holds_clear(server_dir, TAG.encode()) == []
    assert holds_clear(server_dir, b"harbour master") == []
    # Control: the scan finds the tag when it is there in clear.
    planted = blobs[0].parent / ("f" * 32)
    planted.write_bytes(b"tag:" + TAG.encode())
    assert holds_clear(server_dir, TAG.encode()) == [planted]
    planted.unlink()

    # One round trip each: the next export carries every update; each desk applies the others'.
    for who, vault in (("alice", alice), ("bob", bob)):
        got = run(vault, "import", str(export_ids(app, tokens[who], [tip], usb / f"{who}.tlb")))
        lines = [line for line in got.stdout.splitlines() if line.startswith("triage update")]
        assert len(lines) == 4, got.stdout
        assert sum("this desk's own, back from the server" in line for line in lines) == 2
        if who == "alice":
            assert sum("applied" in line and "bob" in line for line in lines) == 2
        else:
            # Alice's status is older than Bob's: kept; her tag applies.
            assert any(f"applied tag:{TAG}" in line for line in lines), lines
            assert any(
                "older than this desk's status: nothing changed" in line for line in lines
            ), lines

    for vault in (alice, bob):
        shown = run(vault, "show", tip[:8]).stdout
        assert "status done" in shown and TAG in shown, shown
        assert "note: ask the harbour master" in shown
        assert re.search(r"status last set 2026-11-30T09:05:00Z by bob [0-9a-f]{8}", shown), shown
        assert re.search(rf"tag:{TAG} last set 2026-11-30T09:00:00Z by alice", shown), shown
        assert shown.count("ask the harbour master") == 1

    # Replayed: the same export again changes nothing, and says so per update.
    again = run(bob, "import", str(usb / "bob.tlb")).stdout
    assert again.count("already applied (replayed): nothing changed") == 3, again
    assert again.count("older than this desk's status: nothing changed") == 1, again
    assert run(bob, "show", tip[:8]).stdout.count("ask the harbour master") == 1

    # An update written by a key outside the manifest the desk holds (a third desk, Carol's)
    # is refused on both desks.
    carol = usb.parent / "carol"
    init(carol, "journalist")
    run(carol, "keys", "org-import", str(usb / "org.json"))
    out = str(usb / "carol.request")
    run(carol, "keys", "request", "--account", "carol", "--label", "Carol", "--out", out)
    run(carol, "import", str(usb / "e0.tlb"), code=1)  # not sealed to Carol: reported
    run(carol, "sync", "--manifest", str(usb / "m.json"))
    # Carol's desk holds no copy of the tip, so she writes the update by hand for its id, signed
    # with her own key.
    writer, seed = own_key(carol)
    forged = triage.Update("c" * 32, tip, "2026-11-30T10:00:00Z", writer, (("status", "new"),))
    data = triage.seal_update(forged, seed, manifest_keys(usb / "m.json"))
    send(app, tokens["alice"], usb / "carol.sync", {forged.id: data})
    carols = run(bob, "import", str(export_ids(app, tokens["bob"], [tip], usb / "b2.tlb"))).stdout
    assert f"signed by key {writer[:8]}, not a key of the manifest this desk holds" in carols
    assert "status done" in run(bob, "show", tip[:8]).stdout


def test_a_forged_update_is_refused_and_the_real_writers_is_applied(
    two_desks: dict[str, object],
) -> None:
    """Someone holding only the manifest (the server, say) seals updates claiming Alice's key:
    each is refused on Bob's desk and changes nothing; the same update signed with Alice's real
    key is applied."""
    alice, bob, usb = (Path(str(two_desks[k])) for k in ("alice", "bob", "usb"))
    app, tip = two_desks["app"], str(two_desks["tip"])
    assert isinstance(app, Flask)
    tokens = two_desks["tokens"]
    assert isinstance(tokens, dict)
    alice_id, alice_seed = own_key(alice)
    recipients = manifest_keys(usb / "m.json")  # public: all a forger needs to seal
    mallory = SigningKey(bytes(range(7, 39)))

    def update(mark: str) -> triage.Update:
        return triage.Update(
            mark * 32,
            tip,
            "2026-11-30T11:00:00Z",
            alice_id,
            (("status", "follow-up"), (f"tag:{TAG}", True)),
        )

    unsigned = update("1")
    as_alice = update("2")  # Mallory's signature, the update naming Alice's key as its writer
    signed_by_mallory = json.loads(
        triage.sign_update(
            triage.Update(
                as_alice.id, tip, as_alice.date, key_id_of(bytes(mallory)), as_alice.changes
            ),
            bytes(mallory),
        )
    )
    signed_by_mallory["body"] = b64e(as_alice.encode().encode())
    signed_by_mallory["signature"] = b64e(
        mallory.sign(b"tipline/v1/triage\x00" + as_alice.encode().encode()).signature
    )
    alice_key_mallory_sig = update("3")  # Alice's verify key shown, Mallory's signature
    with_alice_key = json.loads(triage.sign_update(alice_key_mallory_sig, alice_seed))
    with_alice_key["signature"] = b64e(
        mallory.sign(b"tipline/v1/triage\x00" + base64.b64decode(with_alice_key["body"])).signature
    )
    wrong_prefix = update("4")  # Alice's real key, but over the key-request prefix
    cross = json.loads(triage.sign_update(wrong_prefix, alice_seed))
    cross["signature"] = b64e(
        SigningKey(alice_seed)
        .sign(b"tipline/v1/key-request\x00" + base64.b64decode(cross["body"]))
        .signature
    )
    forgeries = {
        unsigned.id: (unsigned.encode(), "it is not signed"),
        as_alice.id: (json.dumps(signed_by_mallory), "signed by a key other than its writer's"),
        alice_key_mallory_sig.id: (json.dumps(with_alice_key), "its signature does not verify"),
        wrong_prefix.id: (json.dumps(cross), "its signature does not verify"),
    }
    run(bob, "show", tip[:8])  # opening it marks it read (not shared): the state compared
    before = run(bob, "show", tip[:8]).stdout
    send(
        app,
        tokens["alice"],
        usb / "forged.tlb",
        {i: seal_message(m, recipients) for i, (m, _) in forgeries.items()},
    )
    got = run(bob, "import", str(export_ids(app, tokens["bob"], [tip], usb / "b1.tlb"))).stdout
    lines = [line for line in got.splitlines() if line.startswith("triage update")]
    assert len(lines) == len(forgeries), got
    for update_id, (_, detail) in forgeries.items():
        (line,) = [x for x in lines if x.startswith(f"triage update {update_id[:12]}")]
        assert detail in line and line.endswith("nothing changed"), line
    assert run(bob, "show", tip[:8]).stdout == before
    assert TAG not in before

    # Control: the same update, signed with Alice's real key, is applied.
    real = update("5")
    send(
        app,
        tokens["alice"],
        usb / "real.tlb",
        {real.id: triage.seal_update(real, alice_seed, recipients)},
    )
    got = run(bob, "import", str(export_ids(app, tokens["bob"], [tip], usb / "b2.tlb"))).stdout
    assert re.search(
        rf"triage update {real.id[:12]} by alice {alice_id[:8]} of "
        rf".*: applied status, tag:{TAG}",
        got,
    ), got
    shown = run(bob, "show", tip[:8]).stdout
    assert "status follow-up" in shown and TAG in shown, shown


def test_a_retired_writers_update_is_refused_after_its_retirement(
    two_desks: dict[str, object],
) -> None:
    """Alice rotates her key by request; the signer retires the old one and signs manifest 2;
    Bob's desk holds it. An update signed by Alice's old key dated on or after the retirement day
    is refused; the same update dated the day before (the control) is applied. Alice's own
    pending change, made with her old key, is signed again with her new one and applies."""
    alice, bob, signer, usb = (Path(str(two_desks[k])) for k in ("alice", "bob", "signer", "usb"))
    app, tip = two_desks["app"], str(two_desks["tip"])
    assert isinstance(app, Flask)
    tokens = two_desks["tokens"]
    assert isinstance(tokens, dict)
    old_id, old_seed = own_key(alice)
    run(alice, "star", tip[:8])  # pending, written with the old key
    out = str(usb / "alice2.request")
    run(alice, "keys", "request", "--account", "alice", "--label", "Alice Reporter", "--out", out)
    run(signer, "keys", "accept", str(usb / "alice2.request"), "--yes")
    run(signer, "keys", "retire", old_id[:8], "--yes")
    run(signer, "manifest", "--out", str(usb / "m2.json"))
    for vault in (alice, bob):
        assert "version 2" in run(vault, "sync", "--manifest", str(usb / "m2.json")).stdout
    # Alice's desk held manifest 2 too: her retired key's signing seed is gone from her vault
    # (Bob's desk never had it); her new key keeps its own.
    with Vault.open(alice, PASS) as opened:
        seeds = {r.key_id: r.signing_seed for r in opened.keyring.recipients}
    assert (
        seeds[old_id] is None
        and len(seeds) == 2
        and all(v is not None for k, v in seeds.items() if k != old_id)
    )
    recipients = manifest_keys(usb / "m2.json")
    today = datetime.datetime.now(datetime.UTC).date()
    after = triage.Update("a1" * 16, tip, f"{today}T00:00:00Z", old_id, (("status", "read"),))
    send(
        app,
        tokens["alice"],
        usb / "late.tlb",
        {after.id: triage.seal_update(after, old_seed, recipients)},
    )
    got = run(bob, "import", str(export_ids(app, tokens["bob"], [tip], usb / "b1.tlb"))).stdout
    assert (
        f"signed by key {old_id[:8]} (alice {old_id[:8]}), retired on {today}, and dated "
        f"{today}T00:00:00Z: nothing changed"
    ) in got, got
    assert re.search(r" new +Tip: the harbour", run(bob, "list").stdout)

    # Control: the same change, dated the second before the retirement day, is applied.
    before = triage.Update(
        "b2" * 16,
        tip,
        f"{today - datetime.timedelta(days=1)}T23:59:59Z",
        old_id,
        (("status", "read"),),
    )
    send(
        app,
        tokens["alice"],
        usb / "early.tlb",
        {before.id: triage.seal_update(before, old_seed, recipients)},
    )
    got = run(bob, "import", str(export_ids(app, tokens["bob"], [tip], usb / "b2.tlb"))).stdout
    assert (
        f"triage update {before.id[:12]} by alice {old_id[:8]}" in got and "applied status" in got
    ), got
    assert re.search(r" read +Tip: the harbour", run(bob, "list").stdout)

    # Alice's pending star goes out signed by her new key, and Bob applies it as hers.
    new_id, _ = own_key_new(alice, old_id)
    assert "wrote 1 triage updates" in run(alice, "sync", "--out", str(usb / "a.tlb")).stdout
    upload(app, tokens["alice"], usb / "a.tlb")
    got = run(bob, "import", str(export_ids(app, tokens["bob"], [tip], usb / "b3.tlb"))).stdout
    assert re.search(rf"by alice {new_id[:8]} of .*: applied star", got), got


def own_key_new(vault: Path, old_id: str) -> tuple[str, bytes]:
    """The key of a journalist's vault other than ``old_id`` (after a rotation by request)."""
    with Vault.open(vault, PASS) as opened:
        (entry,) = [
            r for r in opened.keyring.active() if r.secret is not None and r.key_id != old_id
        ]
        assert entry.signing_seed is not None
        return entry.key_id, entry.signing_seed


def _snapshot(store: Store) -> list[object]:
    db = store.db
    return [
        db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
        for t in ("items", "tags", "notes", "triage_clock", "triage_seen", "triage_pending")
        # triage_parked is not here: keeping an update for later is not a change of triage
    ]


def _store_with_item(item: str) -> Store:
    return _add_item(Store(), item, "hello")


def _add_item(store: Store, item: str, message: str) -> Store:
    """One incoming item of the same source (tidy otter) into ``store``."""
    store.add_item(
        item_id=item,
        source_id="5" * 32,
        designation="tidy otter",
        reply_public_key=b"\x01" * 32,
        direction="in",
        received="2026-11-30",
        imported="2026-11-30",
        size=100,
        digest=b"\x00" * 32,
        sealed_by="browser",
        message=message,
        attachments=[],
    )
    return store


SEEDS = {name: bytes([n]) * 32 for n, name in enumerate(("alice", "bob", "carol"), 1)}
IDS = {name: key_id_of(seed) for name, seed in SEEDS.items()}


def _signed(
    update_id: str, item: str, date: str, who: str, changes: tuple[tuple[str, object], ...]
) -> str:
    return triage.sign_update(triage.Update(update_id, item, date, IDS[who], changes), SEEDS[who])


def _writer(who: str, retired: str | None = None) -> triage.Writer:
    public = bytes(SigningKey(SEEDS[who]).verify_key.to_curve25519_public_key())
    return triage.Writer(public, f"{who} {IDS[who][:8]}", retired)


def test_bad_updates_each_say_one_line_and_change_nothing() -> None:
    item = "a" * 32
    who = triage.Writers({IDS[k]: _writer(k) for k in ("alice", "bob")}, {})
    # Alice's key as a desk holding manifest 2 knows it: retired on 2026-11-30.
    after = triage.Writers(
        {IDS["bob"]: _writer("bob")}, {IDS["alice"]: _writer("alice", "2026-11-30")}
    )
    store = _store_with_item(item)
    newer = _signed("b" * 32, item, "2026-11-30T09:05:00Z", "bob", (("status", "done"),))
    assert "applied status" in triage.receive(store, "b" * 32, newer, who)
    star = (("star", True),)
    unsigned = triage.Update("c" * 32, item, "2026-11-30T10:00:00Z", IDS["bob"], star).encode()

    cases = {
        "unsigned": ("c" * 32, unsigned, who, "it is not signed"),
        "replayed": ("b" * 32, newer, who, "already applied (replayed): nothing changed"),
        "reordered": (
            "d" * 32,
            _signed("d" * 32, item, "2026-11-30T09:00:00Z", "alice", (("status", "read"),)),
            who,
            "older than this desk's status: nothing changed",
        ),
        "unknown key": (
            "e" * 32,
            _signed("e" * 32, item, "2026-11-30T10:00:00Z", "carol", star),
            who,
            f"signed by key {IDS['carol'][:8]}, not a key of the manifest",
        ),
        "retired key": (
            "f" * 32,
            _signed("f" * 32, item, "2026-11-30T00:00:00Z", "alice", star),
            after,
            "retired on 2026-11-30, and dated 2026-11-30T00:00:00Z",
        ),
        "unknown item": (
            "9" * 32,
            _signed("9" * 32, "8" * 32, "2026-11-30T10:00:00Z", "bob", star),
            who,
            "not on this desk (kept until an import brings it): nothing changed",
        ),
        "id differs": (
            "7" * 32,
            _signed("6" * 32, item, "2026-11-30T10:00:00Z", "bob", star),
            who,
            "its id differs from the bundle's",
        ),
        "no manifest": (
            "5" * 32,
            _signed("5" * 32, item, "2026-11-30T10:00:00Z", "bob", star),
            triage.Writers({}, {}),
            "this desk holds no key manifest",
        ),
    }
    for name, (bundle_id, message, writers, expected) in cases.items():
        before = _snapshot(store)
        outcome = triage.receive(store, bundle_id, message, writers)
        assert expected in outcome and "\n" not in outcome, (name, outcome)
        assert outcome.endswith("nothing changed") or name == "no manifest", (name, outcome)
        assert _snapshot(store) == before, name
    assert store.get(item).status == "done" and not store.get(item).starred
    # Controls: the retired key's update dated the second before its retirement applies...
    early = _signed("4" * 32, item, "2026-11-29T23:59:59Z", "alice", star)
    assert "applied star" in triage.receive(store, "4" * 32, early, after)
    assert store.get(item).starred
    # ...and the unknown key's, once its key is in the manifest.
    carol = triage.Writers({**who.active, IDS["carol"]: _writer("carol")}, {})
    assert "applied star" in triage.receive(store, "e" * 32, cases["unknown key"][1], carol)


def test_an_update_for_an_item_not_yet_here_applies_when_the_item_arrives() -> None:
    """The server delivers an update to an account once: one for an item the desk does not have
    yet is kept (changing nothing) and applied by the import that brings the item."""
    item, other = "a" * 32, "8" * 32
    who = triage.Writers({IDS[k]: _writer(k) for k in ("alice", "bob")}, {})
    store = _store_with_item(item)
    early = _signed("9" * 32, other, "2026-11-30T10:00:00Z", "bob", (("status", "done"),))
    before = _snapshot(store)
    assert "kept until an import brings it" in triage.receive(store, "9" * 32, early, who)
    assert "already kept" in triage.receive(store, "9" * 32, early, who)  # replayed
    assert _snapshot(store) == before
    assert triage.apply_parked(store, who) == []  # the item is still not here
    _add_item(store, other, "later")
    # A manifest-less desk keeps waiting; one with the writers applies it, once.
    assert triage.apply_parked(store, triage.Writers({}, {})) == []
    (line,) = triage.apply_parked(store, who)
    assert "applied status" in line and line.endswith("(kept from before)"), line
    assert store.get(other).status == "done"
    assert triage.apply_parked(store, who) == []
    # A forged one (unsigned) is never kept: refused at once.
    forged = triage.Update(
        "3" * 32, "7" * 32, "2026-11-30T10:00:00Z", IDS["bob"], (("star", True),)
    ).encode()
    assert "it is not signed" in triage.receive(store, "3" * 32, forged, who)
    assert store.db.execute("SELECT count(*) FROM triage_parked").fetchone()[0] == 0


def test_an_update_signed_for_another_writer_or_damaged_is_refused() -> None:
    item = "a" * 32
    good = json.loads(_signed("b" * 32, item, "2026-11-30T09:05:00Z", "bob", (("star", True),)))
    assert triage.read_signed(json.dumps(good)).update.writer == IDS["bob"]  # control
    other_body = json.loads(
        _signed("b" * 32, item, "2026-11-30T09:05:00Z", "alice", (("star", True),))
    )["body"]
    bad = {
        "body of another writer": ({**good, "body": other_body}, "does not verify"),
        "truncated signature": ({**good, "signature": good["signature"][:40]}, "signature"),
        "extra member": ({**good, "writer": IDS["bob"]}, "unknown writer"),
        "version 2": ({**good, "v": 2}, "version"),
        "zero signing key": ({**good, "signing_key": b64e(bytes(32))}, "does not verify"),
    }

    # A signing key that verifies but does not convert (tests/crypto/mixed_order.py).
    def signed_body(_key: bytes, n: int) -> bytes:
        update = triage.Update(
            f"{n:032x}", item, "2026-11-30T09:05:00Z", IDS["bob"], (("star", True),)
        )
        return SIG_TRIAGE + update.encode().encode()

    key, message, signature = mixed_order.signing_key_and_signature(signed_body)
    assert keys.verify_signature(key, message, signature)  # control: it does verify
    unconvertible = {
        **good,
        "body": b64e(message[len(SIG_TRIAGE) :]),
        "signing_key": b64e(key),
        "signature": b64e(signature),
    }
    bad["signs but does not convert"] = (unconvertible, "its signing key is not a valid key")
    for name, (doc, detail) in bad.items():
        with pytest.raises(triage.TriageError) as caught:
            triage.read_signed(json.dumps(doc))
        assert detail in caught.value.message, (name, caught.value.message)
    with pytest.raises(triage.TriageError) as caught:  # a key that cannot sign for bob's id
        triage.sign_update(
            triage.Update("b" * 32, item, "2026-11-30T09:05:00Z", IDS["bob"], (("star", True),)),
            SEEDS["alice"],
        )
    assert "not the key that signs it" in caught.value.message


def _update_text(date: str, changes: str) -> str:
    """An update's text with well-formed ids, the ``date`` and the ``changes`` (JSON) given."""
    a, b, c = "a" * 32, "b" * 32, "c" * 32
    return (
        f'{{"type":"tipline-triage","v":1,"id":"{a}","item":"{b}","date":"{date}",'
        f'"writer":"{c}","changes":{changes}}}'
    )


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ('{"type":"tipline-triage","v":2}', "version"),
        (
            '{"type":"tipline-triage","v":1,"id":"00","item":"x","date":"d","writer":"w",'
            '"changes":[]}',
            "32 lowercase hex",
        ),
        (_update_text("2026-11-30 09:00", '[["status","x"]]'), "date"),
        (_update_text("2026-11-30T09:00:00Z", '[["status","gone"]]'), "a change is not valid"),
        (_update_text("2026-11-30T09:00:00Z", '[["star",true],["star",false]]'), "one field twice"),
    ],
)
def test_malformed_updates_are_refused(text: str, detail: str) -> None:
    with pytest.raises(triage.TriageError) as caught:
        triage.parse_update(text)
    assert detail in caught.value.message


def test_server_refuses_a_triage_item_that_is_not_an_envelope(
    two_desks: dict[str, object],
) -> None:
    app, usb = two_desks["app"], Path(str(two_desks["usb"]))
    assert isinstance(app, Flask)
    tokens = two_desks["tokens"]
    assert isinstance(tokens, dict)
    junk = b"TAG " + TAG.encode() * 200
    with (usb / "junk.sync").open("wb") as dst:
        bundles.write_bundle(
            dst,
            bundles.KIND_REPLY,
            [bundles.TriageItem("7" * 32, len(junk))],
            lambda _: io.BytesIO(junk),
        )
    sent = app.test_client().post(
        "/api/journalist/replies",
        data=(usb / "junk.sync").read_bytes(),
        content_type="application/octet-stream",
        headers={"Authorization": f"Bearer {tokens['alice']}"},
    )
    assert sent.status_code == 400 and "not a well-formed envelope" in sent.text, sent.text
    assert holds_clear(Path(str(two_desks["server"])), TAG.encode()) == []


def test_the_inner_kind_triage_is_a_desk_update_only() -> None:
    from tipline.crypto.errors import EnvelopeContentError
    from tipline.crypto.inner import Attachment, Inner, parse_inner

    good = Inner("triage", "desk", "{}")
    assert parse_inner(good.encode()) == good
    for bad in (
        lambda: Inner("triage", "browser", "{}"),
        lambda: Inner("triage", "desk", "{}", None, (Attachment("a", 1),)),
        lambda: Inner("triage", "desk", "{}", b"\x01" * 32),
        lambda: Inner("tirage", "desk", "{}"),
    ):
        with pytest.raises(EnvelopeContentError):
            bad()


@pytest.mark.parametrize(
    ("entry", "detail"),
    [
        ({"id": "a" * 32, "kind": "triage", "size": 1 << 16}, None),  # control: the bound itself
        ({"id": "a" * 32, "kind": "triage", "size": (1 << 16) + 1}, "size"),
        ({"id": "a" * 32, "kind": "tag", "size": 10}, "unknown kind"),
        (
            {"id": "a" * 32, "kind": "triage", "size": 10, "source_id": "b" * 32},
            "unknown source_id",
        ),
        ({"id": "A" * 32, "kind": "triage", "size": 10}, "lowercase hex"),
    ],
)
def test_triage_items_in_bundle_manifests_are_bounded(
    entry: dict[str, object], detail: str | None
) -> None:
    import json

    for kind, name in ((bundles.KIND_REPLY, "reply"), (bundles.KIND_EXPORT, "export")):
        data = json.dumps(
            {"type": f"tipline-{name}-bundle", "v": 1, "created": "2026-11-30", "items": [entry]}
        ).encode()
        if detail is None:
            assert bundles.parse_manifest(kind, data)[1] == [bundles.TriageItem("a" * 32, 1 << 16)]
            continue
        with pytest.raises(bundles.BundleError) as caught:
            bundles.parse_manifest(kind, data)
        assert detail in caught.value.message, caught.value.message


def test_a_bad_reply_beside_a_triage_update_leaves_neither(two_desks: dict[str, object]) -> None:
    app, usb = two_desks["app"], Path(str(two_desks["usb"]))
    assert isinstance(app, Flask)
    tokens = two_desks["tokens"]
    assert isinstance(tokens, dict)
    update = triage.Update(
        "6" * 32, str(two_desks["tip"]), "2026-11-30T09:00:00Z", IDS["alice"], (("star", True),)
    )
    import nacl.public

    good = triage.seal_update(
        update, SEEDS["alice"], [nacl.public.PrivateKey.generate().public_key.encode()]
    )
    source = (
        bundles.BundleReader(io.BytesIO((usb / "e0.tlb").read_bytes()), bundles.KIND_EXPORT)
        .items[0]
        .source_id
    )
    junk = b"not an envelope" * 300
    items: list[bundles.Item] = [
        bundles.TriageItem(update.id, len(good)),
        bundles.ReplyItem("5" * 32, source, len(junk)),
    ]
    with (usb / "mixed.tlb").open("wb") as dst:
        bundles.write_bundle(
            dst,
            bundles.KIND_REPLY,
            items,
            lambda it: io.BytesIO(good if it.id == update.id else junk),
        )
    sent = app.test_client().post(
        "/api/journalist/replies",
        data=(usb / "mixed.tlb").read_bytes(),
        content_type="application/octet-stream",
        headers={"Authorization": f"Bearer {tokens['alice']}"},
    )
    # The triage update was stored before the reply was refused: it is taken back.
    assert sent.status_code == 400 and "not a well-formed envelope" in sent.text, sent.text
    server_dir = Path(str(two_desks["server"]))
    assert [p for p in server_dir.rglob("triage/*") if p.is_file()] == []


def test_a_change_too_large_to_share_is_refused_before_it_is_kept() -> None:
    from tipline.desk.errors import UsageError

    store = _store_with_item("a" * 32)
    big = "\U0001f600" * 9000  # 9,000 characters, 36,000 bytes of UTF-8
    before = _snapshot(store)
    with pytest.raises(UsageError):
        triage.record(store, "a" * 32, [("note", big)], IDS["alice"])
    assert _snapshot(store) == before
    # Control: a note just within the bound is kept, and signed and sealed to a full manifest's
    # 32 keys it stays below the bundle's item bound.
    update = triage.record(store, "a" * 32, [("note", "\U0001f600" * 8100)], IDS["alice"])
    assert len(update.encode().encode()) > triage.MAX_UPDATE_JSON - 500
    import nacl.public

    recipients = [nacl.public.PrivateKey.generate().public_key.encode() for _ in range(32)]
    sealed = triage.seal_update(update, SEEDS["alice"], recipients)
    assert len(sealed) <= bundles.MAX_TRIAGE_UPDATE


def test_a_desk_whose_key_cannot_sign_writes_no_update(two_desks: dict[str, object]) -> None:
    """A key made before signed updates (no signing seed kept) cannot sign: `sync --out` says
    so in one line and writes nothing; the pending change stays. Control: with the seed back,
    the same command writes it."""
    alice, usb, tip = (
        Path(str(two_desks["alice"])),
        Path(str(two_desks["usb"])),
        str(two_desks["tip"]),
    )
    run(alice, "star", tip[:8])
    key_id, seed = own_key(alice)
    with Vault.open(alice, PASS) as opened:
        opened.keyring.drop_signing([key_id])
        opened.save_keyring()
    refused = run(alice, "sync", "--out", str(usb / "none.tlb"), code=2)
    assert "no key of this desk can sign triage updates" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not (usb / "none.tlb").exists()
    with Vault.open(alice, PASS) as opened:
        (n,) = [i for i, r in enumerate(opened.keyring.recipients) if r.key_id == key_id]
        opened.keyring.recipients[n] = dataclasses.replace(
            opened.keyring.recipients[n], signing_seed=seed
        )
        opened.save_keyring()
    assert "wrote 1 triage updates" in run(alice, "sync", "--out", str(usb / "one.tlb")).stdout


def test_the_keyring_keeps_signing_seeds_and_checks_them() -> None:
    """A key added on a desk is derived from its Ed25519 seed and keeps it; a keyring from before
    seeds loads (no seed); a seed that is not the key's is refused as damage."""
    from tipline.desk.errors import VaultDamagedError
    from tipline.desk.keyring import Keyring

    ring = Keyring()
    entry = ring.add("Alice Reporter", datetime.date(2026, 11, 30), "alice")
    assert entry.signing_seed is not None and entry.secret is not None
    assert key_id_of(entry.signing_seed) == entry.key_id
    again = Keyring.from_json(ring.to_json())
    assert again.recipients[0].signing_seed == entry.signing_seed  # control: it round-trips
    doc = json.loads(ring.to_json())
    del doc["recipients"][0]["signing_seed"]
    assert Keyring.from_json(json.dumps(doc).encode()).recipients[0].signing_seed is None
    doc["recipients"][0]["signing_seed"] = b64e(SEEDS["bob"])
    with pytest.raises(VaultDamagedError):
        Keyring.from_json(json.dumps(doc).encode())
    # Retiring drops the seed: a retired key signs nothing more.
    ring.add("Alice Reporter", datetime.date(2026, 11, 30), "alice")
    assert ring.retire(entry.key_id, datetime.date(2026, 12, 1)).signing_seed is None
