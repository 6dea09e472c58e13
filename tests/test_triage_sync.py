"""Shared triage between two journalist desks through one server, sealed (docs/DESK.md §4.1).

Alice and Bob enrol by request on their own vaults (as in tests/test_desks.py). Both import the
same tip; Alice tags it and sets its status, Bob notes it and sets its status later. Each syncs
(a reply bundle of sealed triage updates), uploads, downloads the next export and imports it:
both desks then show Alice's tag, Bob's note and Bob's status (the later), with its writer. The
server's files and database never hold the tag in clear (a planted clear copy is found: the scan
works). Replays, reorders, unknown writers and unknown items each give a one-line outcome and
change nothing.
"""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path

import pytest
from flask import Flask

from tipline import bundle as bundles
from tipline.crypto import keys
from tipline.crypto.encoding import b64e
from tipline.desk import triage
from tipline.desk.store import Store
from tipline.server import create_app

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
        run(vault, "keys", "request", "--account", who, "--label", label,
            "--out", str(usb / f"{who}.request"))
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
    first = app.test_client().post("/api/journalist/export", json={"new": True},
                                   headers={"Authorization": f"Bearer {tokens['bob']}"})
    assert first.status_code == 200
    (usb / "e0.tlb").write_bytes(first.data)
    tip = bundles.BundleReader(io.BytesIO(first.data), bundles.KIND_EXPORT).items[0].id
    hold, _write = documented()
    assert hold == ["sync", "--manifest", "/media/usb/manifest.json"]
    (usb / "manifest.json").write_bytes((usb / "m.json").read_bytes())
    for vault in (alice, bob):
        run(vault, "import", str(usb / "e0.tlb"))
        assert "holding key manifest version" in run(vault, *as_written(hold, usb)).stdout
    return {"alice": alice, "bob": bob, "signer": signer, "usb": usb, "app": app,
            "tokens": tokens, "tip": tip, "server": tmp_path / "server"}


def test_two_desks_converge_and_the_server_sees_only_ciphertext(
    two_desks: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob, usb = Path(str(two_desks["alice"])), Path(str(two_desks["bob"])), Path(
        str(two_desks["usb"]))
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
            assert any("older than this desk's status: nothing changed" in line
                       for line in lines), lines

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
    run(carol, "keys", "request", "--account", "carol", "--label", "Carol",
        "--out", str(usb / "carol.request"))
    run(carol, "import", str(usb / "e0.tlb"), code=1)  # not sealed to Carol: reported
    run(carol, "sync", "--manifest", str(usb / "m.json"))
    # Carol's desk holds no copy of the tip, so she writes the update by hand for its id.
    from tipline.desk.vault import Vault

    with Vault.open(carol, PASS) as vault:
        writer = vault.keyring.active()[0].key_id
        manifest = triage.held_manifest(vault.store, vault.keyring.org_public,
                                        __import__("datetime").date.today())
        assert manifest is not None
        forged = triage.Update("c" * 32, tip, "2026-11-30T10:00:00Z", writer,
                               (("status", "new"),))
        data = triage.seal_update(forged, [r.public_key for r in manifest.recipients])
    with (usb / "carol.sync").open("wb") as dst:
        bundles.write_bundle(dst, bundles.KIND_REPLY, [bundles.TriageItem(forged.id, len(data))],
                             lambda _: io.BytesIO(data))
    upload(app, tokens["alice"], usb / "carol.sync")
    got = run(bob, "import", str(export_ids(app, tokens["bob"], [tip], usb / "b2.tlb"))).stdout
    assert f"written by key {writer[:8]}, not an active key of the manifest" in got, got
    assert "status done" in run(bob, "show", tip[:8]).stdout


def _snapshot(store: Store) -> list[object]:
    db = store.db
    return [
        db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
        for t in ("items", "tags", "notes", "triage_clock", "triage_seen", "triage_pending")
    ]


def _store_with_item(item: str) -> Store:
    store = Store()
    store.add_item(item_id=item, source_id="5" * 32, designation="tidy otter",
                   reply_public_key=b"\x01" * 32, direction="in", received="2026-11-30",
                   imported="2026-11-30", size=100, digest=b"\x00" * 32, sealed_by="browser",
                   message="hello", attachments=[])
    return store


def test_bad_updates_each_say_one_line_and_change_nothing() -> None:
    item, alice, bob = "a" * 32, "1" * 32, "2" * 32
    writers, names = frozenset({alice, bob}), {alice: "alice 11111111", bob: "bob 22222222"}
    store = _store_with_item(item)
    newer = triage.Update("b" * 32, item, "2026-11-30T09:05:00Z", bob, (("status", "done"),))
    older = triage.Update("d" * 32, item, "2026-11-30T09:00:00Z", alice, (("status", "read"),))
    assert "applied status" in triage.apply(store, newer, writers, names)

    cases = {
        "replayed": (newer, "already applied (replayed): nothing changed"),
        "reordered": (older, "older than this desk's status: nothing changed"),
        "unknown key": (
            triage.Update("e" * 32, item, "2026-11-30T10:00:00Z", "3" * 32, (("star", True),)),
            "not an active key of the manifest this desk holds: nothing changed",
        ),
        "retired key": (  # alice's key, once the held manifest no longer lists it
            triage.Update("f" * 32, item, "2026-11-30T10:00:00Z", alice, (("star", True),)),
            "not an active key of the manifest this desk holds: nothing changed",
        ),
        "unknown item": (
            triage.Update("9" * 32, "8" * 32, "2026-11-30T10:00:00Z", bob, (("star", True),)),
            "not on this desk: nothing changed",
        ),
    }
    for name, (update, expected) in cases.items():
        before = _snapshot(store)
        allowed = frozenset({bob}) if name == "retired key" else writers
        outcome = triage.apply(store, update, allowed, names)
        assert expected in outcome and "\n" not in outcome, (name, outcome)
        assert _snapshot(store) == before, name
    assert store.get(item).status == "done"
    # Control: the same "retired key" update from an active writer does change the item.
    control = cases["retired key"][0]
    assert "applied star" in triage.apply(store, control, writers, names)
    assert store.get(item).starred


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ('{"type":"tipline-triage","v":2}', "version"),
        ('{"type":"tipline-triage","v":1,"id":"00","item":"x","date":"d","writer":"w",'
         '"changes":[]}', "32 lowercase hex"),
        ('{"type":"tipline-triage","v":1,"id":"' + "a" * 32 + '","item":"' + "b" * 32
         + '","date":"2026-11-30 09:00","writer":"' + "c" * 32 + '","changes":[["status","x"]]}',
         "date"),
        ('{"type":"tipline-triage","v":1,"id":"' + "a" * 32 + '","item":"' + "b" * 32
         + '","date":"2026-11-30T09:00:00Z","writer":"' + "c" * 32
         + '","changes":[["status","gone"]]}', "a change is not valid"),
        ('{"type":"tipline-triage","v":1,"id":"' + "a" * 32 + '","item":"' + "b" * 32
         + '","date":"2026-11-30T09:00:00Z","writer":"' + "c" * 32
         + '","changes":[["star",true],["star",false]]}', "one field twice"),
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
        bundles.write_bundle(dst, bundles.KIND_REPLY, [bundles.TriageItem("7" * 32, len(junk))],
                             lambda _: io.BytesIO(junk))
    sent = app.test_client().post(
        "/api/journalist/replies", data=(usb / "junk.sync").read_bytes(),
        content_type="application/octet-stream",
        headers={"Authorization": f"Bearer {tokens['alice']}"})
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
        ({"id": "a" * 32, "kind": "triage", "size": 10, "source_id": "b" * 32},
         "unknown source_id"),
        ({"id": "A" * 32, "kind": "triage", "size": 10}, "lowercase hex"),
    ],
)
def test_triage_items_in_bundle_manifests_are_bounded(
    entry: dict[str, object], detail: str | None
) -> None:
    import json

    for kind, name in ((bundles.KIND_REPLY, "reply"), (bundles.KIND_EXPORT, "export")):
        data = json.dumps({"type": f"tipline-{name}-bundle", "v": 1, "created": "2026-11-30",
                           "items": [entry]}).encode()
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
    update = triage.Update("6" * 32, str(two_desks["tip"]), "2026-11-30T09:00:00Z", "1" * 32,
                           (("star", True),))
    import nacl.public

    good = triage.seal_update(update, [nacl.public.PrivateKey.generate().public_key.encode()])
    source = bundles.BundleReader(io.BytesIO((usb / "e0.tlb").read_bytes()),
                                  bundles.KIND_EXPORT).items[0].source_id
    junk = b"not an envelope" * 300
    items: list[bundles.Item] = [bundles.TriageItem(update.id, len(good)),
                                 bundles.ReplyItem("5" * 32, source, len(junk))]
    with (usb / "mixed.tlb").open("wb") as dst:
        bundles.write_bundle(dst, bundles.KIND_REPLY, items,
                             lambda it: io.BytesIO(good if it.id == update.id else junk))
    sent = app.test_client().post(
        "/api/journalist/replies", data=(usb / "mixed.tlb").read_bytes(),
        content_type="application/octet-stream",
        headers={"Authorization": f"Bearer {tokens['alice']}"})
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
        triage.record(store, "a" * 32, [("note", big)], "1" * 32)
    assert _snapshot(store) == before
    # Control: a note within the bound is kept and seals below the bundle's item bound.
    update = triage.record(store, "a" * 32, [("note", "\U0001f600" * 7000)], "1" * 32)
    import nacl.public

    sealed = triage.seal_update(update, [nacl.public.PrivateKey.generate().public_key.encode()])
    assert len(sealed) <= bundles.MAX_TRIAGE_UPDATE
