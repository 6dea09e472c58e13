"""``tipline-server``: run and administer the server."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..crypto.encoding import b64e
from ..crypto.errors import TiplineError


@click.group()
def cli() -> None:
    """Run and administer a Tipline server."""


@cli.command()
@click.option("--data-dir", default="instance", show_default=True, type=click.Path())
@click.option("--port", default=8080, show_default=True)
def demo(data_dir: str, port: int) -> None:
    """Run locally on 127.0.0.1 with a demo key set (SQLite, a local blob folder)."""
    from ..demo import ensure_demo_keys
    from . import create_app

    org = ensure_demo_keys(Path(data_dir))
    app = create_app({"DATA_DIR": data_dir, "ORG_PUBLIC_KEY": b64e(org.public_key)})
    click.echo(f"tipline-server: demo tip line on http://127.0.0.1:{port}/", err=True)
    app.run(host="127.0.0.1", port=port)


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
