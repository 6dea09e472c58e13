"""The TUI run with every Textual switch that writes or sends the screen turned on in its
environment, as its own process (tests/desk/test_tui_quiet.py watches it under strace).

    python -m tests.desk.tui_probe VAULT [plain]

``plain`` runs a bare Textual app showing the same text instead of the desk (the positive
control: the switches do write it to disk there).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import Static

from tipline.desk.tui.app import make_app
from tipline.desk.vault import Vault

PASS = "correct horse battery"
SHOWN = "TUIPROBEMARKER the harbour master"


class Plain(App[None]):
    def compose(self) -> ComposeResult:
        yield Static(SHOWN)


async def drive(app: App[None]) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.5)
        app.log(SHOWN)  # what a widget might log
        with contextlib.suppress(RuntimeError):
            app.save_screenshot()
        app.action_screenshot()
        await pilot.pause(0.5)


def main() -> None:
    vault = Path(sys.argv[1])
    if sys.argv[2:] == ["plain"]:
        asyncio.run(drive(Plain()))
        return
    with Vault.open(vault, PASS) as opened:
        asyncio.run(drive(make_app(opened, vault.parent / "out")))


if __name__ == "__main__":
    main()
