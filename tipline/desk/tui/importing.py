"""Importing a bundle from the TUI without freezing it: a thread worker, a progress bar, a cancel.

The import runs ``import_bundle`` in a Textual thread worker. SQLite connections belong to the
thread that made them, and the inbox must stay readable meanwhile, so the worker imports into its
own copy of the triage database (made from a snapshot, in the worker's thread) through a shallow
copy of the vault; ``import_bundle`` saves that copy to disk as it goes. While it runs the app
refuses every other vault write (the copy would overwrite it), and when it ends the app adopts
the worker's database, which is what is on disk. Progress reaches the bar through
``call_from_thread``, at most ten times a second.

Cancelling is clean at item boundaries: the progress callback, which ``import_bundle`` calls after
each item is stored (or skipped), raises ``ImportCancelledError``; ``import_bundle`` then saves the
database in its ``finally``, exactly as after a truncated bundle. An item being decrypted is
finished first, so no item is ever half-stored, and importing the same bundle again adds the rest.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

from ...crypto.errors import TiplineError
from ..importer import ImportReport, import_bundle
from ..store import Store
from ..text import one_line
from .dialogs import Confirm

if TYPE_CHECKING:
    from .app import DeskApp

SHOW_EVERY = 0.1  # seconds between progress updates sent to the screen
BUSY = "an import is running: that waits until it ends (c cancels the import)"


class ImportCancelledError(Exception):
    """Raised from the progress callback to stop ``import_bundle`` between two items."""


@dataclass
class ImportOutcome:
    """How an import in the worker ended, and the worker's triage database to adopt."""

    data: bytes
    dirty: bool
    added: int
    report: ImportReport | None = None
    error: str | None = None
    cancelled: bool = False


class ImportPanel(Horizontal):
    """The progress of a running import, above the status line; hidden otherwise."""

    def compose(self) -> ComposeResult:
        yield Label("", id="import-label")
        yield ProgressBar(id="import-bar", show_eta=False)


class ImportJob:
    """One import of a bundle file, run by ``run`` in a thread worker."""

    def __init__(self, app: DeskApp, path: Path, total: int) -> None:
        self.app, self.path, self.total = app, path, total
        self.snapshot = app.vault.store.serialize()  # in the app's thread, which owns the store
        self.cancel = threading.Event()
        self.done = 0
        self.shown = float("-inf")

    def run(self) -> None:
        """Import (in the worker's thread), then hand the outcome to the app's thread."""
        outcome = self._import()
        self.app.call_from_thread(self.app.import_finished, outcome)

    def _import(self) -> ImportOutcome:
        vault = copy.copy(self.app.vault)  # same folder, key and keyring; its own store below
        vault.store = Store(self.snapshot)
        before = vault.store.count()
        outcome = ImportOutcome(b"", False, 0)
        try:
            with self.path.open("rb") as src:
                outcome.report = import_bundle(vault, src, self._progress)
        except ImportCancelledError:
            outcome.cancelled = True
        except TiplineError as exc:
            outcome.error = exc.message
        except OSError as exc:
            outcome.error = f"{exc.strerror or exc}: {exc.filename or self.path}"
        finally:
            outcome.added = vault.store.count() - before
            outcome.data, outcome.dirty = vault.store.serialize(), vault.store.dirty
            vault.store.db.close()
        return outcome

    def _progress(self, size: int) -> None:
        self.done += size
        if self.cancel.is_set():
            raise ImportCancelledError()
        now = time.monotonic()
        if now - self.shown >= SHOW_EVERY:
            self.shown = now
            self.app.call_from_thread(self.app.import_progress, self.done)


def start_import(app: DeskApp, path: Path) -> str:
    """Start importing ``path`` in a thread worker; return the line for the status bar."""
    if app.job is not None:
        return "an import is already running"
    try:
        total = path.stat().st_size  # 0 for a pipe: the bar then shows only that it works
    except OSError as exc:
        return f"{exc.strerror or exc}: {one_line(str(path), 200)}"
    app.job = ImportJob(app, path, total)
    panel = app.query_one("#importing", ImportPanel)
    label = Text(f"importing {one_line(path.name, 40)} ")  # Text: a name is never markup
    panel.query_one("#import-label", Label).update(label)
    panel.query_one("#import-bar", ProgressBar).update(total=total or None, progress=0)
    panel.display = True
    app.refresh_bindings()
    app.run_worker(app.job.run, name="import", group="import", thread=True)
    return "importing; the inbox stays readable meanwhile (c cancels)"


def ask_cancel(app: DeskApp) -> None:
    """Offer to stop the running import at the next item boundary, after a confirmation."""
    job = app.job
    if job is None:
        return

    def confirmed(yes: bool | None) -> None:
        if yes and app.job is job:
            job.cancel.set()
            app.say("the import stops after the item it is on; everything before is kept")

    question = (
        "Stop the import? It stops after the item it is storing now (an item is never "
        "half-stored); every item before it is kept, and importing the same bundle again "
        "adds the rest."
    )
    app.push_screen(Confirm(question), confirmed)


def summary(outcome: ImportOutcome) -> tuple[str, list[str]]:
    """The status line for an ended import, and one line per problem (as the CLI prints them)."""
    if outcome.error is not None:
        return one_line(outcome.error, 200), []
    report = outcome.report
    if outcome.cancelled or report is None:
        return (
            f"import cancelled after {outcome.added} new items, all kept; "
            "import the same bundle again to add the rest"
        ), []
    problems = [f"item {i} not imported: {one_line(p, 200)}" for i, p in report.failed]
    if report.bundle_error:
        problems.append(one_line(report.bundle_error, 200))
    line = f"imported {len(report.added)} new, {report.duplicates} already in the vault"
    if problems:
        line += f"; {len(problems)} problem{'' if len(problems) == 1 else 's'}: {problems[0]}"
    return line, problems


def finish(app: DeskApp, outcome: ImportOutcome) -> None:
    """Adopt the worker's database (what is on disk now), refresh the inbox, report."""
    if app.job is not None:
        progress(app, app.job.done)  # the last count, which the throttle may have held back
    app.job = None
    app.query_one("#importing", ImportPanel).display = False
    app.refresh_bindings()
    old = app.vault.store
    app.vault.store = Store(outcome.data)
    app.vault.store.dirty = outcome.dirty  # a failed last save is retried by the next one
    old.db.close()
    later, app.read_later = app.read_later, set()
    for item_id in later:  # previewed during the import: marked read now, as usual
        if app.vault.store.has_item(item_id) and app.vault.store.get(item_id).status == "new":
            app.vault.store.set_status(item_id, "read")
    line, problems = summary(outcome)
    try:
        app.vault.save_store()
    except TiplineError as exc:
        line = exc.message
    except OSError as exc:
        line = f"could not save the triage database: {exc.strerror or exc}"
    app.refresh_inbox(keep=app.current.id if app.current else None)
    app.say(line)
    if len(problems) > 1:
        app.show_report("The import is done, but not everything was imported", problems)


def progress(app: DeskApp, done: int) -> None:
    """Move the bar (in the app's thread)."""
    app.query_one("#import-bar", ProgressBar).update(progress=done)
