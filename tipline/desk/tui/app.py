"""The desk's TUI: an inbox grouped by source, a preview pane, and every triage action.

``make_app(vault)`` returns the App, so tests drive it with Textual's pilot. All text from a
submission goes through ``neutralise`` and is handed to widgets as ``rich.text.Text``, never as
markup, so neither terminal escapes nor Rich markup in a message can do anything. Nothing here
opens an attachment: exporting one is an explicit action behind a confirmation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import textual.constants
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.timer import Timer
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from ...crypto.errors import TiplineError
from ..store import STATUSES, Item
from ..sync import share
from ..text import neutralise, one_line
from ..vault import Vault, today
from . import exporting
from .dialogs import Composer, Confirm, Notice, Prompt, ReplyDraft
from .importing import BUSY, ImportJob, ImportOutcome, ImportPanel, ask_cancel, finish, progress

PAGE = 200  # items listed at once; search and the filter reach the rest
# Seconds a read mark (an item previewed) waits before it is saved, with any others made
# meanwhile: at 100,000 items each save seals and writes about 80 MiB, which would otherwise
# hold up the first draw and every key press through new items. Quitting saves at once.
READ_SAVE_DELAY = 1.0
MAX_PREVIEW = 100_000  # characters of a message shown in the preview pane
FILTERS = (None, *STATUSES, "starred")


class DeskApp(App[None]):
    """The inbox."""

    TITLE = "Tipline desk"
    CSS = """
    #inbox { width: 45%; }
    #preview { width: 55%; border-left: solid $accent; padding: 0 1; }
    #filter { dock: top; }
    #main { height: 1fr; }
    #status { height: 1; color: $text-muted; }  /* above the footer, not under it */
    #importing, #exporting { height: 1; display: none; }
    #import-label, #export-label { width: auto; }
    .notice { height: auto; max-height: 20; }
    .dialog { width: 80%; height: auto; max-height: 90%; border: thick $accent;
              background: $surface; padding: 1 2; }
    .composer TextArea { height: 12; }
    .buttons { height: auto; }
    .dialog Label { width: 100%; }  /* wrap: a warning must be read whole */
    Confirm, Prompt, Composer, ActionMenu, Notice, ChooseCopy { align: center middle; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "cancel_import", "Cancel import"),  # first, so the footer has room for it
        Binding("x", "cancel_export", "Cancel export"),
        Binding("slash", "focus_filter", "Search"),
        Binding("f", "cycle_filter", "Filter"),
        Binding("s", "star", "Star"),
        Binding("1", "set_status('new')", "New", show=False),
        Binding("2", "set_status('read')", "Read", show=False),
        Binding("3", "set_status('follow-up')", "Follow-up"),
        Binding("4", "set_status('done')", "Done"),
        Binding("t", "tag", "Tag"),
        Binding("n", "note", "Note"),
        Binding("r", "reply", "Reply"),
        Binding("e", "export", "Export"),
        Binding("d", "delete", "Delete"),
        Binding("a", "admin", "Keys & vault"),
        Binding("escape", "focus_inbox", "Inbox", show=False),
        Binding("q", "quit", "Quit"),
    ]

    # Textual's own ways of writing or sending what is on screen, all off: the screen here is
    # decrypted text (tests/desk/test_tui_quiet.py). The command palette offers "Screenshot".
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, vault: Vault, out_folder: Path | None = None) -> None:
        quiet_textual()
        super().__init__()
        self.features = frozenset()  # TEXTUAL=devtools would connect a socket, =debug log more
        self.vault = vault
        self.out_folder = out_folder or Path.cwd()
        self.search_text = ""
        self.filter_index = 0
        self.current: Item | None = None
        self.job: ImportJob | None = None  # the import running in a worker, if any
        self.read_later: set[str] = set()  # previewed during an import: marked read after it
        self.export_job: exporting.ExportJob | None = None
        self.save_timer: Timer | None = None  # a save of read marks, waiting

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """Textual's screenshot (an SVG of the decrypted screen, on disk): refused."""
        self.notify("screenshots are off on the desk: the screen shows decrypted text")

    def save_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str:
        """Refused, as above: nothing decrypted is written but by export."""
        raise RuntimeError("screenshots are off on the desk")

    def _fatal_error(self) -> None:
        # Textual's default crash report is a traceback with local variables, which here can
        # hold message text or key bytes: it must never reach the terminal. One line instead.
        self.bell()
        error = type(self._exception).__name__ if self._exception else "an error"
        self._exit_renderables.append(
            Text(
                f"tipline-desk: the full-screen view stopped on an internal error ({error}); "
                "everything saved before it is intact"
            )
        )
        self._close_messages_no_wait()

    # --- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Input(placeholder="/ search words, #tag (enter)", id="filter")
        with Horizontal(id="main"):
            yield OptionList(id="inbox")
            with VerticalScroll(id="preview"):
                yield Static(Text("Select an item."), id="body")
        yield ImportPanel(id="importing")
        yield exporting.ExportPanel(id="exporting")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_inbox()
        self.query_one("#inbox", OptionList).focus()

    def show_text(self, text: str) -> None:
        """Show desk-made text (not a submission) in the preview pane."""
        self.current = None
        self.query_one("#body", Static).update(Text(text))

    def say(self, text: str) -> None:
        """A one-line message at the bottom (never anything from a submission unescaped)."""
        self.query_one("#status", Static).update(Text(text))

    # --- the inbox --------------------------------------------------------------------------

    def refresh_inbox(self, keep: str | None = None) -> None:
        """Re-run the query with the current search and filter, grouped by source."""
        chosen = FILTERS[self.filter_index]
        words = self.search_text.split()
        tags = [w[1:] for w in words if w.startswith("#") and len(w) > 1]
        text = " ".join(w for w in words if not w.startswith("#"))
        try:
            threads, total = self.vault.store.query(
                text=text or None,
                tag=tags[0] if tags else None,
                status=chosen if chosen in STATUSES else None,
                starred=chosen == "starred",
                limit=PAGE,
            )
        except TiplineError as exc:
            self.say(exc.message)
            return
        options: list[Option] = []
        for thread in threads:
            options.append(
                Option(
                    Text(f"▍{one_line(thread.designation, 40)}", style="bold"),
                    id=f"source:{thread.source_id}",
                    disabled=True,
                )
            )
            for item in thread.items:
                options.append(Option(self._label(item), id=item.id))
        inbox = self.query_one("#inbox", OptionList)
        inbox.set_options(options)
        shown = sum(len(t.items) for t in threads)
        what = f"filter: {chosen}" if chosen else "all items"
        search = f", search: {self.search_text}" if self.search_text else ""
        more = f" (first {shown}; narrow with / or f)" if total > shown else ""
        self.say(f"{total} item{'' if total == 1 else 's'}, {what}{search}{more}")
        target = (
            keep
            if keep and any(o.id == keep for o in options)
            else next((o.id for o in options if not o.disabled), None)
        )
        if target is not None:
            inbox.highlighted = inbox.get_option_index(target)
        else:
            self.current = None
            self.query_one("#body", Static).update(Text("Nothing here."))

    def _label(self, item: Item) -> Text:
        star = "★" if item.starred else " "
        arrow = "→" if item.direction == "out" else " "
        files = f" [{len(item.attachments)}]" if item.attachments else ""
        tags = (" #" + " #".join(item.tags)) if item.tags else ""
        preview = one_line(item.preview, 30)
        return Text(f"{star}{arrow} {item.received} {item.status:<9}{files}{tags} {preview}")

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id != "inbox":
            return
        item_id = event.option.id
        if item_id and not item_id.startswith("source:"):
            self.show_item(item_id)

    def show_item(self, item_id: str) -> None:
        """Show an item in the preview pane, and mark it read."""
        store = self.vault.store
        item = store.get(item_id)
        if item.status == "new" and self.job:
            self.read_later.add(item_id)  # the database is the import's until it ends
        elif item.status == "new":
            store.set_status(item_id, "read")
            self.save_soon()
            item = store.get(item_id)
            self._relabel(item)
        self.current = item
        message = store.message(item_id)
        cut = len(message) > MAX_PREVIEW
        body = Text()
        direction = "Reply to" if item.direction == "out" else "From"
        body.append(f"{direction} {one_line(item.designation, 64)}", style="bold")
        body.append(f"   {item.received}   {item.status}   sealed by {item.sealed_by}\n")
        if item.tags:
            body.append("Tags: " + " ".join(item.tags) + "\n")
        prints = store.fingerprints(item_id)
        for n, (name, size, kind) in enumerate(item.attachments, 1):
            body.append(
                f"Attachment {n}: {one_line(name, 80)} ({size} bytes, "
                f"{one_line(kind, 40)}) - not opened; press e to export\n",
                style="italic",
            )
            if n in prints:  # the whole fingerprint, on two lines to fit the pane
                digest = prints[n].hex()
                body.append(f"  sha256 {digest[:32]}\n         {digest[32:]}\n", style="dim")
        body.append("\n" + neutralise(message[:MAX_PREVIEW]))
        if cut:
            body.append(
                f"\n… {len(message) - MAX_PREVIEW} more characters (tipline-desk show)",
                style="italic",
            )
        for note in store.notes(item_id):
            body.append("\n\nNote: ", style="bold")
            body.append(neutralise(note))
        self.query_one("#body", Static).update(body)

    def save_soon(self) -> None:
        """Save the triage database in READ_SAVE_DELAY seconds (once for every mark until then)."""
        if self.save_timer is None:
            self.save_timer = self.set_timer(READ_SAVE_DELAY, self.save_now)

    def save_now(self) -> None:
        """Save what is waiting (read marks). Not while an import runs: the database is then
        the import's copy, which holds the marks made before it and saves them when it ends."""
        if self.save_timer is not None:
            self.save_timer.stop()
            self.save_timer = None
        if self.job is not None:
            return
        try:
            self.vault.save_store()
        except TiplineError as exc:
            self.say(exc.message)
        except OSError as exc:
            self.say(f"could not save the triage database: {exc.strerror or exc}")

    def _relabel(self, item: Item) -> None:
        inbox = self.query_one("#inbox", OptionList)
        inbox.replace_option_prompt(item.id, self._label(item))

    def _changed(self) -> None:
        self.vault.save_store()
        if self.current:
            self.current = self.vault.store.get(self.current.id)
            self._relabel(self.current)
            self.show_item(self.current.id)

    # --- actions ------------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.search_text = event.value.strip()
            self.refresh_inbox()
            self.query_one("#inbox", OptionList).focus()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_focus_inbox(self) -> None:
        self.query_one("#inbox", OptionList).focus()

    def action_cycle_filter(self) -> None:
        self.filter_index = (self.filter_index + 1) % len(FILTERS)
        self.refresh_inbox()

    def busy(self) -> bool:
        """True (and says so) while an import runs: other vault writes wait until it ends."""
        if self.job:
            self.say(BUSY)
        return self.job is not None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer "cancel import" (or export) only while one runs."""
        if action == "cancel_export":
            return self.export_job is not None
        return self.job is not None if action == "cancel_import" else True

    def import_progress(self, done: int) -> None:
        """Called by the import worker (through ``call_from_thread``)."""
        progress(self, done)

    def import_finished(self, outcome: ImportOutcome) -> None:
        """Called by the import worker when it ends, however it ends."""
        finish(self, outcome)

    def show_report(self, title: str, lines: list[str]) -> None:
        """Show desk-made lines (already neutralised) in a dialog."""
        self.push_screen(Notice(title, lines))

    def action_cancel_import(self) -> None:
        ask_cancel(self)

    def action_cancel_export(self) -> None:
        exporting.ask_cancel(self)

    async def action_quit(self) -> None:
        if self.export_job:
            self.say("an export is running: wait for it to end, or cancel it with x")
            return
        if self.job:
            self.say("an import is running: wait for it to end, or cancel it with c")
            return
        self.save_now()
        await super().action_quit()

    def action_star(self) -> None:
        if self.current and not self.busy():
            self.vault.store.set_star(self.current.id, not self.current.starred)
            share(self.vault, self.current.id, [("star", not self.current.starred)])
            self._changed()

    def action_set_status(self, status: str) -> None:
        if self.current and not self.busy():
            self.vault.store.set_status(self.current.id, status)
            share(self.vault, self.current.id, [("status", status)])
            self._changed()

    def action_tag(self) -> None:
        if not self.current or self.busy():
            return

        def done(answer: str | None) -> None:
            if answer and self.current:
                remove = answer.startswith("-")
                try:
                    self.vault.store.tag(self.current.id, answer.lstrip("-"), remove)
                except TiplineError as exc:
                    self.say(exc.message)
                    return
                tag = answer.lstrip("-").strip().lower()
                share(self.vault, self.current.id, [(f"tag:{tag}", not remove)])
                self._changed()

        self.push_screen(Prompt("Tag (start with - to remove it)", "politics"), done)

    def action_note(self) -> None:
        if not self.current or self.busy():
            return

        def done(answer: str | None) -> None:
            if answer and self.current:
                try:
                    self.vault.store.add_note(self.current.id, answer, today().isoformat())
                    share(self.vault, self.current.id, [("note", answer)])
                except TiplineError as exc:
                    self.say(exc.message)
                    return
                self._changed()

        self.push_screen(Prompt("Note (kept encrypted)"), done)

    def action_reply(self) -> None:
        item = self.current
        if not item or self.busy():
            return
        default = str(self.out_folder / f"reply-{item.source_id[:8]}-{today().isoformat()}.tlb")

        def done(draft: ReplyDraft | None) -> None:
            if draft is None:
                self.say("reply discarded")
                return
            from ..outgoing import write_reply  # at first use: not needed to draw the inbox

            try:
                reply = write_reply(
                    self.vault, item.source_id, draft.message, [], Path(draft.out).expanduser()
                )
            except TiplineError as exc:
                self.say(exc.message)
                return
            self.say(f"reply written to {reply.bundle}")
            self.refresh_inbox(keep=item.id)

        self.push_screen(Composer(one_line(item.designation, 64), default), done)

    def action_export(self) -> None:
        exporting.begin(self)

    def action_admin(self) -> None:
        _admin(self)

    def action_delete(self) -> None:
        item = self.current
        if not item or self.busy():
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.vault.remove_item(item.id)
                self.current = None
                self.say(f"deleted {item.id[:12]}")
                self.refresh_inbox()

        self.push_screen(Confirm(f"Delete item {item.id[:12]} from the vault for good?"), confirmed)


def _admin(app: DeskApp) -> None:
    # Imported at first use: the keys-and-vault menu brings the admin and maintenance code,
    # which the inbox does not need to be drawn (bench/desk.py: drawn within 1 s).
    from .actions import ActionMenu, run_action

    def chosen(name: str | None) -> None:
        if name:
            run_action(app, name)

    app.push_screen(ActionMenu(), chosen)


def quiet_textual() -> None:
    """Turn off Textual's environment switches that write or send the screen's contents.

    They are read when Textual is imported: ``TEXTUAL_LOG`` appends every log line to a file,
    ``TEXTUAL_SCREENSHOT`` saves the screen as SVG after a delay, ``TEXTUAL=devtools`` connects
    to a devtools server. A desk must do none of that, whatever its environment says.
    """
    os.environ.pop("TEXTUAL", None)
    for name, off in (("LOG_FILE", None), ("SCREENSHOT_DELAY", -1), ("DEBUG", False)):
        setattr(textual.constants, name, off)


def make_app(vault: Vault, out_folder: Path | None = None) -> DeskApp:
    """The TUI over an open vault (tests drive it with ``run_test``)."""
    return DeskApp(vault, out_folder)
