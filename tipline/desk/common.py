"""What every desk command shares: finding the vault, asking for the passphrase, printing."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from .errors import UsageError
from .store import Item, Thread
from .text import one_line
from .vault import Vault

DEFAULT_VAULT = "~/tipline-vault"


def vault_path(ctx: click.Context) -> Path:
    """The vault folder chosen with --vault or TIPLINE_VAULT."""
    return Path(ctx.find_root().params.get("vault") or DEFAULT_VAULT).expanduser()


def ask_passphrase(prompt: str = "Vault passphrase", confirm: bool = False) -> str:
    """Read the passphrase: hidden from a terminal, or one line from a pipe (for scripts; two
    lines, the same twice, where a new passphrase is set).

    It is never taken from the command line or the environment, where other programs and the
    shell history can see it.
    """
    if sys.stdin.isatty():
        return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True))
    line = sys.stdin.readline()
    if not line:
        raise click.UsageError("no passphrase on standard input")
    if confirm:
        again = sys.stdin.readline()
        if not again:
            raise click.UsageError(
                "a new passphrase is read twice: give it on two lines of standard input"
            )
        if again.rstrip("\r\n") != line.rstrip("\r\n"):
            raise click.UsageError("the two passphrases differ")
    return line.rstrip("\r\n")


def confirmed(yes: bool, question: str) -> None:
    """Ask before a change that is hard to undo; ``--yes`` answers for scripts. Answers are
    read from the terminal, or as one line from a pipe after the passphrase."""
    if yes:
        return
    if sys.stdin.isatty():
        ok = click.confirm(question[:1].upper() + question[1:], default=False, err=True)
    else:
        click.echo(f"{question[:1].upper() + question[1:]} [y/N]: ", err=True, nl=False)
        ok = sys.stdin.readline().strip().lower() in ("y", "yes")
    if not ok:
        raise UsageError("nothing changed (answer yes, or pass --yes)")


@contextmanager
def opened(ctx: click.Context) -> Iterator[Vault]:
    """Unlock the vault for one command and always release it."""
    vault = Vault.open(vault_path(ctx), ask_passphrase())
    try:
        yield vault
    finally:
        vault.close()


def describe(item: Item) -> str:
    """One line for an item in a list (everything from the source neutralised)."""
    flags = ("★" if item.starred else " ") + ("→" if item.direction == "out" else " ")
    tags = (" #" + " #".join(item.tags)) if item.tags else ""
    files = (
        f" [{len(item.attachments)} file{'s' * (len(item.attachments) != 1)}]"
        if (item.attachments)
        else ""
    )
    return f"  {item.id[:12]} {flags} {item.received} {item.status:<9}{files}{tags}"


def print_threads(threads: list[Thread], total: int) -> None:
    """Print threads grouped by source."""
    for thread in threads:
        click.echo(f"{one_line(thread.designation, 64)}  (source {thread.source_id[:12]})")
        for item in thread.items:
            click.echo(describe(item) + "  " + one_line(item.preview, 60))
    shown = sum(len(t.items) for t in threads)
    if total > shown:
        click.echo(f"({shown} of {total} shown; use --limit to see more)", err=True)
    elif not total:
        click.echo("nothing here", err=True)


def terminal_width() -> int:
    """The terminal's width, or 100 when output is not a terminal."""
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100
