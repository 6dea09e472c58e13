"""Exporting safe copies from the TUI: choose the kind of copy, confirm, watch it, cancel it.

The conversion runs ``safe.export.export`` in a Textual thread worker. What it needs from the
vault (the envelope's path, the keys, the fingerprints recorded at import) is read first, in
the app's thread, which owns the triage database; the worker touches nothing shared and reports
pages done through ``call_from_thread``, at most ten times a second. Cancelling (``x``, after a
confirmation) sets an event that kills the sandbox at once; the copy being made is thrown away,
copies already finished are kept.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, ProgressBar
from textual.widgets.option_list import Option

from ...crypto.errors import TiplineError
from ..safe.converter import Converter, load_config, make_converter
from ..safe.export import ExportReport, Options, Progress, Source, export, prepare, record
from ..text import one_line
from .dialogs import Confirm, Prompt

if TYPE_CHECKING:
    from .app import DeskApp

SHOW_EVERY = 0.1
CHOICES = (
    ("viewing", "Viewing copies (safe to open): documents and images rebuilt from pixels"),
    ("viewing-ocr", "Viewing copies with the text recognised (OCR; slower)"),
    ("publication", "Publication copies: the original format, metadata removed"),
    ("original", "The originals, exactly as sent (dangerous to open)"),
)

CHOICES_TEXT = {
    "viewing": "Viewing copies",
    "viewing-ocr": "Viewing copies with OCR",
    "publication": "Publication copies",
}


class ChooseCopy(ModalScreen[str | None]):
    """Which kind of copy to make; the viewing copy is highlighted, Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text("What kind of copy? (Enter chooses, Esc cancels)"))
            yield OptionList(*(Option(text, id=key) for key, text in CHOICES), id="copies")

    def on_mount(self) -> None:
        copies = self.query_one("#copies", OptionList)
        copies.highlighted = 0
        copies.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ExportPanel(Horizontal):
    """The progress of a running export, above the status line; hidden otherwise."""

    def compose(self) -> ComposeResult:
        yield Label("", id="export-label")
        yield ProgressBar(id="export-bar", show_eta=False)


@dataclass
class ExportOutcome:
    """How an export in the worker ended."""

    report: ExportReport | None = None
    error: str | None = None


class ExportJob:
    """One export, run by ``run`` in a thread worker."""

    def __init__(
        self, app: DeskApp, source: Source, folder: Path, options: Options, converter: Converter
    ) -> None:
        self.app, self.source, self.folder = app, source, folder
        self.options, self.converter = options, converter
        self.cancel = threading.Event()
        self.shown = float("-inf")
        self.last: Progress | None = None

    def run(self) -> None:
        """Export (in the worker's thread), then hand the outcome to the app's thread."""
        outcome = ExportOutcome()
        try:
            outcome.report = export(
                self.source, self.folder, self.converter, self.options, self._progress, self.cancel
            )
        except TiplineError as exc:
            outcome.error = exc.message
        except OSError as exc:
            outcome.error = f"{exc.strerror or exc}: {exc.filename or self.folder}"
        self.app.call_from_thread(finish, self.app, outcome)

    def _progress(self, step: Progress) -> None:
        self.last = step
        now = time.monotonic()
        if now - self.shown >= SHOW_EVERY or step.done == step.pages:
            self.shown = now
            self.app.call_from_thread(show_progress, self.app, step)


def begin(app: DeskApp) -> None:
    """``e``: ask for a folder, the kind of copy and a confirmation, then start the worker."""
    item = app.current
    if item is None:
        return
    if not item.attachments:
        app.say("this item has no attachments")
        return
    if app.export_job is not None:
        app.say("an export is already running (x cancels it)")
        return

    def confirmed(yes: bool | None, folder: Path, choice: str) -> None:
        if not yes:
            app.say("nothing exported")
            return
        try:
            converter = make_converter(load_config())
            source = prepare(app.vault, item.id)  # here, in the thread that owns the vault
        except TiplineError as exc:
            app.say(exc.message)
            return
        copy = "viewing" if choice == "viewing-ocr" else choice
        options = Options(copy=copy, ocr=choice == "viewing-ocr")
        start(app, ExportJob(app, source, folder, options, converter))

    def chose(choice: str | None, folder: Path) -> None:
        if choice is None:
            app.say("nothing exported")
            return
        n = len(item.attachments)
        what = f"{n} attachment{'' if n == 1 else 's'}"
        if choice == "original":
            question = (
                f"Write the ORIGINALS of {what} into {folder}? They are exactly what the source "
                "sent: opening one can attack this machine, which holds every key, and its "
                "metadata may identify the source. Prefer a viewing copy."
            )
        else:
            question = (
                f"Write {CHOICES_TEXT[choice].lower()} of {what} into {folder}? They are "
                "decrypted: anyone with access to that folder can read them."
            )
        app.push_screen(Confirm(question), lambda yes: confirmed(yes, folder, choice))

    def chosen(answer: str | None) -> None:
        if answer:
            folder = Path(answer).expanduser()
            app.push_screen(ChooseCopy(), lambda choice: chose(choice, folder))

    app.push_screen(Prompt("Export attachments to folder", value=str(app.out_folder)), chosen)


def start(app: DeskApp, job: ExportJob) -> None:
    """Show the panel and run ``job`` in a thread worker."""
    app.export_job = job
    panel = app.query_one("#exporting", ExportPanel)
    panel.query_one("#export-label", Label).update(Text("exporting "))
    panel.query_one("#export-bar", ProgressBar).update(total=None, progress=0)
    panel.display = True
    app.refresh_bindings()
    app.say("exporting; x cancels")
    app.run_worker(job.run, name="export", group="export", thread=True)


def show_progress(app: DeskApp, step: Progress) -> None:
    """Move the bar (in the app's thread): pages of the attachment being converted."""
    if app.export_job is None:
        return
    label = f"attachment {step.number}/{step.count} {one_line(step.name, 30)} "
    if step.pages:
        label += f"page {step.done}/{step.pages} "
    app.query_one("#export-label", Label).update(Text(label))
    bar = app.query_one("#export-bar", ProgressBar)
    bar.update(total=step.pages or None, progress=step.done)


def ask_cancel(app: DeskApp) -> None:
    """``x``: stop the running export, after a confirmation."""
    job = app.export_job
    if job is None:
        return

    def confirmed(yes: bool | None) -> None:
        if yes and app.export_job is job:
            job.cancel.set()
            app.say("cancelling the export; the copy being made is thrown away")

    question = (
        "Stop the export? The copy being made now is thrown away; copies already finished are kept."
    )
    app.push_screen(Confirm(question), confirmed)


def summary(outcome: ExportOutcome) -> tuple[str, list[str]]:
    """The status line for an ended export, and lines for a dialog (already neutralised)."""
    if outcome.error is not None or outcome.report is None:
        return one_line(outcome.error or "the export failed", 200), []
    report = outcome.report
    lines: list[str] = []
    written = [a for a in report.attachments if a.path is not None]
    for a in report.attachments:
        lines.append(f"{a.number}. {one_line(a.name, 60)}  sha256 {a.sha256}")
        if a.path is not None:
            lines.append(f"   {a.copy} copy: {one_line(a.path.name, 90)}")
        lines += [f"   note: {one_line(note, 200)}" for note in a.notes]
        if a.problem:
            lines.append(f"   not exported: {one_line(a.problem, 200)}")
    if report.cancelled:
        line = f"export cancelled; {len(written)} copies kept"
    else:
        line = f"wrote {len(written)} of {len(report.attachments)} copies"
    return line, lines


def finish(app: DeskApp, outcome: ExportOutcome) -> None:
    """Hide the panel, keep new fingerprints, and show what was written."""
    app.export_job = None
    app.query_one("#exporting", ExportPanel).display = False
    app.refresh_bindings()
    line, lines = summary(outcome)
    if outcome.report is not None:
        try:
            record(app.vault, outcome.report)
        except TiplineError as exc:
            line = exc.message
    app.say(line)
    if lines:
        app.show_report("Export: " + line, lines)
