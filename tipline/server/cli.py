"""``tipline-server``: run and administer the server."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import click
from flask import Flask
from sqlalchemy.orm import Session

from ..crypto.encoding import b64e
from ..crypto.errors import TiplineError


@click.group()
def cli() -> None:
    """Run and administer a Tipline server (configured by TIPLINE_* variables)."""


@cli.command()
@click.option("--data-dir", default="instance", show_default=True, type=click.Path())
@click.option("--port", default=8080, show_default=True)
def demo(data_dir: str, port: int) -> None:
    """Run locally on 127.0.0.1 with a demo key set (SQLite, a local blob folder)."""
    from werkzeug.serving import run_simple

    from ..demo import ensure_demo_keys
    from . import create_app, db, keyset
    from .security import QuietRequestHandler

    org = ensure_demo_keys(Path(data_dir))
    app = create_app({"DATA_DIR": data_dir, "ORG_PUBLIC_KEY": b64e(org.public_key)})
    with app.app_context():
        if keyset.current(db.session(), org.public_key) is None:
            data = (Path(data_dir) / "demo-keys" / "manifest.json").read_bytes()
            keyset.install(db.session(), data, org.public_key)
    click.echo(f"tipline-server: demo tip line on http://127.0.0.1:{port}/", err=True)
    run_simple("127.0.0.1", port, app, threaded=True, request_handler=QuietRequestHandler)


@cli.command()
@click.option(
    "--bind",
    "binds",
    multiple=True,
    metavar="ADDRESS",
    help="HOST:PORT or unix:PATH to listen on (again for more); "
    "leave out under systemd's tipline.socket.",
)
@click.option(
    "--config",
    "conf",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="gunicorn settings file [default: deploy/gunicorn.conf.py]",
)
def serve(binds: tuple[str, ...], conf: Path | None) -> None:
    """Run the tip line with gunicorn and deploy/gunicorn.conf.py (the production server)."""
    from . import serve as serving

    serving.serve(list(binds), conf or serving.GUNICORN_CONF)


@cli.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Create the tables or apply every pending migration, and say which it did."""
    from . import db
    from .config import load_config

    config = load_config()
    engine = db.make_engine(config["DATABASE_URL"])
    try:
        done = db.upgrade(engine, Path(config["DATA_DIR"]))
    finally:
        engine.dispose()
    click.echo(f"tipline-server: {done.describe()}", err=True)


@contextlib.contextmanager
def _app_db() -> Iterator[tuple[Flask, Session]]:
    """The configured app's database session, for one command."""
    from . import create_app, db

    app = create_app()
    try:
        with app.app_context():
            yield app, db.session()
    finally:
        db.engine_of(app).dispose()


def _add_account(username: str, is_admin: bool) -> None:
    from . import accounts, audit

    with _app_db() as (_app, session):
        passphrase = accounts.generate_passphrase()
        made = accounts.create(session, username, passphrase, is_admin=is_admin)
        role = "admin" if is_admin else "journalist"
        audit.record(session, "tipline-server", "add-account", f"{made.username} ({role})")
    click.echo(f"tipline-server: {role} {made.username} added; their passphrase:", err=True)
    click.echo(passphrase)
    click.echo("tipline-server: they set up two-factor login at their first login", err=True)


@cli.command("create-admin")
@click.argument("username")
def create_admin(username: str) -> None:
    """Create the first admin account (refused once an admin exists: add more in /admin/)."""
    from . import accounts

    with _app_db() as (_app, session):
        if accounts.count_admins(session):
            raise accounts.AccountError("an admin exists already; add accounts in /admin/")
    _add_account(username, True)


@cli.command("add-journalist")
@click.argument("username")
def add_journalist(username: str) -> None:
    """Add a journalist account; its generated passphrase is printed once, on stdout."""
    _add_account(username, False)


@cli.command("install-manifest")
@click.argument("file", type=click.File("rb"))
@click.option("--yes", is_flag=True, help="Install without asking (after showing the summary).")
def install_manifest(file: BinaryIO, yes: bool) -> None:
    """Verify a signed key manifest, show the keys it adds and retires, and install it."""
    from ..crypto.manifest import MAX_SIGNED_MANIFEST
    from . import audit, manifests

    data = file.read(MAX_SIGNED_MANIFEST + 1)
    with _app_db() as (app, session):
        org = app.config["ORG_PUBLIC_KEY_BYTES"]
        summary = manifests.preview(session, data, org)
        for line in summary.lines():
            click.echo(f"tipline-server: {line}", err=True)
        if not yes and not click.confirm("Install it?", err=True):
            raise click.exceptions.Abort()
        manifests.install(session, data, org)
        audit.record(
            session,
            "tipline-server",
            "install-manifest",
            f"version {summary.version}: {len(summary.added)} added, "
            f"{len(summary.retired)} retired",
        )
    click.echo(f"tipline-server: installed key manifest version {summary.version}", err=True)


@cli.command("sealed-to-retired")
def sealed_to_retired() -> None:
    """List the submissions sealed only to keys the manifest in force no longer lists."""
    from . import manifests
    from .sources import blobs

    with _app_db() as (app, session):
        items, more = manifests.sealed_only_to_retired(
            session, blobs(), app.config["ORG_PUBLIC_KEY_BYTES"]
        )
    for item in items:
        names = "; ".join(f"{n.short_id} {n.account or '-'} {n.label}" for n in item.keys)
        click.echo(f"{item.id}  source {item.source_id[:12]}  {item.received.isoformat()}  {names}")
    more_text = f" (only the oldest {len(items)} listed)" if more else ""
    click.echo(
        f"tipline-server: {len(items)} submissions sealed only to retired keys{more_text}",
        err=True,
    )


@cli.command("retention")
def retention_command() -> None:
    """Delete the ciphertext the retention settings say has expired (run daily by a timer)."""
    from . import retention, sweeper
    from .sources import blobs

    with _app_db() as (_app, session):
        swept = retention.run(session, blobs(), triage_max_days=_app.config["TRIAGE_MAX_DAYS"])
        cleaned = sweeper.run(session, blobs(), upload_ttl_hours=_app.config["UPLOAD_TTL_HOURS"])
    click.echo(
        f"tipline-server: retention deleted {swept.submissions} submissions, "
        f"{swept.replies} replies, {swept.sources} sources that never sent anything and "
        f"{swept.triage} triage updates",
        err=True,
    )
    click.echo(f"tipline-server: sweep {cleaned.describe()}", err=True)


@cli.command("sweep")
@click.option(
    "--grace",
    default=15 * 60,
    show_default=True,
    type=click.IntRange(min=0),
    help="Leave files younger than this many seconds (a request may be using them); 0 only "
    "when the server is stopped.",
)
def sweep_command(grace: int) -> None:
    """Publish pending blobs and remove what a crash left behind (retention does this too)."""
    from . import sweeper
    from .sources import blobs

    with _app_db() as (app, session):
        ttl = app.config["UPLOAD_TTL_HOURS"]
        cleaned = sweeper.run(session, blobs(), grace=grace, upload_ttl_hours=ttl)
    click.echo(f"tipline-server: sweep {cleaned.describe()}", err=True)


@cli.command("health")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON, for monitoring.")
def health_command(as_json: bool) -> None:
    """Check the tip line's health: database, free disk, key manifest and its expiry, last
    retention run, unfinished uploads, sources with no submissions, items sealed only to
    retired keys. Exit status: 0 all well, 1 a warning, 2 a failure."""
    import json

    from . import health
    from .sources import blobs

    with _app_db() as (app, session):
        result = health.report(
            session, blobs(), app.config["ORG_PUBLIC_KEY_BYTES"], app.config["UPLOAD_TTL_HOURS"]
        )
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
    else:
        for check in result.checks:
            click.echo(f"{check.status.name.lower():4}  {check.name:10} {check.summary}")
    sys.exit(int(result.status))


@cli.command("digest")
@click.option("--check", is_flag=True, help="Connect to the relay and log in; send nothing.")
def digest_command(check: bool) -> None:
    """Send today's daily digest to each journalist who asked for it (a timer runs it daily
    at one fixed time); a second run the same day sends nothing twice."""
    from . import digest, mailer, settings
    from .models import today

    with _app_db() as (app, session):
        if not app.config["DIGEST_ENABLED"]:
            click.echo(
                "tipline-server: the daily digest is off (DIGEST_ENABLED); nothing was sent",
                err=True,
            )
            return
        relay = mailer.Relay.from_config(app.config)
        if check:
            with mailer.session(relay):
                pass
            click.echo(
                f"tipline-server: {relay.describe()} took the connection"
                f"{' and the login' if relay.username else ''}; nothing was sent",
                err=True,
            )
            return
        org_name = settings.load(session).org_name
        result = digest.run(session, relay, app.config["DIGEST_SUBJECT"], org_name, today())
    click.echo(
        f"tipline-server: daily digest sent to {result.sent} journalists "
        f"({result.already} had today's already)",
        err=True,
    )
    for failure in result.failed:
        click.echo(f"tipline-server: not sent to {failure}", err=True)
    if result.failed:
        sys.exit(1)


def main() -> None:
    """Entry point: map Tipline errors to one line on stderr and exit code 1."""
    try:
        cli.main(standalone_mode=False)
    except TiplineError as exc:
        click.echo(f"tipline-server: {exc}", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
