"""The Flask front end. It seals (no-JS path) but never opens an envelope: no secret key here."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from .config import load_config

ROOT = Path(__file__).resolve().parents[2]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; ``config`` (a dict, for tests) overrides the environment."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(load_config(config))
    from . import source

    app.register_blueprint(source.bp)
    return app
