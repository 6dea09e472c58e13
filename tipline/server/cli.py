"""``tipline-server``: run and administer the server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

import click

from ..crypto.encoding import b64e
from ..crypto.errors import ManifestError, TiplineError


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


@cli.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    from . import db
    from .config import load_config

    config = load_config()
    engine = db.make_engine(config["DATABASE_URL"])
    try:
        db.upgrade(engine, Path(config["DATA_DIR"]))
    finally:
        engine.dispose()
    click.echo("tipline-server: database is up to date", err=True)


@cli.group("manifest")
def manifest_group() -> None:
    """Signed key manifests."""


@manifest_group.command("install")
@click.argument("file", type=click.File("rb"))
def manifest_install(file: BinaryIO) -> None:
    """Verify a signed key manifest against the org key and make it current."""
    from ..crypto.manifest import MAX_SIGNED_MANIFEST
    from . import create_app, db, keyset

    data = file.read(MAX_SIGNED_MANIFEST + 1)
    if len(data) > MAX_SIGNED_MANIFEST:
        raise ManifestError("the file is larger than a signed manifest can be")
    app = create_app()
    try:
        with app.app_context():
            body = keyset.install(db.session(), data, app.config["ORG_PUBLIC_KEY_BYTES"])
    finally:
        db.engine_of(app).dispose()
    click.echo(
        f"tipline-server: installed key manifest version {body.version} "
        f"({len(body.recipients)} recipient keys)",
        err=True,
    )


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
