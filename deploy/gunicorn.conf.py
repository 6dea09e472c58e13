"""gunicorn settings for a Tipline server behind nginx (docs/DEPLOY.md).

Read by ``tipline-server serve`` (``deploy/systemd/tipline.service`` runs it; the same as
``gunicorn -c /opt/tipline/src/deploy/gunicorn.conf.py``); systemd hands over the listening
socket (``tipline.socket``, a Unix socket only nginx may open), so gunicorn never sees a client
address at all. The logging settings are the app's own (``tipline.server.gunicorn_conf``): no
access log, warnings and errors only, to stderr and so to the journal.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

from tipline.crypto.errors import TiplineError
from tipline.server import gunicorn_conf as _app
from tipline.server.config import load_config

# The app's logging and proxy settings, imported rather than repeated.
logger_class = _app.logger_class
accesslog = _app.accesslog
disable_redirect_access_to_syslog = _app.disable_redirect_access_to_syslog
errorlog = _app.errorlog
loglevel = _app.loglevel
forwarded_allow_ips = _app.forwarded_allow_ips
proxy_allow_ips = _app.proxy_allow_ips

wsgi_app = "tipline.server.wsgi:app"
# Used only by a bare `gunicorn -c` (`tipline-server serve` asks for --bind); under systemd the
# socket unit's file descriptor wins.
bind = ["unix:/run/tipline/gunicorn.sock"]

# A small server (1 to 2 cores, 1 to 2 GiB of memory). Threads, not processes: a no-JS upload
# from a slow Tor circuit holds its thread for as long as the source's upload takes (hours for
# a large file), and a gthread worker keeps answering the arbiter meanwhile, where a sync worker
# would be killed by the timeout in the middle of the upload. Every request streams its body
# (the app never holds a whole upload in memory), so threads cost little memory.
worker_class = "gthread"
workers = 2
# 32 requests at once. nginx lets at most 8 streamed bodies through (deploy/nginx/tipline.conf):
# fewer than one worker's threads, so each worker keeps threads for pages however they fall.
threads = 16
# How long a worker may go silent before the arbiter kills it (a hung process, not a long
# request: gthread workers keep notifying the arbiter while their threads stream uploads).
timeout = _app.timeout
# On restart, uploads in progress get this long to finish; systemd waits longer
# (TimeoutStopSec in tipline.service) so it never cuts them first.
graceful_timeout = 120
keepalive = 5
# A request body that stalls frees its thread: nginx drops it after 60 s without a byte, and
# the app's own read timeout (tipline.server.bodytimeout, 75 s, wired in tipline.server.wsgi)
# stands behind it. nginx also lets at most 8 streamed bodies in at once (half the threads),
# so pages keep answering while bodies are held.
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = 2000
max_requests_jitter = 200

# Request line and header limits: within nginx's large_client_header_buffers (8 KiB each) in
# deploy/nginx/tipline-common.conf, so a request nginx passes is one gunicorn accepts.
# Body sizes are bounded by the app per endpoint (tipline.server.security._limit_body) and by
# nginx's client_max_body_size, rendered from the same configuration (deploy/render.py).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# Files the app writes (blobs, spools, the SQLite database) are for the service user only.
umask = 0o077


def on_starting(server: Any) -> None:
    """Check the configuration once, before any worker forks, so a mistake is one clear line
    in the journal rather than every worker failing in turn.
    """
    try:
        load_config()
    except TiplineError as exc:
        raise SystemExit(f"tipline-server: {exc}") from None


def worker_exit(server: Any, worker: Any) -> None:
    """Close the worker's database connections as it stops. SQLite removes its write-ahead log
    and shared-memory files when the last connection closes; left to the interpreter's exit, a
    pooled connection may never be closed, and a stopped tip line kept ``tipline.db-wal`` (the
    installer's second run then checkpointed it away: a file changed that it should not touch).
    """
    wsgi = sys.modules.get("tipline.server.wsgi")
    if wsgi is not None:
        from tipline.server import db

        db.engine_of(wsgi.flask_app).dispose()


def on_exit(server: Any) -> None:
    """Once every worker has gone (closed or, past ``graceful_timeout``, killed), open and
    close the SQLite database once more, so no ``tipline.db-wal`` or ``-shm`` outlives the
    server: two workers closing at the same moment can each leave them, as does a worker
    killed with its connection open (``tipline.server.db.close_last``).
    """
    from sqlalchemy.exc import SQLAlchemyError

    from tipline.server import db

    # A worker killed at the graceful timeout may not be reaped yet, and holds its lock until
    # it is gone.
    for pid in list(server.WORKERS):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    try:
        closed = db.close_last(str(load_config()["DATABASE_URL"]))
    except (TiplineError, SQLAlchemyError) as exc:
        server.log.warning("tipline-server: the database was not closed last: %s", exc)
        return
    if not closed:  # (a tipline-server command, or a new master after USR2): it closes last
        server.log.info("tipline-server: another process still has the database open")
