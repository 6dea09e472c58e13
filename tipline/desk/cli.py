"""`tipline-desk`: the command line of the offline desk (triage, import, replies, export).

Admin commands (keys, manifests, rekey, verify, backup) are in ``cli_admin``. Every error is a
``TiplineError`` mapped to a one-line ``tipline-desk: ...`` message and an exit code in ``main``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

import click

from ..crypto.errors import LockedSecretError, TiplineError
from . import cli_admin, cli_export, errors, triage
from .common import ask_passphrase, opened, print_threads, vault_path
from .importer import import_bundle
from .keyring import ROLES
from .outgoing import write_reply
from .store import STATUSES
from .sync import share, sync_cmd
from .text import fold, neutralise, one_line
from .vault import USER_KDFS, Vault, today

MAX_REPLY_TEXT = 1 << 19


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--vault",
    envvar="TIPLINE_VAULT",
    type=click.Path(file_okay=False),
    help="The vault folder (default ~/tipline-vault, or $TIPLINE_VAULT).",
)
def cli(vault: str | None) -> None:
    """Tipline's offline desk: open, triage and answer submissions on an air-gapped machine.

    The passphrase is asked for by every command (or read as one line from standard input).
    """


@cli.command()
@click.option(
    "--kdf",
    type=click.Choice(USER_KDFS),
    default="moderate",
    show_default=True,
    help="How hard the passphrase is to guess by brute force.",
)
@click.option(
    "--role",
    type=click.Choice(ROLES),
    help="signer: the admin's desk with the org key; journalist: your own keys only; "
    "both: a one-person newsroom doing both in one vault.",
)
@click.pass_context
def init(ctx: click.Context, kdf: str, role: str | None) -> None:
    """Create a new, empty vault for one role (--role signer, journalist or both)."""
    if role is None:
        raise errors.UsageError(
            "say what this desk is for: --role journalist (your own keys), "
            "signer (the org signing key) or both (one person does both)"
        )
    path = vault_path(ctx)
    vault = Vault.create(path, ask_passphrase("New vault passphrase", confirm=True), kdf, role)
    vault.close()
    click.echo(f"created a {role} vault in {path}")
    nexts = {
        "signer": "tipline-desk keys org-create",
        "journalist": "tipline-desk keys org-import ORG.pub, then keys request",
        "both": "tipline-desk keys org-create, then keys add 'YOUR NAME' --account YOU",
    }
    click.echo(f"next: {nexts[role]}", err=True)


@cli.command("import")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def import_(ctx: click.Context, bundle: Path) -> None:
    """Import an export bundle from the server (checked, idempotent)."""
    with opened(ctx) as vault, bundle.open("rb") as src:
        size = max(bundle.stat().st_size, 1)  # 0 for a pipe
        with click.progressbar(length=size, label="importing", file=sys.stderr) as bar:
            report = import_bundle(vault, src, bar.update)
    click.echo(f"imported {len(report.added)} new, {report.duplicates} already in the vault")
    for item_id, problem in report.failed:
        click.echo(f"tipline-desk: item {item_id} not imported: {problem}", err=True)
    for line in report.triage:
        click.echo(line)
    if report.bundle_error:
        click.echo(f"tipline-desk: {report.bundle_error}", err=True)
    if not report.ok:
        sys.exit(1)


@cli.command("list")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--tag")
@click.option("--starred", is_flag=True)
@click.option("--source", help="A source's name or id prefix.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10**6))
@click.pass_context
def list_(
    ctx: click.Context,
    status: str | None,
    tag: str | None,
    starred: bool,
    source: str | None,
    limit: int,
) -> None:
    """List items, grouped by source, newest first."""
    with opened(ctx) as vault:
        source_id = vault.store.resolve_source(source)[0] if source else None
        threads, total = vault.store.query(
            status=status, tag=tag, starred=starred, source=source_id, limit=limit
        )
    print_threads(threads, total)


@cli.command()
@click.argument("words", nargs=-1, required=True)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10**6))
@click.pass_context
def search(ctx: click.Context, words: tuple[str, ...], limit: int) -> None:
    """Find items whose message, attachment names, notes or source name hold every word."""
    with opened(ctx) as vault:
        threads, total = vault.store.query(text=" ".join(words), limit=limit)
    print_threads(threads, total)


@cli.command()
@click.argument("item")
@click.pass_context
def show(ctx: click.Context, item: str) -> None:
    """Show an item's message and attachment list, and mark it read."""
    with opened(ctx) as vault:
        store = vault.store
        it = store.get(store.resolve(item))
        message, notes = store.message(it.id), store.notes(it.id)
        prints = store.fingerprints(it.id)
        held = triage.held_manifest(store, vault.keyring.org_public, today(), strict=False)
        shared = triage.describe(store, it.id, triage.writers(store, held).names)
        if it.status == "new":
            store.set_status(it.id, "read")
            vault.save_store()
    direction = "reply to" if it.direction == "out" else "from"
    click.echo(f"item {it.id}  {direction} {one_line(it.designation, 64)}  {it.received}")
    click.echo(
        f"status {it.status}{'  starred' if it.starred else ''}  sealed by {it.sealed_by}"
        + (f"  tags {' '.join(it.tags)}" if it.tags else "")
    )
    if 0 in prints:
        click.echo(f"envelope sha256 {prints[0].hex()} (as received)")
    for n, (name, size, kind) in enumerate(it.attachments, 1):
        click.echo(f"attachment {n}: {one_line(name, 100)}  {size} bytes  {one_line(kind, 60)}")
        fingerprint = prints[n].hex() if n in prints else "not recorded (an export records it)"
        click.echo(f"  sha256 {fingerprint}")
    click.echo("")
    click.echo(fold(neutralise(message)))
    for note in notes:
        click.echo(f"\nnote: {fold(neutralise(note))}")
    for line in shared:
        click.echo(line)


@cli.command()
@click.argument("item")
@click.argument("tag")
@click.option("--remove", is_flag=True, help="Remove the tag instead.")
@click.pass_context
def tag(ctx: click.Context, item: str, tag: str, remove: bool) -> None:
    """Tag an item (or remove a tag)."""
    with opened(ctx) as vault:
        found = vault.store.resolve(item)
        vault.store.tag(found, tag, remove)
        share(vault, found, [(f"tag:{tag.strip().lower()}", not remove)])
        vault.save_store()


@cli.command()
@click.argument("item")
@click.option("--off", is_flag=True, help="Unstar instead.")
@click.pass_context
def star(ctx: click.Context, item: str, off: bool) -> None:
    """Star an item (or unstar it)."""
    with opened(ctx) as vault:
        found = vault.store.resolve(item)
        vault.store.set_star(found, not off)
        share(vault, found, [("star", not off)])
        vault.save_store()


@cli.command()
@click.argument("item")
@click.argument("status", type=click.Choice(STATUSES))
@click.pass_context
def status(ctx: click.Context, item: str, status: str) -> None:
    """Set an item's status: new, read, follow-up or done."""
    with opened(ctx) as vault:
        found = vault.store.resolve(item)
        vault.store.set_status(found, status)
        share(vault, found, [("status", status)])
        vault.save_store()


@cli.command()
@click.argument("item")
@click.argument("text")
@click.pass_context
def note(ctx: click.Context, item: str, text: str) -> None:
    """Add a note to an item (kept encrypted, searchable)."""
    with opened(ctx) as vault:
        found = vault.store.resolve(item)
        vault.store.add_note(found, text, today().isoformat())
        share(vault, found, [("note", text)])
        vault.save_store()


@cli.command()
@click.argument("item")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def delete(ctx: click.Context, item: str, yes: bool) -> None:
    """Delete an item from the vault for good."""
    with opened(ctx) as vault:
        item_id = vault.store.resolve(item)
        if not yes and not click.confirm(f"delete item {item_id} for good?", err=True):
            raise errors.UsageError("nothing deleted")
        vault.remove_item(item_id)
    click.echo(f"deleted {item_id}")


@cli.command()
@click.argument("source")
@click.option("-m", "--message", help="The reply text.")
@click.option(
    "--message-file",
    type=click.File("r", encoding="utf-8"),
    help="Read the reply text from a file ('-' for standard input).",
)
@click.option(
    "--attach", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The reply bundle to write (on the USB stick).",
)
@click.pass_context
def reply(
    ctx: click.Context,
    source: str,
    message: str | None,
    message_file: TextIO | None,
    attach: tuple[Path, ...],
    out: Path,
) -> None:
    """Write a reply to SOURCE (name or id) as a reply bundle for the server."""
    if (message is None) == (message_file is None):
        raise errors.UsageError("give the reply as --message or --message-file")
    with opened(ctx) as vault:  # the passphrase first: --message-file - reads the same stdin
        text = message_file.read(MAX_REPLY_TEXT + 1) if message_file else message or ""
        if len(text.encode("utf-8")) > MAX_REPLY_TEXT:
            raise errors.UsageError("the reply text is longer than 512 KiB")
        result = write_reply(vault, source, text, list(attach), out)
    click.echo(f"reply {result.id} to {one_line(result.designation, 64)} written to {out}")


@cli.command()
@click.pass_context
def tui(ctx: click.Context) -> None:
    """Open the full-screen desk (keyboard first)."""
    from .tui.start import open_view  # Textual is imported while the vault is unlocked

    app = open_view(vault_path(ctx), ask_passphrase())
    try:
        app.run()
        app.save_now()  # read marks still waiting, however the view ended
    finally:
        app.vault.close()


EXIT_CODES: list[tuple[type[TiplineError], int]] = [
    (LockedSecretError, 3),
    (errors.VaultDamagedError, 4),
    (errors.VaultBusyError, 5),
    (errors.UsageError, 2),
]


class DeskFailure(click.ClickException):
    """A TiplineError as Click shows it: ``tipline-desk: message``, never a traceback."""

    def __init__(self, error: TiplineError) -> None:
        super().__init__(error.message)
        # Click declares exit_code per class; the desk's code depends on the error instead.
        code = next((code for cls, code in EXIT_CODES if isinstance(error, cls)), 1)
        self.exit_code = code  # type: ignore[misc]

    def show(self, file: object = None) -> None:
        click.echo(f"tipline-desk: {self.message}", err=True)


def _invoke(ctx: click.Context) -> object:
    try:
        return click.Group.invoke(cli, ctx)
    except TiplineError as exc:
        raise DeskFailure(exc) from None
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise DeskFailure(errors.DeskError(f"{exc.strerror or exc}{where}")) from None


cli.invoke = _invoke  # type: ignore[method-assign]
cli_admin.register(cli)
cli.add_command(sync_cmd)
cli.add_command(cli_export.export_cmd)
cli.add_command(cli_export.doctor_cmd)


def main() -> None:
    """Entry point of ``tipline-desk``."""
    cli.main(prog_name="tipline-desk")
