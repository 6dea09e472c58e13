"""Snapshot tests for the desk's TUI: what the terminal shows, stored as reviewable SVG files.

Each test drives the real app (Textual's pilot, a real vault, real sealed submissions) to one
screen, exports it with Textual's own SVG export at a fixed terminal size, and compares it with
the file committed under ``__snapshots__/test_tui_snapshots/``. A reviewer opens those files in a
browser to see the screens; a change to them shows up in the diff of a pull request.

When a rendering changes on purpose, update the stored files and commit them with the change::

    .venv/bin/python -m pytest tests/desk/test_tui_snapshots.py --snapshot-update

(pytest-textual-snapshot would do this, but it pins a syrupy that needs pytest < 9; this file uses
syrupy directly with a small single-file SVG extension, ``TerminalSVG``.)

Everything on screen is fixed so the files are the same on every machine and every day: the
source and item ids, the received dates, the date the journalist key was added, "today" (the
reply composer names its bundle after it), the export folder, the terminal size and the theme.
The keys and ciphertexts are new random ones on every run, and never shown.
"""

from __future__ import annotations

import asyncio
import datetime
import difflib
import html
import io
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, TextArea

import tipline.desk.tui.app as tui_app
from tipline.desk.importer import import_bundle
from tipline.desk.tui.app import DeskApp, make_app
from tipline.desk.tui.dialogs import Composer, Confirm
from tipline.desk.tui.exporting import ChooseCopy
from tipline.desk.vault import Vault

from .conftest import PASS, Sub, bundle_bytes, create_vault, make_source, public_keys, submission

SIZE = (120, 40)  # columns, lines of the terminal every snapshot is taken in
THEME = "textual-dark"  # pinned: TEXTUAL_THEME in the environment would change every colour
TODAY = datetime.date(2026, 11, 24)
KEY_ADDED = datetime.date(2026, 11, 1)
OUT = Path("/media/usb/tipline")  # only ever shown (in dialogs nobody answers), never written
OTTER = "0a7e2b5c9d1f4e3a8b6c2d0e9f1a3b5c"
HERON = "5b1c9e2d7a3f4b6c8d0e1f2a3b4c5d6e"
ITEMS = (
    "3fa4c2d1e0b94f5c8a6d7e2f1b0c9a8d",
    "7c2e9b41d5a84e6f9b3c0d1e2f3a4b5c",
    "b81d0f6a2c3e4d5f6a7b8c9d0e1f2a3b",
)
HOSTILE = "hello\x1b[2J\x1b]0;owned\x07[bold red]markup[/] \u202eexe.txt\r\nsecond\tline\x00end"
UPDATE = ".venv/bin/python -m pytest tests/desk/test_tui_snapshots.py --snapshot-update"

# Rich names the SVG's CSS classes and clip paths after a checksum of the whole screen
# ("terminal-1234567-r5"), so one changed character would change every line of the file.
UNIQUE_ID = re.compile(r"\bterminal-\d+")
TEXT = re.compile(
    r'<text class="[^"]*" x="([\d.]+)" y="[\d.]+" textLength="([\d.]+)" '
    r'clip-path="url\(#terminal-line-(\d+)\)">([^<]*)</text>'
)


class TerminalSVG(SingleFileSnapshotExtension):
    """One ``.svg`` file per snapshot, holding Textual's SVG export of the screen.

    The export is deterministic for a given screen except for one thing, which ``serialize``
    normalises (as pytest-textual-snapshot does): Rich prefixes every CSS class and clip-path id
    with ``terminal-<adler32 of the screen's content>``. That id only has to be unique among SVGs
    embedded in one HTML page; here it would turn a one-character change into a change on every
    line of the stored file, so it becomes the fixed ``terminal``. The file stays a valid SVG,
    and everything that is drawn (text, colours, positions) is kept exactly.
    """

    file_extension = "svg"
    _write_mode = WriteMode.TEXT

    def serialize(self, data: Any, **kwargs: Any) -> str:
        return normalise(str(data))


def normalise(svg: str) -> str:
    return UNIQUE_ID.sub("terminal", svg)


def screen_text(svg: str) -> list[str]:
    """The characters on screen, line by line, read back from a normalised SVG export.

    Rich draws runs of blank cells as background only, so each run of text is put back at its
    column (its x position over the width of one cell).
    """
    runs = [
        (float(x), float(length), int(line), html.unescape(chunk).replace("\xa0", " "))
        for x, length, line, chunk in TEXT.findall(svg)
    ]
    if not runs:
        return []
    cell = runs[0][1] / len(runs[0][3])
    height = max(line for _, _, line, _ in runs) + 1
    lines = [[" "] * SIZE[0] for _ in range(height)]
    for x, _, line, chunk in runs:
        start = round(x / cell)
        lines[line][start : start + len(chunk)] = chunk
    return ["".join(chars).rstrip() for chars in lines]


def check_svg(stored: str | None, received: str, where: Path, save_to: Path) -> None:
    """Fail, saying what changed and how to update, unless ``received`` equals ``stored``."""
    if stored == received:
        return
    save_to.write_text(received, encoding="utf-8")
    if stored is None:
        pytest.fail(
            f"no stored snapshot {where} yet; create it with:\n    {UPDATE}\n"
            f"and commit it (the new rendering is in {save_to})",
            pytrace=False,
        )
    diff = list(
        difflib.unified_diff(
            screen_text(stored),
            screen_text(received),
            "stored screen",
            "new screen",
            lineterm="",
            n=1,
        )
    )
    if not diff:  # the same characters: colours, styles or layout of the SVG changed
        diff = [
            "(the text on screen is the same; colours or styles differ)",
            *list(
                difflib.unified_diff(
                    stored.splitlines(),
                    received.splitlines(),
                    "stored svg",
                    "new svg",
                    lineterm="",
                    n=0,
                )
            ),
        ]
    shown = "\n".join(diff[:60]) + ("\n..." if len(diff) > 60 else "")
    pytest.fail(
        f"the TUI no longer looks like its snapshot {where}\n"
        f"the new rendering is in {save_to} (open it in a browser)\n{shown}\n"
        f"If the change is intended, update the stored snapshots and commit them:\n    {UPDATE}",
        pytrace=False,
    )


@pytest.fixture
def screen_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(TerminalSVG)


def assert_screen(snapshot: SnapshotAssertion, svg: str, tmp_path: Path) -> None:
    """Compare with the stored snapshot (or store it, under ``--snapshot-update``)."""
    where = Path(
        snapshot.extension.get_location(test_location=snapshot.test_location, index=snapshot.index)
    )
    if snapshot == svg:  # syrupy: compares, or queues the write when updating
        return
    stored = where.read_text(encoding="utf-8") if where.exists() else None
    check_svg(
        stored,
        normalise(svg),
        Path(os.path.relpath(where)),
        tmp_path / where.name.replace(".svg", ".received.svg"),
    )


# --- the fixture data and the driver ----------------------------------------------------------


@dataclass
class Desk:
    vault_dir: Path
    subs: list[Sub]

    def index(self, app: DeskApp, n: int) -> int:
        inbox = app.query_one("#inbox", OptionList)
        return inbox.get_option_index(self.subs[n].item.id)


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Desk:
    """A vault with three fixed submissions from two sources, and a fixed "today"."""
    monkeypatch.setattr(tui_app, "today", lambda: TODAY)
    for name in ("NO_COLOR", "FORCE_COLOR"):  # Rich and Textual read these
        monkeypatch.delenv(name, raising=False)
    vault_dir = create_vault(tmp_path / "vault", KEY_ADDED)
    pks = public_keys(vault_dir)
    otter, heron = make_source("tidy otter", OTTER), make_source("grey heron", HERON)
    subs = [
        submission(
            pks,
            otter,
            HOSTILE,
            [("../../x.pdf", b"PDF"), ("notes.txt", b"n")],
            received="2026-11-20",
            item_id=ITEMS[0],
        ),
        submission(
            pks,
            otter,
            "second from the otter: the invoices are in the shed",
            received="2026-11-21",
            item_id=ITEMS[1],
        ),
        submission(
            pks,
            heron,
            "the heron writes about the harbour\n\nthree ships, no manifests",
            received="2026-11-22",
            item_id=ITEMS[2],
        ),
    ]
    with Vault.open(vault_dir, PASS) as vault:
        import_bundle(vault, io.BytesIO(bundle_bytes(subs)))
    return Desk(vault_dir, subs)


Script = Callable[[DeskApp, Pilot[None]], Awaitable[None]]


def render(desk: Desk, script: Script) -> None:
    """Run the app on the desk's vault and let ``script`` drive it."""

    async def main() -> None:
        with Vault.open(desk.vault_dir, PASS) as vault:
            app = make_app(vault, OUT)
            async with app.run_test(size=SIZE) as pilot:
                app.theme = THEME
                await pilot.pause()
                await script(app, pilot)

    asyncio.run(main())


async def shoot(app: DeskApp, pilot: Pilot[None]) -> str:
    """The screen as an SVG, once everything has settled, with a steady (non-blinking) cursor."""
    for widget in (*app.screen.query(Input), *app.screen.query(TextArea)):
        widget.cursor_blink = False
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()
    return app.export_screenshot()


def capture(desk: Desk, script: Script) -> str:
    shots: list[str] = []

    async def wrapped(app: DeskApp, pilot: Pilot[None]) -> None:
        await script(app, pilot)
        shots.append(await shoot(app, pilot))

    render(desk, wrapped)
    return shots[0]


async def highlight(desk: Desk, app: DeskApp, pilot: Pilot[None], n: int) -> None:
    app.query_one("#inbox", OptionList).highlighted = desk.index(app, n)
    await pilot.pause()


# --- the screens -------------------------------------------------------------------------------


async def nothing(app: DeskApp, pilot: Pilot[None]) -> None:
    pass


def test_inbox(desk: Desk, screen_snapshot: SnapshotAssertion, tmp_path: Path) -> None:
    """Two sources' threads, newest source first; the first item is open in the preview pane."""
    svg = capture(desk, nothing)
    text = "\n".join(screen_text(normalise(svg)))
    assert "grey heron" in text and "tidy otter" in text and "three ships" in text
    assert_screen(screen_snapshot, svg, tmp_path)


def test_hostile_message(desk: Desk, screen_snapshot: SnapshotAssertion, tmp_path: Path) -> None:
    """Escapes, Rich markup and control characters in a message are shown as codes."""

    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        await highlight(desk, app, pilot, 0)

    svg = capture(desk, script)
    assert "\x1b" not in svg and "\u202e" not in svg and "\x07" not in svg
    text = "\n".join(screen_text(normalise(svg)))
    assert "\\x1b[2J" in text and "[bold red]markup[/]" in text and "\\u202e" in text
    assert "../../x.pdf (3 bytes, text/plain) - not opened;\n" in text
    assert_screen(screen_snapshot, svg, tmp_path)


def test_reply_composer(desk: Desk, screen_snapshot: SnapshotAssertion, tmp_path: Path) -> None:
    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        await highlight(desk, app, pilot, 2)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, Composer)
        await pilot.press(*"Thank you. When did this start?")

    svg = capture(desk, script)
    text = "\n".join(screen_text(normalise(svg)))
    assert f"reply-{HERON[:8]}-{TODAY.isoformat()}.tlb" in text
    assert_screen(screen_snapshot, svg, tmp_path)


def test_export_choice(desk: Desk, screen_snapshot: SnapshotAssertion, tmp_path: Path) -> None:
    """The kinds of copy, the safe one (a viewing copy) highlighted."""

    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        await highlight(desk, app, pilot, 0)
        await pilot.press("e", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ChooseCopy)

    svg = capture(desk, script)
    text = "\n".join(screen_text(normalise(svg)))
    assert "Viewing copies (safe to open)" in text and "(dangerous to open)" in text
    assert_screen(screen_snapshot, svg, tmp_path)


def test_export_confirmation(
    desk: Desk, screen_snapshot: SnapshotAssertion, tmp_path: Path
) -> None:
    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        await highlight(desk, app, pilot, 0)
        await pilot.press("e", "enter", "enter")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)

    svg = capture(desk, script)
    assert "Write viewing copies of 2 attachments" in "".join(screen_text(normalise(svg)))
    assert_screen(screen_snapshot, svg, tmp_path)


def test_delete_confirmation(
    desk: Desk, screen_snapshot: SnapshotAssertion, tmp_path: Path
) -> None:
    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        await highlight(desk, app, pilot, 1)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)

    svg = capture(desk, script)
    assert f"Delete item {ITEMS[1][:12]}" in "".join(screen_text(normalise(svg)))
    assert_screen(screen_snapshot, svg, tmp_path)


def test_filter_applied(desk: Desk, screen_snapshot: SnapshotAssertion, tmp_path: Path) -> None:
    """The otter's second item is starred and marked follow-up; the filter shows only it."""

    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        await highlight(desk, app, pilot, 1)
        await pilot.press("s", "3")
        await pilot.press("f", "f", "f")  # all -> new -> read -> follow-up
        await pilot.pause()

    svg = capture(desk, script)
    text = "\n".join(screen_text(normalise(svg)))
    assert "★  2026-11-21 follow-up second from the otter" in text
    assert "grey heron" not in text and "2026-11-20" not in text
    assert_screen(screen_snapshot, svg, tmp_path)


# --- the comparison itself ---------------------------------------------------------------------


def test_a_changed_rendering_fails(
    desk: Desk, screen_snapshot: SnapshotAssertion, tmp_path: Path
) -> None:
    """The stored inbox snapshot matches a fresh rendering (new vault, new random keys) and
    fails, with a readable diff and the update command, once one item is starred, and once
    only the colours change."""
    shots: list[str] = []

    async def script(app: DeskApp, pilot: Pilot[None]) -> None:
        shots.append(await shoot(app, pilot))
        await pilot.press("s")  # star the highlighted item: one "★" more on screen
        shots.append(await shoot(app, pilot))
        await pilot.press("s")  # unstar, and change only the colours
        app.theme = "textual-light"
        shots.append(await shoot(app, pilot))

    render(desk, script)
    same, changed, recoloured = (normalise(s) for s in shots)
    where = Path(TerminalSVG.dirname(test_location=screen_snapshot.test_location)) / (
        "test_inbox.svg"
    )
    # under --snapshot-update the stored file is about to be replaced: use this run's rendering
    if not screen_snapshot.update_snapshots and not where.exists():
        pytest.fail(f"{where} is missing; create it with:\n    {UPDATE}", pytrace=False)
    stored = same if screen_snapshot.update_snapshots else where.read_text(encoding="utf-8")
    check_svg(stored, same, where, tmp_path / "same.svg")
    assert not (tmp_path / "same.svg").exists()
    with pytest.raises(pytest.fail.Exception) as failed:
        check_svg(stored, changed, where, tmp_path / "changed.svg")
    message = str(failed.value)
    assert "no longer looks like its snapshot" in message and str(where) in message
    assert "--snapshot-update" in message
    assert any(line.startswith("+") and "★" in line for line in message.splitlines()), message
    assert (tmp_path / "changed.svg").read_text(encoding="utf-8") == changed
    with pytest.raises(pytest.fail.Exception, match="colours or styles differ") as failed:
        check_svg(stored, recoloured, where, tmp_path / "recoloured.svg")
    assert "--snapshot-update" in str(failed.value)
    with pytest.raises(pytest.fail.Exception, match="no stored snapshot"):
        check_svg(None, changed, where, tmp_path / "new.svg")
