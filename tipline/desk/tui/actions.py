"""The TUI's admin menu (key `a`): everything the CLI does besides triage, behind prompts.

Each action asks for what it needs with a ``Prompt``, asks again with a ``Confirm`` before
anything that cannot be undone, and reports one line in the status bar. ``init``, ``restore``
and ``passphrase`` work on a vault that is not open, so they stay on the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from ...crypto.errors import TiplineError
from ..admin import create_org, org_public, require_role, sign_manifest_file, write_new
from ..maintenance import backup, rekey, verify
from ..text import one_line
from ..vault import today
from .dialogs import Confirm, Prompt
from .importing import start_import

if TYPE_CHECKING:
    from .app import DeskApp

ACTIONS = (
    ("import", "Import an export bundle…"),
    ("keys", "Show the keys"),
    ("add-key", "Add a journalist key…"),
    ("rotate", "Rotate a key…"),
    ("retire", "Retire a key…"),
    ("compromised", "Retire a compromised key and re-wrap everything…"),
    ("manifest", "Sign a key manifest…"),
    ("rekey", "Re-wrap stored items to the active keys"),
    ("export-key", "Export a journalist's public key…"),
    ("org-create", "Create the org signing key"),
    ("org-export", "Export the org public key…"),
    ("verify", "Verify the vault"),
    ("backup", "Back up the vault…"),
)
READ_ONLY = {"keys", "export-key", "org-export"}  # the only ones allowed during an import


class ActionMenu(ModalScreen[str | None]):
    """Pick an admin action; Escape closes the menu."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Vault and keys")
            yield OptionList(*[Option(label, id=name) for name, label in ACTIONS], id="actions")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


def run_action(app: DeskApp, name: str) -> None:
    """Start the named action; it finishes in the callbacks of its dialogs."""
    vault = app.vault

    def guarded(work: Callable[[], str]) -> None:
        try:
            app.say(work())
        except TiplineError as exc:
            app.say(exc.message)
        except OSError as exc:
            app.say(f"{exc.strerror or exc}: {exc.filename or ''}")

    def ask(title: str, then: Callable[[str], str], value: str = "") -> None:
        app.push_screen(
            Prompt(title, value=value),
            lambda answer: guarded(lambda: then(answer)) if answer else None,
        )

    def confirm(question: str, then: Callable[[], str]) -> None:
        app.push_screen(Confirm(question), lambda yes: guarded(then) if yes else app.say("no"))

    here = str(app.out_folder) + "/"

    def show_keys() -> str:
        ring = vault.keyring
        lines = [f"org key fingerprint {ring.org.public.fingerprint}"] if ring.org else []
        lines += [f"{r.key_id}  {r.state:<11} {one_line(r.label, 64)}" for r in ring.recipients]
        app.show_text("\n".join(lines) or "no keys yet")
        return f"{len(ring.active())} active keys"

    def add_key(label: str) -> str:
        require_role(vault, ("both",), "make a key for someone else")
        entry = vault.keyring.add(label, today())
        vault.save_keyring()
        return f"added key {entry.key_id}; sign a new manifest next"

    def rotate(key: str) -> str:
        require_role(vault, ("both",), "rotate in one step (send a key request instead)")
        entry = vault.keyring.find(key, vault.keyring.active())

        def go() -> str:
            old, new = vault.keyring.rotate(entry.key_id, today())
            vault.save_keyring()
            return f"retired {old.short_id}, added {new.short_id}; sign a manifest, then re-wrap"

        confirm(f"Rotate key {entry.short_id} ({one_line(entry.label, 40)})?", go)
        return "waiting for confirmation"

    def retire(key: str, compromised: bool) -> str:
        entry = vault.keyring.find(key)
        label = one_line(entry.label, 40)

        def go() -> str:
            done = vault.keyring.retire(entry.key_id, today(), compromised)
            vault.save_keyring()
            if compromised:
                return f"{done.key_id} is compromised; re-wrapped {rekey(vault)} items"
            return f"{done.key_id} is retired; sign a new manifest next"

        confirm(f"Retire key {entry.key_id} ({label})?", go)
        return "waiting for confirmation"

    def manifest(path: str) -> str:
        version, count = sign_manifest_file(vault, Path(path).expanduser())
        return f"signed manifest version {version} with {count} keys"

    def export_key(key: str) -> str:
        entry = vault.keyring.find(key)
        ask("Write the public key to", lambda p: _write(p, entry.public.to_json()), here)
        return "choose a file"

    def _write(path: str, data: bytes) -> str:
        write_new(Path(path).expanduser(), data)
        return f"wrote {path}"

    def do_verify() -> str:
        report = verify(vault)
        if report.problems:
            return f"{len(report.problems)} problems: {report.problems[0]}"
        extra = f"; {len(report.unlisted)} unlisted files" if report.unlisted else ""
        return f"checked {report.checked} items: all good{extra}"

    handlers: dict[str, Callable[[], None]] = {
        "import": lambda: ask(
            "Import the bundle file", lambda p: start_import(app, Path(p).expanduser()), here
        ),
        "keys": lambda: guarded(show_keys),
        "add-key": lambda: ask("Journalist's name for the new key", add_key),
        "rotate": lambda: ask("Key to rotate (id or name)", rotate),
        "retire": lambda: ask("Key to retire (id or name)", lambda k: retire(k, False)),
        "compromised": lambda: ask("Compromised key (id or name)", lambda k: retire(k, True)),
        "manifest": lambda: ask("Write the signed manifest to", manifest, here),
        "rekey": lambda: confirm(
            "Re-wrap every stored item to the active keys?",
            lambda: f"re-wrapped {rekey(vault)} items",
        ),
        "export-key": lambda: ask("Key to export (id or name)", export_key),
        "org-create": lambda: confirm(
            "Create the org signing key?", lambda: f"org key fingerprint {create_org(vault)}"
        ),
        "org-export": lambda: ask(
            "Write the org public key to", lambda p: _write(p, org_public(vault).to_json()), here
        ),
        "verify": lambda: guarded(do_verify),
        "backup": lambda: ask(
            "Write the backup to",
            lambda p: f"backed up {backup(vault, Path(p).expanduser())} items",
            here,
        ),
    }
    if name not in READ_ONLY and app.busy():
        return
    handlers[name]()
