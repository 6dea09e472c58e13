"""The shipped WSGI app with a 2 s body read timeout instead of 75 s, for
tests/deploy/test_gunicorn_guards.py (gunicorn ... tests.deploy.short_timeout_app:app)."""

from tipline.server.bodytimeout import BodyTimeout
from tipline.server.wsgi import flask_app

app = BodyTimeout(flask_app, 2.0)
