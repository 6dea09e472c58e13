"""`tipline-desk sync`: this desk's pending triage updates, sealed, into a reply bundle."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import click

from ..bundle import KIND_REPLY, Item, TriageItem, write_bundle
from . import sealed, triage
from .common import opened
from .errors import UsageError
from .vault import Vault, today


def share(vault: Vault, item_id: str, changes: list[tuple[str, object]]) -> None:
    """Keep a triage change for the other desks (nothing on a desk with no key of its own)."""
    own = [r for r in vault.keyring.active() if r.secret is not None]
    own.sort(key=lambda r: r.signing_seed is None)  # a key that can sign first
    if own:
        triage.record(vault.store, item_id, changes, own[0].key_id)


def write_sync(vault: Vault, out: Path) -> int:
    """Seal every pending update to the held manifest's active keys and write them as a reply
    bundle to ``out``; returns how many. Each is signed by this desk's key in that manifest
    (written again as that key's if an older key of this desk made it). They stay pending until
    they come back in an export."""
    manifest = triage.held_manifest(vault.store, vault.keyring.org_public, today())
    if manifest is None:
        raise UsageError("this desk holds no key manifest yet: tipline-desk sync --manifest FILE")
    recipients = [r.public_key for r in manifest.recipients]
    if out.exists():
        raise UsageError(f"{out} already exists")
    signer = vault.keyring.signer(frozenset(r.key_id.hex() for r in manifest.recipients))
    if signer is None or signer.signing_seed is None:
        raise UsageError(
            "no key of this desk can sign triage updates: none is an active key of the manifest "
            "it holds with its signing key kept (keys made before signed triage updates have "
            "none: tipline-desk keys request a new one)"
        )
    sealed_updates = {
        u.id: triage.seal_update(
            triage.sign_as(vault.store, u, signer.key_id), signer.signing_seed, recipients
        )
        for u in triage.pending(vault.store)
    }
    items: list[Item] = [TriageItem(i, len(data)) for i, data in sealed_updates.items()]
    tmp = sealed.temp_name(out)
    try:
        with tmp.open("xb") as dst:
            write_bundle(dst, KIND_REPLY, items, lambda it: io.BytesIO(sealed_updates[it.id]))
            dst.flush()
            os.fsync(dst.fileno())
        tmp.replace(out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return len(items)


@click.command("sync")
@click.option(
    "--manifest",
    "manifest_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A signed key manifest (the one in force on the server) to seal updates to.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Reply bundle.")
@click.pass_context
def sync_cmd(ctx: click.Context, manifest_file: Path | None, out: Path | None) -> None:
    """Write this desk's triage changes (tags, notes, status, stars) for the other desks."""
    if manifest_file is None and out is None:
        raise UsageError("say --manifest FILE, --out FILE or both")
    with opened(ctx) as vault:
        if manifest_file is not None:
            version, dropped = triage.hold_manifest(
                vault.store, manifest_file.read_bytes(), vault.keyring.org_public, today()
            )
            vault.save_store()
            click.echo(f"holding key manifest version {version}")
            # This desk's own keys the signing desk retired sign nothing more: their seeds go.
            gone = vault.keyring.drop_signing(dropped)
            if gone:
                vault.save_keyring()
                click.echo(f"retired by the signing desk, no longer signing: {', '.join(gone)}")
        if out is not None:
            count = write_sync(vault, out)
            vault.save_store()  # an update written again as this desk's current key
            click.echo(f"wrote {count} triage updates to {out} (upload it as a reply bundle)")
