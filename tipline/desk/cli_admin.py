"""Admin commands of `tipline-desk`: keys, the key manifest, rekey, verify, backup, restore."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .admin import (
    HOLDING_ROLES,
    accept_key_request,
    create_org,
    import_org_public,
    org_public,
    read_key_request,
    renew_manifest_file,
    request_key,
    require_role,
    sign_manifest_file,
    write_new,
)
from .common import ask_passphrase, confirmed, opened, vault_path
from .errors import UsageError
from .maintenance import backup, rekey, restore, verify
from .text import one_line
from .vault import USER_KDFS, Vault, today


@click.group("keys")
def keys_group() -> None:
    """Journalists' recipient keys and the org signing key."""


@keys_group.command("list")
@click.pass_context
def keys_list(ctx: click.Context) -> None:
    """List the vault's keys."""
    with opened(ctx) as vault:
        ring = vault.keyring
        click.echo(f"this is a {ring.role} desk")
        if ring.org:
            click.echo(f"org signing key  fingerprint {ring.org.public.fingerprint}")
        elif ring.org_public:
            click.echo(f"org public key   fingerprint {org_public(vault).fingerprint}")
        for r in ring.recipients:
            retired = f" since {r.retired}" if r.retired else ""
            held = "secret here" if r.secret else "public only"
            click.echo(
                f"{r.short_id}  {r.state:<11} {r.account or '-':<16} {held:<11} "
                f"{r.created}{retired}  {one_line(r.label, 64)}"
            )
        if not ring.recipients:
            click.echo("no recipient keys yet (keys request, or keys accept)", err=True)


@keys_group.command("add")
@click.argument("label")
@click.option("--account", help="The staff account on the server this key belongs to.")
@click.pass_context
def keys_add(ctx: click.Context, label: str, account: str | None) -> None:
    """Make a new recipient key for LABEL in this vault (a one-person desk of role "both")."""
    with opened(ctx) as vault:
        require_role(vault, ("both",), "make a key for someone else")
        entry = vault.keyring.add(label, today(), account)
        vault.save_keyring()
    click.echo(f"added key {entry.short_id} for {label}")
    click.echo("next: sign a new manifest (tipline-desk manifest --out FILE)", err=True)


@keys_group.command("rotate")
@click.argument("key")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.pass_context
def keys_rotate(ctx: click.Context, key: str, yes: bool) -> None:
    """Replace KEY (account, key id prefix or label prefix) by a new key in this vault; the old
    one is kept to open old items. On separate desks, send a key request instead."""
    with opened(ctx) as vault:
        require_role(vault, ("both",), "rotate in one step (send a key request instead)")
        entry = vault.keyring.find(key, vault.keyring.active())
        confirmed(yes, f"rotate key {entry.short_id} ({one_line(entry.label, 40)})?")
        old, new = vault.keyring.rotate(entry.key_id, today())
        vault.save_keyring()
    click.echo(f"retired {old.short_id}, added {new.short_id}")
    click.echo("next: sign a new manifest, then tipline-desk rekey", err=True)


@keys_group.command("retire")
@click.argument("key")
@click.option(
    "--compromised",
    is_flag=True,
    help="The key leaked: re-wrap every stored item away from it now.",
)
@click.option(
    "--manifest-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also sign a new manifest without the key, to upload to the server.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.pass_context
def keys_retire(
    ctx: click.Context, key: str, compromised: bool, manifest_out: Path | None, yes: bool
) -> None:
    """Stop sealing new submissions to KEY: its account, key id prefix or label prefix (old
    items still open)."""
    with opened(ctx) as vault:
        found = vault.keyring.find(key)
        who = f"{found.short_id} ({one_line(found.label, 40)}, account {found.account or '-'})"
        confirmed(yes, f"retire key {who}{' as compromised' if compromised else ''}?")
        entry = vault.keyring.retire(found.key_id, today(), compromised)
        vault.save_keyring()
        click.echo(f"key {entry.short_id} is now {entry.state}")
        if compromised:
            changed = rekey(vault)
            click.echo(f"re-wrapped {changed} stored items to the remaining keys")
        if manifest_out:
            _sign(vault, manifest_out, 180)


@keys_group.command("export")
@click.argument("key")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def keys_export(ctx: click.Context, key: str, out: Path) -> None:
    """Write KEY's public key file (never the secret)."""
    with opened(ctx) as vault:
        entry = vault.keyring.find(key)
    write_new(out, entry.public.to_json())
    click.echo(f"wrote the public key {entry.key_id} to {out}")


@keys_group.command("request")
@click.option("--account", required=True, help="Your staff account name on the server.")
@click.option("--label", required=True, help="Your name as colleagues know it.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def keys_request(ctx: click.Context, account: str, label: str, out: Path) -> None:
    """Make your key on this desk and write a key request (no secret) for the signing desk."""
    with opened(ctx) as vault:
        entry = request_key(vault, account, label, out)
    click.echo(f"made key {entry.short_id} for {account} and wrote its request to {out}")
    click.echo("next: carry the request to the signing desk (tipline-desk keys accept)", err=True)


@keys_group.command("accept")
@click.argument("request", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.pass_context
def keys_accept(ctx: click.Context, request: Path, yes: bool) -> None:
    """Add the key from a journalist's key REQUEST file to this signing desk."""
    with opened(ctx) as vault:
        checked = read_key_request(vault, request)
        public = checked.public
        click.echo(f"key id      {checked.key_id}")
        click.echo(f"label       {one_line(public.label, 64)}")
        click.echo(f"account     {public.account}")
        click.echo(f"made on     {checked.created.isoformat()}")
        same = [r for r in vault.keyring.active() if r.account == public.account]
        for r in same:
            click.echo(f"replaces?   {r.short_id} {one_line(r.label, 40)} (retire it after)")
        confirmed(yes, "add this key? Compare the key id with the journalist's screen")
        entry = accept_key_request(vault, checked)
    click.echo(f"added key {entry.short_id} for {public.account}")
    click.echo("next: sign a new manifest (tipline-desk manifest --out FILE)", err=True)


@keys_group.command("org-import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def org_import(ctx: click.Context, file: Path) -> None:
    """Keep the org PUBLIC key (from keys org-export) on a journalist desk."""
    with opened(ctx) as vault:
        require_role(vault, HOLDING_ROLES, "import the org public key")
        click.echo(f"org key fingerprint {import_org_public(vault, file)}")


@keys_group.command("org-create")
@click.pass_context
def org_create(ctx: click.Context) -> None:
    """Create the org signing key (once per tip line)."""
    with opened(ctx) as vault:
        click.echo(f"org key fingerprint {create_org(vault)}")
    click.echo("publish this fingerprint where sources can compare it", err=True)


@keys_group.command("org-export")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def org_export(ctx: click.Context, out: Path) -> None:
    """Write the org public key file, for the server's installation."""
    with opened(ctx) as vault:
        org = org_public(vault)
    write_new(out, org.to_json())
    click.echo(f"wrote the org public key ({org.fingerprint}) to {out}")


DAYS = click.option(
    "--days",
    default=180,
    show_default=True,
    type=click.IntRange(1, 3650),
    help="How long the manifest is valid.",
)


@click.group("manifest", invoke_without_command=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path))
@DAYS
@click.pass_context
def manifest(ctx: click.Context, out: Path | None, days: int) -> None:
    """Sign a key manifest of the active keys, to install on the server (signing desk)."""
    if ctx.invoked_subcommand is not None:
        return
    if out is None:
        raise click.UsageError("Missing option '--out'.")
    with opened(ctx) as vault:
        _sign(vault, out, days)


@manifest.command("renew")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@DAYS
@click.pass_context
def manifest_renew(ctx: click.Context, out: Path, days: int) -> None:
    """Sign the same keys again with a new expiry, before the manifest in force expires."""
    with opened(ctx) as vault:
        version, count = renew_manifest_file(vault, out, days)
    click.echo(f"renewed: manifest version {version} with the same {count} keys to {out}")


def _sign(vault: Vault, out: Path, days: int) -> None:
    version, count = sign_manifest_file(vault, out, days)
    click.echo(f"signed manifest version {version} with {count} keys to {out}")


@click.command("rekey")
@click.pass_context
def rekey_cmd(ctx: click.Context) -> None:
    """Re-wrap stored items to the active keys (only the key stanzas change)."""
    with opened(ctx) as vault:
        total = vault.store.count()
        with click.progressbar(length=total, label="re-wrapping", file=sys.stderr) as bar:
            changed = rekey(vault, bar.update)
    click.echo(f"re-wrapped {changed} of {total} items")


@click.command("verify")
@click.option("--deep", is_flag=True, help="Also open every envelope (slower).")
@click.option("--repair", is_flag=True, help="Delete envelope files the vault does not list.")
@click.pass_context
def verify_cmd(ctx: click.Context, deep: bool, repair: bool) -> None:
    """Check the vault: every item present, unchanged and (with --deep) opening."""
    with (
        opened(ctx) as vault,
        click.progressbar(length=vault.store.count(), label="verifying", file=sys.stderr) as bar,
    ):
        report = verify(vault, deep, repair, lambda _: bar.update(1))
    for problem in report.problems:
        click.echo(f"tipline-desk: {problem}", err=True)
    if report.unlisted:
        action = "deleted" if repair else "left as they are (use --repair to delete them)"
        click.echo(
            f"{len(report.unlisted)} envelope files not in the vault's list "
            f"(an interrupted import?): {action}",
            err=True,
        )
    click.echo(
        f"checked {report.checked} items: "
        f"{'all good' if not report.problems else f'{len(report.problems)} problems'}"
    )
    if report.problems:
        sys.exit(1)


@click.command("backup")
@click.option("--to", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def backup_cmd(ctx: click.Context, out: Path) -> None:
    """Write the whole vault, still encrypted, to one file."""
    with opened(ctx) as vault:
        count = backup(vault, out)
    click.echo(f"backed up {count} items to {out}")


@click.command("restore")
@click.argument("backup_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", "target", required=True, type=click.Path(file_okay=False, path_type=Path))
def restore_cmd(backup_file: Path, target: Path) -> None:
    """Restore a backup into a new folder, then check it with the passphrase."""
    restore(backup_file, target)
    with Vault.open(target, ask_passphrase()) as vault:
        report = verify(vault)
    if report.problems or report.unlisted:
        raise UsageError(
            f"the restored vault has problems; run tipline-desk --vault {target} verify"
        )
    click.echo(f"restored {report.checked} items into {target}")


@click.command("passphrase")
@click.option("--kdf", type=click.Choice(USER_KDFS), default="moderate")
@click.pass_context
def passphrase_cmd(ctx: click.Context, kdf: str) -> None:
    """Change the vault's passphrase."""
    with Vault.open(vault_path(ctx), ask_passphrase()) as vault:
        vault.change_passphrase(ask_passphrase("New passphrase", confirm=True), kdf)
    click.echo("passphrase changed")


def register(group: click.Group) -> None:
    """Add the admin commands to the desk's command group."""
    for command in (
        keys_group,
        manifest,
        rekey_cmd,
        verify_cmd,
        backup_cmd,
        restore_cmd,
        passphrase_cmd,
    ):
        group.add_command(command)
