"""The TCP tap itself (tests/browser/tap.py), without a browser: what it records of connections
that send at the same time."""

from __future__ import annotations

import gc
import socket
import socketserver
import warnings
from collections.abc import Iterator
from contextlib import closing, contextmanager

import pytest

from .source_fixtures import local_server
from .tap import tapped


class _Sink(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while self.request.recv(65536):
            pass


@contextmanager
def _sink() -> Iterator[int]:
    """A server that reads and drops whatever it is sent; yields its port."""
    with local_server(_Sink) as port:
        yield port


def test_a_body_cut_by_another_connection_is_recorded_whole() -> None:
    """One connection sends a body in two parts and another sends between them (as Chromium's
    /favicon.ico can, during an upload): the body is found whole, the other bytes too."""
    with _sink() as port, tapped(port) as tap:
        body = closing(socket.create_connection(("127.0.0.1", tap.port)))
        other = closing(socket.create_connection(("127.0.0.1", tap.port)))
        with body as a, other as b:
            a.sendall(b"PUT /upload\r\n\r\nBody-Part-One-")
            assert tap.seen(b"Body-Part-One-")
            b.sendall(b"GET /favicon.ico\r\n\r\n")
            assert tap.seen(b"GET /favicon.ico")
            a.sendall(b"Body-Part-Two")
            assert tap.seen(b"Body-Part-Two")
        sent = tap.sent()
        assert b"Body-Part-One-Body-Part-Two" in sent, sent
        assert b"GET /favicon.ico\r\n\r\n" in sent
        tap.clear()
        assert tap.sent() == b""


def test_connections_open_as_it_stops_are_closed(caplog: pytest.LogCaptureFixture) -> None:
    """Connections the tap has just accepted when it stops (a browser opens one as its context
    closes) are closed with it: none is left for the garbage collector to find open, which is
    a ResourceWarning, an error in this suite (test_source_tor.py failed on one)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with _sink() as port:
            for _ in range(3):
                with tapped(port) as tap:
                    address = ("127.0.0.1", tap.port)
                    clients = [socket.create_connection(address) for _ in range(50)]
                for client in clients:
                    client.close()
        gc.collect()
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
