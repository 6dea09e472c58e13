"""A read timeout on request bodies, so a client that stops sending frees its thread.

gunicorn's gthread workers give each request a thread until its body is read and its answer
sent; a body that stalls after a few bytes would hold that thread for good, and a few dozen of
them would hold all of them. nginx already drops a body that goes 60 s without a byte
(``client_body_timeout`` in deploy/nginx/tipline-common.conf) and with it the connection to the
app; this is the app's own limit behind it, for anything that reaches gunicorn's socket
another way. A read that times out is treated as a dropped connection (werkzeug's
``ClientDisconnected``, a 400 the app already handles for a source whose circuit broke).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from werkzeug.exceptions import ClientDisconnected

# Longer than nginx's client_body_timeout, so nginx, which can answer the client, acts first.
BODY_READ_TIMEOUT = 75.0

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _TimedInput:
    """``wsgi.input`` whose reads raise ClientDisconnected when the socket times out."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def read(self, *args: Any) -> bytes:
        try:
            return bytes(self._stream.read(*args))
        except TimeoutError:
            raise ClientDisconnected() from None

    def readline(self, *args: Any) -> bytes:
        try:
            return bytes(self._stream.readline(*args))
        except TimeoutError:
            raise ClientDisconnected() from None

    def readlines(self, *args: Any) -> list[bytes]:
        try:
            return list(self._stream.readlines(*args))
        except TimeoutError:
            raise ClientDisconnected() from None

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class BodyTimeout:
    """WSGI middleware: under gunicorn, every read of the request's socket times out after
    ``seconds`` without data (other servers pass through unchanged)."""

    def __init__(self, app: WSGIApp, seconds: float = BODY_READ_TIMEOUT) -> None:
        self.app = app
        self.seconds = seconds

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        sock = environ.get("gunicorn.socket")
        if isinstance(sock, socket.socket):
            # gthread sets the socket blocking again before each request, which clears this.
            sock.settimeout(self.seconds)
            environ["wsgi.input"] = _TimedInput(environ["wsgi.input"])
        return self.app(environ, start_response)
