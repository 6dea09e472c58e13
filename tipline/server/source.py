"""The source interface: what a source sees in Tor Browser."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from ..crypto.keys import fingerprint

bp = Blueprint("source", __name__)


@bp.get("/")
def index() -> str:
    """The landing page: what this is, and the org key's fingerprint to check."""
    return render_template(
        "source/index.html", fingerprint=fingerprint(current_app.config["ORG_PUBLIC_KEY_BYTES"])
    )
