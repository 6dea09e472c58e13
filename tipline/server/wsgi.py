"""The WSGI entry point for gunicorn: ``gunicorn -c python:tipline.server.gunicorn_conf
tipline.server.wsgi:app``, configured by ``TIPLINE_*`` variables."""

from __future__ import annotations

from . import create_app

app = create_app()
