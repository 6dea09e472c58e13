"""A whole desk session, run as its own process so that tests/desk/test_watched.py can watch it
under strace (and, inside it, with an audit hook): import of an export bundle, a triage listing
over every item, search, tag, star, note, status, a reply, the journalist's export, and the TUI
driven by Textual's pilot (listing, search, tag, note, reply, export of viewing copies).

    python -m tests.desk.session WORK [PLANT]

WORK holds ``vault/`` (passphrase tests.desk.conftest.PASS), ``bundle.tlb``, ``export/`` (the
only folder plaintext may reach), ``usb/`` (reply bundles) and gets ``audit.json``. PLANT names
a leak to plant, each the positive control of one check (docs/TESTING.md):

- ``spill``: SQLite's default temp store (files in /var/tmp) on the triage database, and
  listings that sort whole rows (as they did before taking the newest ids first);
- ``socket``: a lazy socket opened by the desk's import;
- ``tempfile``: every imported message teed into an unnamed temporary file.
"""

from __future__ import annotations

import asyncio
import io
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tests.watch import audited
from tipline.desk import store as store_module
from tipline.desk.cli import cli
from tipline.desk.vault import Vault

PASS = "correct horse battery"
REPLY = "REPLYMARKER meet at the usual bench"
NOTE = "NOTEMARKER call the brother back"
TUI_REPLY = "TUIREPLYMARKER thanks"
TUI_NOTE = "TUINOTEMARKER ring back"


def plant(name: str) -> None:
    """Plant one leak (a positive control); the session must then be caught."""
    if name == "spill":
        store_module.TEMP_STORE_MEMORY = 0  # SQLite's DEFAULT: temporary files on disk
        # Listings now take the newest ids before reading rows, so they sort nothing decrypted;
        # each one also sorts whole rows here, as they did before, to give SQLite something
        # to spill.
        real_query = store_module.Store.query

        def whole_rows(self: store_module.Store, **kwargs: Any) -> Any:
            order = " ORDER BY i.received DESC, i.seq DESC LIMIT ?"
            self.db.execute(self._SELECT + order, (kwargs.get("limit", 50),)).fetchall()
            return real_query(self, **kwargs)

        store_module.Store.query = whole_rows  # type: ignore[method-assign]
    elif name == "socket":
        from tipline.desk import importer

        real = importer.import_bundle

        def lazy(*args: Any, **kwargs: Any) -> Any:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect_ex(("127.0.0.1", 9))
            return real(*args, **kwargs)

        importer.import_bundle = lazy
        import tipline.desk.cli as desk_cli

        desk_cli.import_bundle = lazy  # type: ignore[attr-defined]
    elif name == "tempfile":
        real_add = store_module.Store.add_item

        def tee(self: store_module.Store, **kwargs: Any) -> None:
            with tempfile.TemporaryFile() as spool:
                spool.write(str(kwargs["message"]).encode())
                spool.flush()
            real_add(self, **kwargs)

        store_module.Store.add_item = tee  # type: ignore[method-assign]
    elif name:
        raise SystemExit(f"unknown plant {name!r}")


def desk(vault: Path, *args: str) -> str:
    """Run one tipline-desk command in this process, as a journalist would type it."""
    result = CliRunner().invoke(cli, ["--vault", str(vault), *args], input=PASS + "\n")
    if result.exit_code != 0:
        raise SystemExit(f"tipline-desk {' '.join(args)} failed:\n{result.output}")
    return result.output


def cli_session(work: Path) -> None:
    vault = work / "vault"
    print(desk(vault, "import", str(work / "bundle.tlb")).splitlines()[-1])
    desk(vault, "list", "--limit", "100000")  # the triage listing over every item
    with Vault.open(vault, PASS) as opened:  # the newest item (with the PDF): the one exported
        threads, _ = opened.store.query(limit=1)
        first = threads[0].items[0].id[:12]
    desk(vault, "search", "ministry", "--limit", "5000")
    desk(vault, "tag", first, "leads")
    desk(vault, "star", first)
    desk(vault, "status", first, "follow-up")
    desk(vault, "note", first, NOTE)
    desk(vault, "list", "--tag", "leads")
    with Vault.open(vault, PASS) as opened:
        item = opened.store.get(opened.store.resolve(first))
    assert item.received == "2026-11-29", item
    desk(vault, "reply", item.source_id, "-m", REPLY, "--out", str(work / "usb" / "reply.tlb"))
    desk(vault, "export", first, "--to", str(work / "export"), "--with-message")


def tui_session(work: Path) -> None:
    from textual.widgets import OptionList

    from tipline.desk.tui.app import make_app

    async def main() -> None:
        with Vault.open(work / "vault", PASS) as vault:
            app = make_app(vault, work / "export")  # its exports and reply bundles go there
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.pause()
                inbox = app.query_one("#inbox", OptionList)
                inbox.highlighted = 1
                await pilot.pause()
                await pilot.press("s", "3", "t", *"tuitag", "enter")
                await pilot.press("n", *TUI_NOTE, "enter")
                await pilot.press("slash", *"ministry", "enter")
                await pilot.pause()
                await pilot.press("escape")
                inbox.highlighted = 1
                await pilot.pause()
                await pilot.press("r")
                await pilot.pause()
                await pilot.press(*TUI_REPLY, "ctrl+s")
                await pilot.pause()
                # the journalist's export from the TUI: the newest item's viewing copies
                inbox.highlighted = 1
                await pilot.pause()
                await pilot.press("e", "enter", "enter", "y")
                for _ in range(1200):
                    await pilot.pause(0.1)
                    if app.export_job is None:
                        break
                else:
                    raise SystemExit("the TUI export did not end")

    asyncio.run(main())


def main() -> None:
    work = Path(sys.argv[1])
    plant(sys.argv[2] if len(sys.argv) > 2 else "")
    with audited() as log:
        cli_session(work)
        tui_session(work)
    log.dump(work / "audit.json")
    print("session done", io.StringIO().getvalue())


if __name__ == "__main__":
    main()
