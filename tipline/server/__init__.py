"""The Flask front end. It seals (no-JS path) but never opens an envelope: no secret key here."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from .config import load_config

ROOT = Path(__file__).resolve().parents[2]


def make_store(config: Mapping[str, Any]) -> Any:
    """The blob store the configuration names: the local folder, or an S3 bucket."""
    from .blobs import BlobStore

    root = Path(config["DATA_DIR"]) / "blobs"
    if config.get("BLOB_STORE", "local") == "s3":
        from .s3store import S3BlobStore

        return S3BlobStore(
            root,
            config["MIN_FREE_BYTES"],
            endpoint=config["S3_ENDPOINT"],
            bucket=config["S3_BUCKET"],
            access_key=config["S3_ACCESS_KEY"],
            secret_key=config["S3_SECRET_KEY"],
            region=config["S3_REGION"],
            part_size=config["MAX_CHUNK_SIZE"],
        )
    return BlobStore(root, config["MIN_FREE_BYTES"])


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; ``config`` (a dict, for tests) overrides the environment."""
    from . import (
        admin,
        api,
        assets,
        auth,
        cache,
        db,
        digest_views,
        errors,
        i18n,
        journalist,
        journalist_api,
        limits,
        security,
        source,
    )
    from .extensions import csrf
    from .spooled import SealingRequest

    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(load_config(config))
    # The app-wide bound; security._limit_body sets a tighter one per endpoint.
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_SUBMISSION_SIZE"] + (2 << 20)
    app.request_class = SealingRequest
    store = make_store(app.config)
    app.extensions["tipline.blobs"] = store
    # New blobs wait in pending/ for the hour to pass (blobs.py): a thread per worker moves them.
    app.before_request(store.start_hourly_publisher)
    security.init_app(app)
    assets.init_app(app, ROOT / "static")
    cache.init_app(app)
    db.init_app(app)
    csrf.init_app(app)
    limits.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)
    app.register_blueprint(source.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(journalist.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(digest_views.bp)
    app.register_blueprint(journalist_api.bp)
    csrf.exempt(journalist_api.bp)  # bearer tokens, never cookies: nothing to forge
    return app
