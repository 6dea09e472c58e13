"""Nothing that identifies a visitor is logged or stored: address, browser, referrer, time.

Every route of the app (the source's, the journalist's, the admin's, ``/api``) is called with
distinctive probe headers. A recorder in front of the app notes the headers each request really
carried, so the test knows every probe arrived (a probe that never reaches the server proves
nothing). Then every place a leak could land is read: the log records (``caplog``), a real log
file that a root handler at DEBUG writes every record to (what gunicorn's error log would get),
the process's own stdout and stderr file descriptors, every database row, every file under the
data folder, and the rate limiter's keys. A second test plants each kind of leak and sees the
same reading find it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from sqlalchemy import inspect, select, text

from tipline.server import db
from tipline.server.models import Source, Submission

from .conftest import csrf_token

IP, AGENT, REFERER = "198.51.100.231", "PrivacyProbe/3.1", "http://probe-referer.example/x"
PROBES = (IP, AGENT, REFERER)
HEADERS = {
    "X-Forwarded-For": IP,
    "X-Real-IP": IP,
    "Forwarded": f"for={IP}",
    "User-Agent": AGENT,
    "Referer": REFERER,
}
SKIP_METHODS = {"HEAD", "OPTIONS"}


@dataclass
class Recorder:
    """WSGI middleware: what each request carried when it reached the app."""

    app: Callable[..., Any]
    seen: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.seen.append(
            {
                k: str(environ.get(k, ""))
                for k in (
                    "PATH_INFO",
                    "REQUEST_METHOD",
                    "REMOTE_ADDR",
                    "HTTP_X_FORWARDED_FOR",
                    "HTTP_USER_AGENT",
                    "HTTP_REFERER",
                )
            }
        )
        return self.app(environ, start_response)


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """Every log record of the process, at DEBUG, formatted into a real file."""
    path = tmp_path / "logs" / "server.log"
    path.parent.mkdir()
    handler = logging.FileHandler(path)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def _url(app: Flask, endpoint: str, arguments: Iterable[str]) -> str:
    values = {name: "probe0000" for name in arguments}
    with app.test_request_context():
        adapter = app.url_map.bind("localhost")
        return adapter.build(endpoint, values)


def call_every_route(app: Flask, client: FlaskClient, token: str) -> list[tuple[str, str, int]]:
    """Each route with each of its methods, probe headers on every request."""
    called = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        for method in sorted((rule.methods or set()) - SKIP_METHODS):
            url = _url(app, rule.endpoint, rule.arguments)
            data = {"csrf_token": token, "message": "hello", "codename": "x"}
            response = client.open(
                url, method=method, headers=HEADERS, data=data if method == "POST" else None
            )
            called.append((method, url, response.status_code))
            response.close()
    return called


def leaks(
    app: Flask,
    caplog: pytest.LogCaptureFixture,
    log_file: Path,
    capfd: pytest.CaptureFixture[str],
    folders: Iterable[Path],
) -> list[str]:
    """Where any probe value was found."""
    found = []
    records = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    out, err = capfd.readouterr()
    for where, content in (
        ("log records", records),
        ("log file", log_file.read_text()),
        ("stdout", out),
        ("stderr", err),
    ):
        found += [f"{v} in {where}" for v in PROBES if v in content]
    with app.app_context():
        session = db.session()
        for table in inspect(db.engine_of(app)).get_table_names():
            for row in session.execute(text(f"SELECT * FROM {table}")):
                found += [f"{v} in table {table}" for v in PROBES if v in repr(tuple(row))]
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and path != log_file:
                data = path.read_bytes()
                found += [f"{v} in {path}" for v in PROBES if v.encode() in data]
    keys = " ".join(str(k) for k in getattr(limits_storage(app), "storage", {}))
    found += [f"{v} in the rate limiter" for v in PROBES if v in keys]
    return found


def limits_storage(app: Flask) -> Any:
    """The storage the app's limits count in (``memory://`` in these tests)."""
    return app.extensions["tipline.limits"]._storage


@pytest.fixture
def probed_app(app_factory: Any) -> tuple[Flask, Recorder]:
    app: Flask = app_factory(RATELIMIT_ENABLED=True)
    recorder = Recorder(app.wsgi_app)
    app.wsgi_app = recorder  # type: ignore[method-assign]
    return app, recorder


def _probe(app: Flask, recorder: Recorder) -> list[tuple[str, str, int]]:
    client = app.test_client()
    client.environ_base.update(REMOTE_ADDR=IP, HTTP_USER_AGENT=AGENT)
    token = csrf_token(client)
    page = client.post("/submit", data={"csrf_token": token, "message": "hello"}, headers=HEADERS)
    assert page.status_code == 200
    called = call_every_route(app, client, token)
    # Positive control: every request reached the app carrying every probe.
    probed = [s for s in recorder.seen if s["HTTP_REFERER"] == REFERER]
    assert len(probed) == len(called) + 1
    for seen in probed:
        assert (seen["REMOTE_ADDR"], seen["HTTP_X_FORWARDED_FOR"], seen["HTTP_USER_AGENT"]) == (
            IP,
            IP,
            AGENT,
        ), seen
    return called


def test_distinctive_headers_go_nowhere(
    probed_app: tuple[Flask, Recorder],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    log_file: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    app, recorder = probed_app
    called = _probe(app, recorder)
    paths = {url for _, url, _ in called}
    assert any(p.startswith("/api") for p in paths), paths
    assert {"/submit", "/login"} <= paths and any(p.startswith("/journalist") for p in paths)
    assert len({r.rule for r in app.url_map.iter_rules()}) <= len(paths) + 1  # + static
    assert leaks(app, caplog, log_file, capfd, [tmp_path]) == []
    # The limits were in use (the stored tip was counted), keyed on the tip line as a whole.
    counted = [str(k) for k in getattr(limits_storage(app), "storage", {})]
    assert any(k.startswith("LIMITER/submission/all/") for k in counted), counted
    with app.app_context():
        session = db.session()
        source = session.scalars(select(Source)).one()
        submission = session.scalars(select(Submission)).one()
        # Dates, not times: a row says which day, never which minute.
        assert not hasattr(source.created, "hour") and not hasattr(submission.received, "hour")


LEAKS: dict[str, Callable[[Flask], None]] = {
    "a log record": lambda app: logging.getLogger("tipline.server.planted").debug(
        "from %s", request.headers.get("X-Forwarded-For")
    ),
    "stderr": lambda app: os.write(2, (request.user_agent.string + "\n").encode()),
    "stdout": lambda app: os.write(1, (request.referrer or "").encode() + b"\n"),
    "a file": lambda app: (Path(app.config["DATA_DIR"]) / "seen").write_text(
        request.referrer or ""
    ),
    "a table": lambda app: db.session().execute(
        text("UPDATE settings SET value = :v"), {"v": request.referrer}
    ),
}


@pytest.mark.parametrize("where", list(LEAKS))
def test_a_planted_leak_is_found(
    probed_app: tuple[Flask, Recorder],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    log_file: Path,
    capfd: pytest.CaptureFixture[str],
    where: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    app, recorder = probed_app
    plant = LEAKS[where]

    @app.before_request
    def leak() -> None:
        if request.referrer == REFERER:
            plant(app)
            if where == "a table":
                db.session().commit()

    if where == "a table":
        with app.app_context():
            db.session().execute(text("INSERT INTO settings (name, value) VALUES ('p', 'x')"))
            db.session().commit()
    _probe(app, recorder)
    found = leaks(app, caplog, log_file, capfd, [tmp_path])
    assert found, where


def test_the_rate_limiter_key_is_seen(
    probed_app: tuple[Flask, Recorder],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    log_file: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A limiter keyed on the client's address (a mutation that once passed) is found.
    app, recorder = probed_app
    assert hasattr(limits_storage(app), "storage")  # memory storage: its keys are readable
    from tipline.server import limits

    by_address = staticmethod(lambda who: __import__("flask").request.remote_addr or "all")
    monkeypatch.setattr(limits.Limits, "_key", by_address)
    _probe(app, recorder)
    assert f"{IP} in the rate limiter" in leaks(app, caplog, log_file, capfd, [tmp_path])


def test_proxy_headers_are_not_believed(app: Flask) -> None:
    with app.test_request_context(
        headers={"X-Forwarded-For": IP}, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    ):
        assert request.remote_addr == "127.0.0.1"  # no ProxyFix: nothing rewrites it
