"""The TUI, driven through Textual's pilot on a real vault."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import OptionList, Static

from tipline.desk.importer import import_bundle
from tipline.desk.tui.app import DeskApp, make_app
from tipline.desk.tui.dialogs import Composer, Confirm
from tipline.desk.vault import Vault

from .conftest import PASS, Sub, bundle_bytes, make_source, public_keys, submission

HOSTILE = "hello\x1b[2J\x1b]0;owned\x07[bold red]markup[/] \u202eexe.txt"


@pytest.fixture
def subs(vault_dir: Path) -> list[Sub]:
    pks = public_keys(vault_dir)
    otter, heron = make_source("tidy otter"), make_source("grey heron")
    made = [
        submission(pks, otter, HOSTILE, [("../../x.pdf", b"PDF")], received="2026-11-20"),
        submission(pks, otter, "second from the otter", received="2026-11-21"),
        submission(pks, heron, "the heron writes about the harbour", received="2026-11-22"),
    ]
    with Vault.open(vault_dir, PASS) as vault:
        import_bundle(vault, io.BytesIO(bundle_bytes(made)))
    return made


def drive(vault_dir: Path, script: Callable[[DeskApp, Pilot[None]], Awaitable[None]],
          out: Path | None = None) -> None:
    async def main() -> None:
        with Vault.open(vault_dir, PASS) as vault:
            app = make_app(vault, out)
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.pause()
                await script(app, pilot)

    asyncio.run(main())


def body(app: DeskApp) -> str:
    return str(app.query_one("#body", Static).visual)


def inbox_ids(app: DeskApp) -> list[str | None]:
    return [o.id for o in app.query_one("#inbox", OptionList).options]


def test_inbox_groups_by_source_and_neutralises(vault_dir: Path, subs: list[Sub]) -> None:
    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        ids = inbox_ids(app)
        heron, otter = [i for i in ids if i and i.startswith("source:")]
        assert ids.index(heron) < ids.index(subs[2].item.id) < ids.index(otter)
        assert ids.index(otter) < ids.index(subs[0].item.id)
        assert ids.index(otter) < ids.index(subs[1].item.id)
        # highlight the hostile item
        inbox = app.query_one("#inbox", OptionList)
        inbox.highlighted = ids.index(subs[0].item.id)
        await pilot.pause()
        shown = body(app)
        assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
        assert "\\x1b[2J" in shown and "[bold red]markup[/]" in shown  # shown, not obeyed
        assert "not opened; press e to export" in shown and "x.pdf" in shown
        screen = app.export_screenshot()  # what the terminal really shows
        assert "tidy" in screen and "grey" in screen and "\x1b" not in screen
        assert "owned" in screen and "markup" in screen
        assert app.vault.store.get(subs[0].item.id).status == "read"

    drive(vault_dir, script)


def test_keyboard_triage(vault_dir: Path, subs: list[Sub]) -> None:
    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        inbox = app.query_one("#inbox", OptionList)
        inbox.highlighted = inbox_ids(app).index(subs[1].item.id)
        await pilot.pause()
        await pilot.press("s", "3", "t")
        await pilot.press(*"leads", "enter")
        await pilot.press("n")
        await pilot.press(*"ring back", "enter")
        await pilot.pause()
        item = app.vault.store.get(subs[1].item.id)
        assert item.starred and item.status == "follow-up" and item.tags == ("leads",)
        assert "Note: ring back" in body(app)
        # the filter: starred only
        for _ in range(5):
            await pilot.press("f")
        await pilot.pause()
        assert [i for i in inbox_ids(app) if i and not i.startswith("source:")] == [
            subs[1].item.id]
        await pilot.press("f")  # back to all
        await pilot.press("slash", *"#leads", "enter")
        await pilot.pause()
        assert [i for i in inbox_ids(app) if i and not i.startswith("source:")] == [
            subs[1].item.id]
        await pilot.press("slash", *(["backspace"] * 6), *"harbour", "enter")
        await pilot.pause()
        assert [i for i in inbox_ids(app) if i and not i.startswith("source:")] == [
            subs[2].item.id]

    drive(vault_dir, script)
    with Vault.open(vault_dir, PASS) as vault:  # saved, sealed, and back after a restart
        assert vault.store.get(subs[1].item.id).tags == ("leads",)


def test_export_asks_and_escape_means_no(vault_dir: Path, subs: list[Sub],
                                         tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()

    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        inbox = app.query_one("#inbox", OptionList)
        inbox.highlighted = inbox_ids(app).index(subs[0].item.id)
        await pilot.pause()
        await pilot.press("e", "enter")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        await pilot.press("escape")
        await pilot.pause()
        assert list(out.iterdir()) == []
        await pilot.press("e", "enter", "y")
        await pilot.pause()
        assert [p.name for p in out.iterdir()] == [f"{subs[0].item.id[:8]}-01-x.pdf"]

    drive(vault_dir, script, out)


def test_reply_composer_and_delete(vault_dir: Path, subs: list[Sub], tmp_path: Path) -> None:
    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        inbox = app.query_one("#inbox", OptionList)
        inbox.highlighted = inbox_ids(app).index(subs[2].item.id)
        await pilot.pause()
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, Composer)
        await pilot.press(*"thanks heron", "ctrl+s")
        await pilot.pause()
        bundles = list(tmp_path.glob("reply-*.tlb"))
        assert len(bundles) == 1
        assert sum(1 for i in inbox_ids(app) if i and not i.startswith("source:")) == 4
        inbox.highlighted = inbox_ids(app).index(subs[2].item.id)
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.vault.store.has_item(subs[2].item.id)
        await pilot.press("d", "y")
        await pilot.pause()
        assert not app.vault.store.has_item(subs[2].item.id)

    drive(vault_dir, script, tmp_path)


def status_line(app: DeskApp) -> str:
    return str(app.query_one("#status", Static).visual)


def test_admin_menu_imports_signs_and_verifies(vault_dir: Path, tmp_path: Path) -> None:
    import base64
    import json

    from tipline.crypto.manifest import verify_manifest
    from tipline.desk.tui.actions import ActionMenu, run_action
    from tipline.desk.tui.dialogs import Prompt
    from tipline.desk.vault import today

    pks = public_keys(vault_dir)
    sub = submission(pks, make_source("tidy otter"), "via the menu")
    (tmp_path / "b.tlb").write_bytes(bundle_bytes([sub]))

    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        assert inbox_ids(app) == []
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ActionMenu)
        await pilot.press("enter")  # the first action: import
        await pilot.pause()
        assert isinstance(app.screen, Prompt)
        await pilot.press(*"b.tlb", "enter")
        await pilot.pause()
        assert "imported 1 new, 0 already in the vault" in status_line(app)
        assert sub.item.id in inbox_ids(app)
        run_action(app, "org-create")
        await pilot.press("y")
        await pilot.pause()
        assert "org key fingerprint" in status_line(app)
        run_action(app, "org-export")
        await pilot.press(*"org.json", "enter")
        run_action(app, "manifest")
        await pilot.press(*"manifest.json", "enter")
        await pilot.pause()
        assert "signed manifest version 1 with 1 keys" in status_line(app)
        run_action(app, "add-key")
        await pilot.press(*"Bob Editor", "enter")
        await pilot.pause()
        run_action(app, "keys")
        await pilot.pause()
        assert "Bob Editor" in body(app) and "active" in body(app)
        run_action(app, "retire")
        await pilot.press(*"bob editor", "enter")
        await pilot.pause()
        await pilot.press("escape")  # the confirmation: no
        await pilot.pause()
        assert len(app.vault.keyring.active()) == 2
        run_action(app, "verify")
        await pilot.pause()
        assert "checked 1 items: all good" in status_line(app)
        run_action(app, "backup")
        await pilot.press(*"backup.tar", "enter")
        await pilot.pause()
        assert "backed up 1 items" in status_line(app)

    drive(vault_dir, script, tmp_path)
    org = base64.b64decode(json.loads((tmp_path / "org.json").read_text())["public_key"])
    signed = verify_manifest((tmp_path / "manifest.json").read_bytes(), org, today(), 0)
    assert signed.manifest.version == 1
    assert (tmp_path / "backup.tar").stat().st_size > 0
