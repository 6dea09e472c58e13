"""``tipline-server serve``: the app under gunicorn, with the settings of
``deploy/gunicorn.conf.py``, on the addresses given or on the socket systemd hands over.

gunicorn runs in this very process (not as a child), so systemd's socket activation works
unchanged: ``LISTEN_PID`` names this process, and gunicorn's arbiter takes the sockets and
tells systemd it is ready (``Type=notify``).
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any

from gunicorn import util
from gunicorn.app.base import Application

from ..crypto.errors import TiplineError
from . import ROOT

GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
MAX_BINDS = 8
_HOST_PORT = re.compile(
    r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[A-Za-z0-9.-]{1,253})):(?P<port>\d{1,5})$"
)


class ServeError(TiplineError):
    """the server cannot start"""


def check_bind(value: str) -> str:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``unix:PATH``, as gunicorn's ``--bind`` takes it."""
    if value.startswith("unix:"):
        path = value[len("unix:") :]
        if not path or "\0" in path or len(os.fsencode(path)) > 107:
            raise ServeError(f"{value!r}: a Unix socket path is 1 to 107 bytes")
        return value
    found = _HOST_PORT.match(value)
    if found is None or not 0 < int(found["port"]) < 65536:
        raise ServeError(f"{value!r} is not HOST:PORT, [IPv6]:PORT or unix:PATH")
    if found["v6"] is not None:
        try:
            ipaddress.IPv6Address(found["v6"])
        except ValueError:
            raise ServeError(f"{value!r}: {found['v6']} is not an IPv6 address") from None
    return value


def systemd_sockets() -> int:
    """How many listening sockets systemd handed to this process (0 when started by hand)."""
    try:
        if int(os.environ.get("LISTEN_PID", "0")) != os.getpid():
            return 0
        return max(int(os.environ.get("LISTEN_FDS", "0")), 0)
    except ValueError:
        return 0


class _Gunicorn(Application):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn configured from one settings file, with the binds this command was given."""

    def __init__(self, conf: Path, binds: list[str]) -> None:
        self.conf, self.binds = conf, binds
        super().__init__(prog="tipline-server serve")

    def load_config(self) -> None:
        self.load_config_from_file(str(self.conf))
        if self.binds:
            self.cfg.set("bind", self.binds)

    def load(self) -> Any:
        return util.import_app(self.cfg.wsgi_app)


def serve(binds: list[str], conf: Path = GUNICORN_CONF) -> None:
    """Run until stopped (SIGTERM or SIGINT: gunicorn lets requests in progress finish)."""
    from .config import load_config

    load_config()  # a mistake in the configuration is one line, before anything listens
    if len(binds) > MAX_BINDS:
        raise ServeError(f"at most {MAX_BINDS} addresses")
    for value in binds:
        check_bind(value)
    handed = systemd_sockets()
    if handed and binds:
        raise ServeError("systemd handed over a socket already: leave out --bind")
    if not handed and not binds:
        raise ServeError(
            "say where to listen: --bind 127.0.0.1:8080, --bind unix:PATH, "
            "or start it from a systemd socket unit (deploy/systemd/tipline.socket)"
        )
    if not conf.is_file():
        raise ServeError(f"{conf} is missing")
    _Gunicorn(conf, binds).run()
