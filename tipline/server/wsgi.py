"""The WSGI entry point for gunicorn: ``gunicorn -c python:tipline.server.gunicorn_conf
tipline.server.wsgi:app``, configured by ``TIPLINE_*`` variables. Request bodies get a read
timeout (``bodytimeout``), so a stalled upload cannot hold a worker thread."""

from __future__ import annotations

from . import create_app
from .bodytimeout import BodyTimeout

flask_app = create_app()
app = BodyTimeout(flask_app)
