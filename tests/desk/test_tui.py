"""The TUI, driven through Textual's pilot on a real vault."""

from __future__ import annotations

import asyncio
import hashlib
import html
import io
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from nacl.public import PrivateKey
from textual.pilot import Pilot
from textual.widgets import Label, OptionList, ProgressBar, Static

from tipline.desk.importer import import_bundle
from tipline.desk.tui.actions import run_action
from tipline.desk.tui.app import DeskApp, make_app
from tipline.desk.tui.dialogs import Composer, Confirm, Notice
from tipline.desk.tui.exporting import ChooseCopy
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


def drive(
    vault_dir: Path,
    script: Callable[[DeskApp, Pilot[None]], Awaitable[None]],
    out: Path | None = None,
) -> None:
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
        assert [i for i in inbox_ids(app) if i and not i.startswith("source:")] == [subs[1].item.id]
        await pilot.press("f")  # back to all
        await pilot.press("slash", *"#leads", "enter")
        await pilot.pause()
        assert [i for i in inbox_ids(app) if i and not i.startswith("source:")] == [subs[1].item.id]
        await pilot.press("slash", *(["backspace"] * 6), *"harbour", "enter")
        await pilot.pause()
        assert [i for i in inbox_ids(app) if i and not i.startswith("source:")] == [subs[2].item.id]

    drive(vault_dir, script)
    with Vault.open(vault_dir, PASS) as vault:  # saved, sealed, and back after a restart
        assert vault.store.get(subs[1].item.id).tags == ("leads",)


async def exported(app: DeskApp, pilot: Pilot[None]) -> None:
    """Wait for the export worker to end."""
    for _ in range(600):
        await pilot.pause(0.1)
        if app.export_job is None:
            return
    raise AssertionError("the export did not end")


def test_export_asks_and_escape_means_no(vault_dir: Path, subs: list[Sub], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()

    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        inbox = app.query_one("#inbox", OptionList)
        inbox.highlighted = inbox_ids(app).index(subs[0].item.id)
        await pilot.pause()
        await pilot.press("e", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ChooseCopy)
        await pilot.press("enter")  # the viewing copy is the one highlighted
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        await pilot.press("escape")
        await pilot.pause()
        assert list(out.iterdir()) == []
        await pilot.press("e", "enter", "enter", "y")
        await exported(app, pilot)
        prefix = subs[0].item.id[:8]
        assert sorted(p.name for p in out.iterdir()) == [
            f"{prefix}-01-x.viewing.txt",
            f"{prefix}-01-x.viewing.txt.provenance.json",
        ]
        assert status_line(app) == "wrote 1 of 1 copies"
        assert isinstance(app.screen, Notice)  # what was written, with the fingerprints
        assert hashlib.sha256(b"PDF").hexdigest() in screen_text(app)

    drive(vault_dir, script, out)


def test_export_shows_pages_and_can_be_cancelled(
    vault_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tipline.desk.safe.converter import ConverterConfig
    from tipline.desk.safe.own import SandboxConverter
    from tipline.desk.tui import exporting

    from .safe import samples

    pks = public_keys(vault_dir)
    sub = submission(
        pks, make_source(), "three pages", [("three.pdf", samples.plain_pdf(3), "application/pdf")]
    )
    with Vault.open(vault_dir, PASS) as vault:
        import_bundle(vault, io.BytesIO(bundle_bytes([sub])))
    out = tmp_path / "out"
    out.mkdir()
    steps: list[tuple[int, int]] = []
    shown = exporting.show_progress

    def spy(app: DeskApp, step: exporting.Progress) -> None:
        steps.append((step.done, step.pages))
        shown(app, step)

    monkeypatch.setattr(exporting, "show_progress", spy)
    # Every page reaches the screen: the 0.1 s throttle would make "page 1 of 3" depend on
    # how fast the sandbox renders on a loaded machine.
    monkeypatch.setattr(exporting, "SHOW_EVERY", 0.0)
    hang = tmp_path / "hang.py"
    hang.write_text("import time\ntime.sleep(1000)\n")
    hang.chmod(0o644)

    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        await pilot.press("e", "enter", "enter", "y")
        await exported(app, pilot)
        assert steps[-1] == (3, 3) and (1, 3) in steps  # the bar counted the pages
        assert status_line(app) == "wrote 1 of 1 copies"
        await pilot.press("escape")
        assert len(list(out.glob("*.viewing.pdf"))) == 1

        monkeypatch.setattr(
            exporting,
            "make_converter",
            lambda config: SandboxConverter(ConverterConfig(), stage1=hang),
        )
        await pilot.press("e", "enter", "enter", "y")
        for _ in range(50):
            await pilot.pause(0.1)
            if steps and steps[-1] == (0, 0):
                break
        assert app.query_one("#exporting").display and app.export_job is not None
        assert "attachment 1/1 three.pdf" in str(app.query_one("#export-label", Label).visual)
        assert "Cancel export" in screen_text(app)
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await exported(app, pilot)
        assert status_line(app) == "export cancelled; 0 copies kept"
        assert not app.query_one("#exporting").display
        assert "Cancel export" not in screen_text(app)
        assert len(list(out.glob("*.viewing.pdf"))) == 1  # only the first export's copy

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


async def finished(app: DeskApp, pilot: Pilot[None]) -> None:
    """Wait for the import worker (if any) to end and its outcome to reach the screen."""
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def test_admin_menu_imports_signs_and_verifies(vault_dir: Path, tmp_path: Path) -> None:
    import base64
    import json

    from tipline.crypto.manifest import verify_manifest
    from tipline.desk.tui.actions import ActionMenu
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
        await finished(app, pilot)
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
        before = {r.key_id for r in app.vault.keyring.active()}
        run_action(app, "rotate")
        await pilot.press(*"bob editor", "enter")
        await pilot.pause()
        await pilot.press("escape")  # rotate asks too: no
        await pilot.pause()
        assert {r.key_id for r in app.vault.keyring.active()} == before
        run_action(app, "rotate")
        await pilot.press(*"bob editor", "enter")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert "retired" in status_line(app)
        after = {r.key_id for r in app.vault.keyring.active()}
        assert len(after) == 2 and after != before
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


# --- importing from the admin menu, in a worker ---------------------------------------------


def screen_text(app: DeskApp) -> str:
    return html.unescape(app.export_screenshot()).replace("\xa0", " ")


def item_ids(app: DeskApp) -> list[str]:
    return [i for i in inbox_ids(app) if i and not i.startswith("source:")]


def start_import(pilot: Pilot[None], name: str) -> Awaitable[None]:
    return pilot.press("a", "enter", *name, "enter")  # the menu's first action is import


def test_import_runs_in_a_worker_with_progress(
    vault_dir: Path, subs: list[Sub], tmp_path: Path
) -> None:
    pks = public_keys(vault_dir)
    foreign = [bytes(PrivateKey.generate().public_key)]
    kite = make_source("swift kite")
    new = [submission(pks, kite, f"kite {n}", received="2026-11-23") for n in range(3)]
    lost = [submission(foreign, kite, f"not for us {n}") for n in range(2)]
    bundle = [*new, subs[0], *lost]  # three new, one already there, two for another desk
    (tmp_path / "big.tlb").write_bytes(bundle_bytes(bundle))

    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        await start_import(pilot, "big.tlb")
        await finished(app, pilot)
        bar = app.query_one("#import-bar", ProgressBar)
        assert bar.total == (tmp_path / "big.tlb").stat().st_size
        assert bar.progress == sum(s.item.size for s in bundle)  # every item was counted
        assert not app.query_one("#importing").display and app.job is None
        assert "imported 3 new, 1 already in the vault; 2 problems: item " in status_line(app)
        assert set(item_ids(app)) == {s.item.id for s in [*subs, *new]}
        assert isinstance(app.screen, Notice)  # every failed item, with its reason
        shown = str(app.screen.query_one("#lines", Label).visual)
        for sub in lost:
            assert f"item {sub.item.id} not imported: " in shown
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, Notice)

    drive(vault_dir, script, tmp_path)
    with Vault.open(vault_dir, PASS) as vault:  # on disk, not only on the screen
        assert {s.item.id for s in new} <= set(vault.store.all_ids())
        assert vault.store.count() == 6


def test_while_importing_writes_wait_and_cancel_keeps_what_is_done(
    vault_dir: Path, subs: list[Sub], tmp_path: Path
) -> None:
    pks = public_keys(vault_dir)
    kite = make_source("swift kite")
    new = [submission(pks, kite, f"kite {n} " + "x" * 2000) for n in range(4)]
    data = bundle_bytes(new)
    # A named pipe holds the import inside the second item until the test lets it go on.
    cut = data.index(new[1].data) + len(new[1].data) // 2
    fifo = tmp_path / "stick.tlb"
    os.mkfifo(fifo)
    go_on = threading.Event()

    def stick() -> None:
        with fifo.open("wb") as out:
            out.write(data[:cut])
            out.flush()
            go_on.wait(60)
            out.write(data[cut:])

    writer = threading.Thread(target=stick)
    writer.start()

    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        try:
            inbox = app.query_one("#inbox", OptionList)
            inbox.highlighted = inbox_ids(app).index(subs[2].item.id)
            await pilot.pause()
            await start_import(pilot, "stick.tlb")
            bar = app.query_one("#import-bar", ProgressBar)
            for _ in range(600):  # the first item is stored and counted, the second waits
                if bar.progress:
                    break
                await pilot.pause(0.05)
            assert bar.progress == new[0].item.size
            assert app.query_one("#importing").display and app.job is not None
            assert "Cancel import" in screen_text(app)  # offered in the footer now
            await pilot.press("s")  # a vault write: refused, with a message
            await pilot.pause()
            assert "an import is running" in status_line(app)
            assert not app.vault.store.get(subs[2].item.id).starred
            run_action(app, "verify")
            assert "an import is running" in status_line(app)
            await pilot.press("q")  # quitting now would leave the worker writing
            await pilot.pause()
            assert app.is_running and "cancel it with c" in status_line(app)
            # the inbox stays usable: the preview follows the highlight
            inbox.highlighted = inbox_ids(app).index(subs[1].item.id)
            await pilot.pause()
            assert "second from the otter" in body(app)
            await pilot.press("c")
            await pilot.pause()
            assert isinstance(app.screen, Confirm)
            await pilot.press("y")
            await pilot.pause()
        finally:
            go_on.set()
        await finished(app, pilot)
        assert "import cancelled after 2 new items" in status_line(app)
        assert "Cancel import" not in screen_text(app)
        assert set(item_ids(app)) == {s.item.id for s in [*subs, *new[:2]]}
        assert app.vault.store.get(subs[1].item.id).status == "read"  # marked after the import
        await pilot.press("s")
        await pilot.pause()
        assert app.vault.store.get(subs[1].item.id).starred  # writes work again

    drive(vault_dir, script, tmp_path)
    writer.join()
    with Vault.open(vault_dir, PASS) as vault:  # consistent: the rest comes with a re-import
        assert vault.stored_item_files() == set(vault.store.all_ids())
        report = import_bundle(vault, io.BytesIO(data))
        assert (len(report.added), report.duplicates) == (2, 2)


def test_a_refused_bundle_is_one_line(vault_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "junk.tlb").write_bytes(b"not a bundle\n" * 100)

    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        await start_import(pilot, "junk.tlb")
        await finished(app, pilot)
        line = status_line(app)
        assert line.startswith("the bundle could not be imported") and "\n" not in line
        assert "Traceback" not in app.export_screenshot()
        assert app.job is None and not app.query_one("#importing").display
        await start_import(pilot, "missing.tlb")
        await pilot.pause()
        assert status_line(app).startswith("No such file or directory")

    drive(vault_dir, script, tmp_path)
