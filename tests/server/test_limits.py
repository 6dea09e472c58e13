"""App limits (tipline/server/limits.py): work done is counted, refused requests are not, and
every worker counts in the same Redis. Each test runs against its own redis-server on a unix
socket; a missing redis-server is a failure (tools/test-deps.sh installs it).
"""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict
from werkzeug.test import encode_multipart

from tipline.crypto.encoding import b64e

from ..redis_server import redis_server
from .conftest import Keys, csrf_token, make_staff, next_code, page_token


@pytest.fixture
def redis_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway redis-server on a unix socket, no TCP port, nothing saved; its URI."""
    with redis_server(tmp_path_factory.mktemp("redis")) as uri:
        yield uri


def _submit(client: FlaskClient, message: str, token: str | None = None) -> Any:
    boundary, body = encode_multipart(
        MultiDict({"csrf_token": token or csrf_token(client, "/submit"), "message": message})
    )
    return client.post(
        "/submit", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def _limited(app_factory: Any, redis_uri: str, **extra: Any) -> Flask:
    config = {
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_SUBMIT": "3 per minute",
        "RATELIMIT_LOGIN": "5 per minute",
        "LIMITS_STORAGE": redis_uri,
        **extra,
    }
    app: Flask = app_factory(**config)
    return app


def test_a_thousand_refused_requests_leave_login_and_submission_working(
    app_factory: Any, redis_uri: str
) -> None:
    """Finding 2: wrong codenames, empty and forged posts and refused uploads spend nothing of
    the app-wide allowance; the source with the right codename logs in and a tip gets through.
    Control: three stored tips do use it up, so the fourth is refused (the limiter is live).
    """
    app = _limited(app_factory, redis_uri)
    honest = app.test_client()
    page = _submit(honest, "first tip")
    assert page.status_code == 200
    codename = re.search(r'id="codename">([a-z -]+)<', page.text)
    assert codename

    attacker = app.test_client()
    token = csrf_token(attacker, "/login")
    codes: dict[int, int] = {}
    for i in range(1000):
        kind = i % 5
        if kind == 0:  # a wrong codename, no JS
            r = attacker.post("/login", data={"csrf_token": token, "codename": "wrong " * 7})
        elif kind == 1:  # a wrong login token, JS
            r = attacker.post(
                "/api/source/login",
                json={"login_token": b64e(secrets.token_bytes(32))},
                headers={"X-CSRFToken": token},
            )
        elif kind == 2:  # an empty tip
            r = _submit(attacker, "", token)
        elif kind == 3:  # a forged one
            r = _submit(attacker, "spam", "forged")
        else:  # an upload a non-source may not start
            r = attacker.post("/api/source/uploads", json={}, headers={"X-CSRFToken": token})
        codes[r.status_code] = codes.get(r.status_code, 0) + 1
    assert 429 not in codes and sum(codes.values()) == 1000, codes

    source = app.test_client()
    login = source.post(
        "/login", data={"csrf_token": csrf_token(source, "/login"), "codename": codename.group(1)}
    )
    assert login.status_code == 200
    assert _submit(source, "second tip").status_code == 200
    assert _submit(source, "third tip").status_code == 200
    refused = _submit(source, "fourth tip")
    assert refused.status_code == 429
    assert "Too many attempts" in refused.text


def test_failed_staff_logins_are_limited_per_account(app_factory: Any, redis_uri: str) -> None:
    """Failed staff logins count against the account tried, in the shared storage: after five,
    that account is refused (429) even with the right password, while another account that
    was never tried logs in (the control for "per account", not one bucket for all).
    """
    app = _limited(app_factory, redis_uri)
    alice, bob = make_staff(app, "alice"), make_staff(app, "bob")
    client = app.test_client()
    token = page_token(client.get("/journalist/login").text)
    for _ in range(5):
        wrong = {"csrf_token": token, "username": "alice", "password": "x" * 20, "code": "1"}
        assert client.post("/journalist/login", data=wrong).status_code == 401

    def log_in(staff: Any) -> int:
        fresh = app.test_client()
        form = {
            "csrf_token": page_token(fresh.get("/journalist/login").text),
            "username": staff.username,
            "password": staff.password,
            "code": next_code(app, staff),
        }
        return fresh.post("/journalist/login", data=form).status_code

    assert log_in(alice) == 429
    assert log_in(bob) == 303


def test_the_count_is_shared_by_apps_on_one_storage(
    app_factory: Any, redis_uri: str, tmp_path: Path
) -> None:
    """Two app instances (as two workers are) on one Redis share the count; on memory:// each
    has its own (the control: the same sequence then gets through)."""
    for round, (storage, expected) in enumerate(((redis_uri, 429), ("memory://", 200))):
        first = _limited(app_factory, redis_uri, LIMITS_STORAGE=storage, install=round == 0)
        second = _limited(app_factory, redis_uri, LIMITS_STORAGE=storage, install=False)
        for app in (first, second):
            with app.app_context():
                from tipline.server.limits import limits

                limits().reset()
        a, b = first.test_client(), second.test_client()
        assert [_submit(a, f"tip {i}").status_code for i in range(3)] == [200] * 3
        assert _submit(b, "one more").status_code == expected, storage


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_gunicorn(tmp_path: Path, org_keys: Keys, env_extra: dict[str, str]) -> Any:
    import os

    port = _free_port()
    env = {
        **os.environ,
        "TIPLINE_DATA_DIR": str(tmp_path / "data"),
        "TIPLINE_ORG_PUBLIC_KEY": b64e(org_keys.org.public.public_key),
        "TIPLINE_MIN_FREE_BYTES": "0",
        "TIPLINE_RATELIMIT_SUBMIT": "3 per minute",
        **env_extra,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "1",
         "--worker-class", "sync", "--timeout", "120", "--bind", f"127.0.0.1:{port}",
         "tipline.server.wsgi:app"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return proc, port


class _Browser:
    """Just enough of a browser over http.client: one cookie, a new connection per request."""

    def __init__(self, port: int) -> None:
        self.port, self.cookie = port, ""

    def request(self, method: str, path: str, body: bytes = b"", ctype: str = "") -> Any:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if ctype:
            headers["Content-Type"] = ctype
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        found = response.getheader("Set-Cookie")
        if found:
            self.cookie = found.split(";", 1)[0]
        conn.close()
        return response.status, text

    def submit(self, message: str) -> int:
        _status, page = self.request("GET", "/submit")
        token = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert token, page[:300]
        boundary, body = encode_multipart(
            MultiDict({"csrf_token": token.group(1), "message": message})
        )
        status, _page = self.request(
            "POST", "/submit", body, f"multipart/form-data; boundary={boundary}"
        )
        return int(status)


def _stall(port: int) -> socket.socket:
    """A connection that sends half its headers and waits: the sync worker that accepts it is
    busy with it until it closes, so the next requests go to the other worker."""
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.5)
    return stalled


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.timeout(120)
def test_two_gunicorn_workers_share_the_count(
    tmp_path: Path, org_keys: Keys, redis_uri: str, app_factory: Any
) -> None:
    """Real gunicorn, two worker processes: worker Y stores the three tips the limit allows
    while worker X is held; then Y is held and X, asked for a fourth, refuses it, because it
    counts in the same Redis. Control: the same run on memory:// gets the fourth tip through
    (each worker had its own count, as Flask-Limiter's in-memory buckets did).
    """
    app = app_factory()  # migrates the SQLite database in data/ and installs the keys
    from tipline.server import db

    db.engine_of(app).dispose()
    for storage, expected in ((redis_uri, 429), ("memory://", 200)):
        proc, port = _start_gunicorn(
            tmp_path,
            org_keys,
            {"TIPLINE_LIMITS_STORAGE": storage, "TIPLINE_DATABASE_URL": app.config["DATABASE_URL"]},
        )
        try:
            browser = _Browser(port)
            deadline = time.monotonic() + 30
            while True:
                try:
                    browser.request("GET", "/")
                    break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline
                    time.sleep(0.1)
            held_x = _stall(port)
            assert [browser.submit(f"tip {i}") for i in range(3)] == [200] * 3
            held_y = _stall(port)
            held_x.close()
            time.sleep(0.5)
            assert browser.submit("one more") == expected, storage
            held_y.close()
        finally:
            proc.terminate()
            proc.wait(30)


def _most_argon2_at_once(monkeypatch: pytest.MonkeyPatch) -> int:
    """Eight password checks at once in threads, Argon2 replaced by a 0.1 s stand-in: how
    many ran together at most (each must still answer)."""
    import threading
    import types

    import nacl.pwhash

    from tipline.server import accounts

    running, most = [0], [0]
    lock = threading.Lock()

    def slow_verify(_stored: bytes, _candidate: bytes) -> bool:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.1)
        with lock:
            running[0] -= 1
        return True

    monkeypatch.setattr(nacl.pwhash, "verify", slow_verify)
    account: Any = types.SimpleNamespace(password_hash="$argon2id$stand-in")
    results: list[bool] = []

    def check() -> None:
        results.append(accounts.verify_password(account, "x" * 20))

    threads = [threading.Thread(target=check) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 8
    return most[0]


def test_argon2_runs_at_most_two_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight staff logins at once in one worker: at most two Argon2id checks (64 MiB each) run
    together, the others wait (none is refused). Control: with eight slots all eight run at
    once, so the count would see a missing bound."""
    import threading

    from tipline.server import accounts

    assert _most_argon2_at_once(monkeypatch) <= 2
    monkeypatch.setattr(accounts, "ARGON2_SLOTS", threading.BoundedSemaphore(8))
    assert _most_argon2_at_once(monkeypatch) > 2


def test_tips_get_through_while_the_limits_storage_is_down(
    app_factory: Any, redis_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With Redis gone the limits count nothing and say so in the log, but a tip is stored:
    refusing every tip while Redis restarts would serve an attacker. Control: with Redis up
    the same app refuses the fourth tip."""
    import logging

    app = _limited(app_factory, redis_uri)
    client = app.test_client()
    assert [_submit(client, f"tip {i}").status_code for i in range(4)] == [200, 200, 200, 429]
    socket_path = redis_uri.removeprefix("redis+unix://")
    subprocess.run(["redis-cli", "-s", socket_path, "shutdown", "nosave"], check=False)
    deadline = time.monotonic() + 10
    while Path(socket_path).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with caplog.at_level(logging.WARNING, logger="tipline.server.limits"):
        assert _submit(client, "while redis is down").status_code == 200
    assert "app limits are not counted" in caplog.text


@pytest.mark.parametrize("value", ["memcached://x", "", "redis+unix://relative.sock"])
def test_limits_storage_must_be_memory_or_redis(tmp_path: Path, value: str) -> None:
    """A storage the app cannot use is a clear configuration error at start; control: the
    default and a Redis socket are accepted."""
    from tipline.server.config import ConfigError, load_config

    base = {"DATA_DIR": str(tmp_path), "ORG_PUBLIC_KEY": b64e(b"\1" * 32)}
    with pytest.raises(ConfigError, match="LIMITS_STORAGE"):
        load_config({**base, "LIMITS_STORAGE": value})
    for good in ("memory://", "redis+unix:///run/x/redis.sock"):
        assert load_config({**base, "LIMITS_STORAGE": good})["LIMITS_STORAGE"] == good
