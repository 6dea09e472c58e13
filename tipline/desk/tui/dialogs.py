"""Modal dialogs with typed results: confirmations, prompts, the reply composer, notices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, TextArea


class Confirm(ModalScreen[bool]):
    """Ask before anything destructive or anything that writes plaintext. Escape says no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "answer(False)", "No"),
        Binding("y", "answer(True)", "Yes"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.question), id="question")
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (esc)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # the safe answer is the default

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class Prompt(ModalScreen[str | None]):
    """One line of input (a tag, a note, a folder); Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, placeholder: str = "", value: str = "") -> None:
        super().__init__()
        self.title_text, self.placeholder, self.value = title, placeholder, value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text))
            yield Input(
                value=self.value, placeholder=self.placeholder, id="answer", select_on_focus=False
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class ReplyDraft:
    """What the composer returns: the text and where to write the reply bundle."""

    message: str
    out: str


class Composer(ModalScreen[ReplyDraft | None]):
    """Write a reply to a source: ctrl+s writes the reply bundle, Escape discards."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Discard"),
        Binding("ctrl+s", "send", "Write bundle"),
    ]

    def __init__(self, designation: str, default_out: str) -> None:
        super().__init__()
        self.designation, self.default_out = designation, default_out

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog composer"):
            yield Label(Text(f"Reply to {self.designation}  (ctrl+s writes it, esc discards)"))
            yield TextArea(id="message")
            yield Label("Reply bundle file (for the USB stick):")
            yield Input(value=self.default_out, id="out")
            yield Label("", id="problem")

    def action_send(self) -> None:
        message = self.query_one("#message", TextArea).text
        out = self.query_one("#out", Input).value.strip()
        if not message.strip() or not out:
            self.query_one("#problem", Label).update("write a message and a file name first")
            return
        self.dismiss(ReplyDraft(message, out))

    def action_cancel(self) -> None:
        self.dismiss(None)


class Notice(ModalScreen[None]):
    """A list of lines the desk made (already neutralised) to read; Escape or Enter closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("enter", "close", "Close"),
    ]

    def __init__(self, title: str, lines: list[str]) -> None:
        super().__init__()
        self.title_text, self.lines = title, lines

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text), classes="title")
            with VerticalScroll(classes="notice"):
                yield Label(Text("\n".join(self.lines)), id="lines")
            yield Label("(esc closes)")

    def action_close(self) -> None:
        self.dismiss(None)
