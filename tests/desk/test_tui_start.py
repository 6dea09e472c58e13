"""Starting the TUI as `tipline-desk tui` does (tipline/desk/tui/start.py), and the inbox's
first page at scale: the paths bench/desk.py times against the 1 s goal."""

from __future__ import annotations

import asyncio
import io
import random
import threading
from pathlib import Path

import pytest
from textual.widgets import OptionList

from tipline.crypto.errors import LockedSecretError
from tipline.desk.importer import import_bundle
from tipline.desk.tui.start import open_view
from tipline.desk.vault import Vault

from .conftest import PASS, bundle_bytes, make_source, public_keys, submission


def test_open_view_draws_the_inbox_of_the_vault(vault_dir: Path) -> None:
    pks = public_keys(vault_dir)
    otter = make_source("tidy otter")
    made = [submission(pks, otter, f"message {n}", received=f"2026-11-2{n}") for n in range(3)]
    with Vault.open(vault_dir, PASS) as vault:
        assert import_bundle(vault, io.BytesIO(bundle_bytes(made))).ok

    async def main() -> list[str]:
        app = open_view(vault_dir, PASS)
        with app.vault:
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.pause()
                inbox = app.query_one("#inbox", OptionList)
                return [str(inbox.get_option_at_index(n).id) for n in range(inbox.option_count)]

    ids = asyncio.run(main())
    # One source heading, then its items oldest first (grouped as `list` groups them).
    assert ids == [f"source:{otter.id}", *(s.item.id for s in made)]
    with Vault.open(vault_dir, PASS):  # closed again: the lock was released
        pass


def test_open_view_wrong_passphrase_leaves_nothing_running(vault_dir: Path) -> None:
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(LockedSecretError):
        open_view(vault_dir, "not the passphrase")
    assert "tipline-load-view" not in {t.name for t in threading.enumerate()}
    assert {t.name for t in threading.enumerate()} <= before
    app = open_view(vault_dir, PASS)  # control: the right one opens it, the lock was free
    app.vault.close()


def test_first_page_is_the_newest_items_in_order(vault_dir: Path) -> None:
    """The inbox's query picks the newest ``limit`` items before reading their rows; the same
    items, in the same order, as sorting every whole row (what it did before), with filters."""
    rng = random.Random(5)
    with Vault.open(vault_dir, PASS) as vault:
        store = vault.store
        for n in range(300):
            item_id = f"{n:032x}"
            store.add_item(
                item_id=item_id,
                source_id=f"{n % 7:032x}",
                designation=f"source {n % 7}",
                reply_public_key=bytes(32),
                direction="in",
                received=f"2026-{1 + rng.randrange(12):02d}-{1 + rng.randrange(28):02d}",
                imported="2026-11-25",
                size=1,
                digest=bytes(32),
                sealed_by="browser",
                message=("harbour " if n % 3 else "ledger ") + str(n),
                attachments=[],
            )
            if n % 5 == 0:
                store.set_status(item_id, "done")
        every = store.db.execute(
            "SELECT id, status, seq, received FROM items ORDER BY received DESC, seq DESC"
        ).fetchall()
        for kwargs, keep in (
            ({}, lambda r: True),
            ({"status": "done"}, lambda r: r[1] == "done"),
            ({"text": "ledger"}, lambda r: int(r[0], 16) % 3 == 0),
        ):
            threads, total = store.query(limit=40, **kwargs)
            expected = [r[0] for r in every if keep(r)]
            got = {i.id for t in threads for i in t.items}
            assert got == set(expected[:40]), kwargs
            assert total == len(expected)
            # Threads come newest first: each one's newest item, in order.
            newest = [max(t.items, key=lambda i: (i.received, int(i.id, 16))).id for t in threads]
            assert newest == [i for i in expected[:40] if i in set(newest)]


def on_disk_status(vault: Vault, item_id: str) -> str:
    """The item's status in the triage file as saved (not the open database)."""
    from tipline.desk import sealed
    from tipline.desk.store import Store
    from tipline.desk.vault import MAX_TRIAGE

    data = sealed.unseal_file(vault._key, "triage", vault.triage_file, MAX_TRIAGE)
    return Store(data).get(item_id).status


@pytest.mark.parametrize("how", ["wait", "quit"])
def test_read_marks_are_saved_a_moment_later_or_on_quit(
    vault_dir: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    from tipline.desk.tui import app as tui_app

    # Far beyond the test while it looks at the first draw, whatever the machine's load.
    monkeypatch.setattr(tui_app, "READ_SAVE_DELAY", 600.0)
    pks = public_keys(vault_dir)
    otter = make_source("tidy otter")
    made = [submission(pks, otter, f"message {n}", received=f"2026-11-2{n}") for n in range(3)]
    with Vault.open(vault_dir, PASS) as vault:
        assert import_bundle(vault, io.BytesIO(bundle_bytes(made))).ok
    seen: dict[str, str] = {}

    async def main() -> None:
        app = open_view(vault_dir, PASS)
        with app.vault:
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.pause()
                # Drawn, and the item highlighted first is read in the open database...
                assert app.current is not None
                first = app.current.id
                seen["memory"] = app.vault.store.get(first).status
                # ...but not yet saved: the draw did not wait for a save (control: it would
                # read "read" had show_item saved at once, as it did before).
                seen["drawn"] = on_disk_status(app.vault, first)
                if how == "wait":
                    # The next mark waits a short moment, then both are saved together.
                    assert app.save_timer is not None
                    app.save_timer.stop()
                    app.save_timer = None
                    monkeypatch.setattr(tui_app, "READ_SAVE_DELAY", 0.2)
                    await pilot.press("down")
                    await pilot.pause()
                    assert app.current is not None and app.current.id != first
                    second = app.current.id
                    await pilot.pause(1.0)
                    seen["later"] = on_disk_status(app.vault, first)
                    seen["second later"] = on_disk_status(app.vault, second)
                else:
                    await pilot.press("q")
            seen["after"] = on_disk_status(app.vault, first)

    asyncio.run(main())
    assert seen["memory"] == "read" and seen["drawn"] == "new", seen
    assert seen["after"] == "read"
    if how == "wait":
        assert seen["later"] == seen["second later"] == "read"
