"""The server's side of shared triage (docs/SPEC.md §8.5): per-account delivery and expiry.

A journalist's export carries only the triage updates not yet delivered to that account; an
export that marks what it carries marks them delivered, one that does not (``mark_downloaded:
false``) marks nothing. Another account still gets them (the control: delivery is per account).
The retention run deletes updates older than ``TRIAGE_MAX_DAYS`` (rows, marks and blobs), and not
a day sooner (the control). The sweep removes a triage blob without its row, and leaves one with
its row (the control).
"""

from __future__ import annotations

import datetime
import io
import time
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tipline import bundle as bundles
from tipline.desk import triage
from tipline.server import db, retention, sweeper
from tipline.server.cli import cli as server
from tipline.server.models import TriageDelivery, TriageUpdate, today

from .test_desks import run, submit
from .test_triage_sync import manifest_keys, own_key, send, upload
from .test_triage_sync import two_desks as two_desks


def carried(app: Flask, token: str, mark: bool) -> list[str]:
    """The triage update ids of an export of everything new for this account (nothing but
    triage updates: the one tip was exported in the fixture); none if the answer is 404."""
    got = app.test_client().post(
        "/api/journalist/export",
        json={"new": True, "mark_downloaded": mark},
        headers={"Authorization": f"Bearer {token}"},
    )
    if got.status_code == 404:
        assert "nothing new" in got.text
        return []
    assert got.status_code == 200, got.text
    reader = bundles.BundleReader(io.BytesIO(got.data), bundles.KIND_EXPORT)
    ids = [i.id for i in reader.items if isinstance(i, bundles.TriageItem)]
    for _entry in reader:  # read to the end: the checksums hold
        pass
    return ids


def upload_one(desks: dict[str, object], update_id: str) -> None:
    alice, usb, tip = Path(str(desks["alice"])), Path(str(desks["usb"])), str(desks["tip"])
    app, tokens = desks["app"], desks["tokens"]
    assert isinstance(app, Flask) and isinstance(tokens, dict)
    writer, seed = own_key(alice)
    update = triage.Update(update_id, tip, "2026-11-30T09:00:00Z", writer, (("star", True),))
    sealed = triage.seal_update(update, seed, manifest_keys(usb / "m.json"))
    send(app, tokens["alice"], usb / f"{update_id[:4]}.tlb", {update.id: sealed})


def test_an_export_carries_only_updates_not_yet_delivered_to_its_account(
    two_desks: dict[str, object],
) -> None:
    app, tokens = two_desks["app"], two_desks["tokens"]
    assert isinstance(app, Flask) and isinstance(tokens, dict)
    upload_one(two_desks, "a" * 32)
    # An export that marks nothing delivers nothing: the next one carries it again.
    assert carried(app, tokens["bob"], mark=False) == ["a" * 32]
    assert carried(app, tokens["bob"], mark=True) == ["a" * 32]
    assert carried(app, tokens["bob"], mark=True) == []
    # Control: delivery is per account; Alice (the writer too) still gets it once.
    assert carried(app, tokens["alice"], mark=True) == ["a" * 32]
    assert carried(app, tokens["alice"], mark=True) == []
    # A new update reaches Bob, and only it.
    upload_one(two_desks, "b" * 32)
    assert carried(app, tokens["bob"], mark=True) == ["b" * 32]
    with app.app_context():
        marks = {(d.account_id, d.update_id) for d in db.session().scalars(select(TriageDelivery))}
    assert len(marks) == 3


def test_retention_deletes_triage_updates_older_than_the_configured_days(
    two_desks: dict[str, object],
) -> None:
    app, tokens = two_desks["app"], two_desks["tokens"]
    assert isinstance(app, Flask) and isinstance(tokens, dict)
    server_dir = Path(str(two_desks["server"]))
    upload_one(two_desks, "c" * 32)
    assert carried(app, tokens["bob"], mark=True) == ["c" * 32]  # a delivery mark to go too
    blobs = app.extensions["tipline.blobs"]
    stored = today()
    with app.app_context():
        session = db.session()
        # Control: on its 30th day under a 30-day limit it stays.
        swept = retention.run(session, blobs, stored + datetime.timedelta(days=30), 30)
        assert swept.triage == 0 and session.get(TriageUpdate, "c" * 32) is not None
        # 0 keeps them for good.
        assert retention.run(session, blobs, stored + datetime.timedelta(days=3650), 0).triage == 0
        swept = retention.run(session, blobs, stored + datetime.timedelta(days=31), 30)
        assert swept.triage == 1
        assert session.get(TriageUpdate, "c" * 32) is None
        assert list(session.scalars(select(TriageDelivery))) == []
    assert [p for p in server_dir.rglob("triage/*") if p.is_file()] == []
    assert carried(app, tokens["alice"], mark=False) == []


def test_the_retention_command_reads_triage_max_days(two_desks: dict[str, object]) -> None:
    from click.testing import CliRunner

    app = two_desks["app"]
    assert isinstance(app, Flask)
    upload_one(two_desks, "d" * 32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIPLINE_TRIAGE_MAX_DAYS", "-1")
        refused = CliRunner().invoke(server, ["retention"])
    assert refused.exit_code != 0
    assert "TIPLINE_TRIAGE_MAX_DAYS must be a whole number" in str(refused.output) + str(
        refused.exception
    )
    done = CliRunner().invoke(server, ["retention"])
    assert done.exit_code == 0, done.output
    assert "0 triage updates" in done.stderr  # stored today: kept under the 90-day default
    with app.app_context():
        assert db.session().get(TriageUpdate, "d" * 32) is not None


def test_the_sweep_removes_a_triage_blob_without_its_row(two_desks: dict[str, object]) -> None:
    app = two_desks["app"]
    assert isinstance(app, Flask)
    upload_one(two_desks, "e" * 32)
    server_dir = Path(str(two_desks["server"]))
    (kept,) = [p for p in server_dir.rglob("triage/*") if p.is_file()]
    orphan = kept.parent / ("f" * 32)
    orphan.write_bytes(kept.read_bytes())
    with app.app_context():  # an hour on: both are past the grace (ages are ctimes)
        swept = sweeper.run(
            db.session(), app.extensions["tipline.blobs"], grace=60, now=time.time() + 3600
        )
    assert swept.blobs == 1
    assert not orphan.exists() and kept.exists()


def test_an_update_delivered_before_its_item_applies_when_the_item_arrives(
    two_desks: dict[str, object],
) -> None:
    """Delivered once: Bob's desk gets Alice's tag on a second tip before the tip itself; it
    keeps the update and applies it when the next export brings the tip (which carries no
    triage update: it was delivered already)."""
    alice, bob, usb = (Path(str(two_desks[k])) for k in ("alice", "bob", "usb"))
    app, tokens, tip = two_desks["app"], two_desks["tokens"], str(two_desks["tip"])
    assert isinstance(app, Flask) and isinstance(tokens, dict)
    submit(app, "Tip two: the customs forms")
    got = app.test_client().post(
        "/api/journalist/export",
        json={"new": True},
        headers={"Authorization": f"Bearer {tokens['alice']}"},
    )
    (usb / "a-new.tlb").write_bytes(got.data)
    run(alice, "import", str(usb / "a-new.tlb"))
    second = [
        i.id
        for i in bundles.BundleReader(io.BytesIO(got.data), bundles.KIND_EXPORT).items
        if isinstance(i, bundles.ExportItem) and i.id != tip
    ]
    assert len(second) == 1
    run(alice, "tag", second[0][:8], "customs")
    run(alice, "sync", "--out", str(usb / "a.tlb"))
    upload(app, tokens["alice"], usb / "a.tlb")

    # Bob exports only the first tip (marking): the update comes, its item does not.
    got = app.test_client().post(
        "/api/journalist/export",
        json={"ids": [tip]},
        headers={"Authorization": f"Bearer {tokens['bob']}"},
    )
    (usb / "b1.tlb").write_bytes(got.data)
    out = run(bob, "import", str(usb / "b1.tlb")).stdout
    assert "not on this desk (kept until an import brings it): nothing changed" in out, out
    assert "customs" not in run(bob, "list").stdout

    # The next export brings the tip and no triage update; the kept one applies.
    assert carried(app, tokens["bob"], mark=False) == []
    got = app.test_client().post(
        "/api/journalist/export",
        json={"new": True},
        headers={"Authorization": f"Bearer {tokens['bob']}"},
    )
    (usb / "b2.tlb").write_bytes(got.data)
    out = run(bob, "import", str(usb / "b2.tlb")).stdout
    assert "applied tag:customs (kept from before)" in out, out
    assert "customs" in run(bob, "show", second[0][:8]).stdout
