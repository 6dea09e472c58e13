"""Content-addressed static files: the source pages' scripts, the crypto Worker and its modules,
libsodium.js, the word list and the stylesheet, under the hashed names ``tools/build_static.py``
gives them (``static/build/assets.json``).

A hashed name changes whenever the file or anything it loads changes, so these files are served
with a year-long immutable cache: a returning source's page is ready to lock a tip at once, over
a Tor circuit that takes most of a second per round trip. Pages themselves stay ``no-store``.
"""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask, url_for

from ..crypto.errors import TiplineError

PREFIX = "build/"
FOLDER = "/static/build/assets/"  # the URL path of every hashed file
IMMUTABLE = "public, max-age=31536000, immutable"
# What a page that locks tips in the browser loads, after its own script: the Worker's module
# graph and the word list. The page announces them all at once (preload), so a first visit
# fetches them in one round trip instead of one per import level.
WORKER_GRAPH = (
    "js/source/common.js",
    "js/worker.js",
    "js/encoding.js",
    "js/padding.js",
    "js/sodium.js",
    "js/envelope.js",
    "js/manifest.js",
    "js/codename.js",
    "js/pow.js",
    "build/libsodium-wrappers.js",
    "build/libsodium.js",
    "build/eff-long.txt",
)


class AssetsMissingError(TiplineError):
    """static/build/assets.json is missing or damaged: run `make static`"""


class Assets:
    """The map from a source path under ``static/`` to its hashed file."""

    def __init__(self, manifest: Path) -> None:
        try:
            loaded = json.loads(manifest.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise AssetsMissingError() from exc
        if not isinstance(loaded, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
        ):
            raise AssetsMissingError()
        self.names: dict[str, str] = loaded

    def url(self, name: str) -> str:
        """The URL of the hashed copy of ``static/NAME``."""
        try:
            hashed = self.names[name]
        except KeyError as exc:
            raise AssetsMissingError() from exc
        return str(url_for("static", filename=PREFIX + hashed))

    def preloads(self) -> list[tuple[str, str]]:
        """(URL, kind) of every file a crypto page's Worker will load: "module" for scripts
        (``modulepreload``), "fetch" for the word list."""
        return [(self.url(n), "fetch" if n.endswith(".txt") else "module") for n in WORKER_GRAPH]


def init_app(app: Flask, static_folder: Path) -> None:
    """Load the map once and offer ``asset()`` and ``asset_preloads()`` to templates."""
    assets = Assets(static_folder / "build" / "assets.json")
    app.extensions["tipline.assets"] = assets
    app.jinja_env.globals["asset"] = assets.url
    app.jinja_env.globals["asset_preloads"] = assets.preloads
