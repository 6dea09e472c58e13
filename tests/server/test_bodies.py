"""Request bodies (security.py, spooled.py): a no-JS submission's CSRF token is checked before
its files are read, the spool keeps the free-space floor, the body limit is the admin's size,
and chunked bodies over a small limit are refused rather than parsed cut short.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from tipline.server import db, settings, spooled

from .conftest import csrf_token

MIB = 1 << 20


class Counting(io.BytesIO):
    """A request body that counts how much of it the server read, by either way of reading."""

    read_bytes = 0

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        self.read_bytes += len(chunk)
        return chunk

    def readinto(self, buffer: Any, /) -> int:
        done = super().readinto(buffer)
        self.read_bytes += done
        return done


def _form(token: str, size: int) -> tuple[str, bytes]:
    files = MultiDict(
        {
            "csrf_token": token,
            "message": "a tip",
            "files": FileStorage(io.BytesIO(secrets.token_bytes(size)), "doc.bin"),
        }
    )
    boundary, body = encode_multipart(files)
    return f"multipart/form-data; boundary={boundary}", body


def _post(client: FlaskClient, ctype: str, body: bytes, chunked: bool = False) -> Any:
    stream = Counting(body)
    headers = {"Transfer-Encoding": "chunked"} if chunked else {}
    response = client.post(
        "/submit",
        input_stream=stream,
        content_type=ctype,
        content_length=None if chunked else len(body),
        headers=headers,
        # As gunicorn and werkzeug's server say of a chunked body they decode.
        environ_overrides={"wsgi.input_terminated": True} if chunked else {},
    )
    return response, stream.read_bytes


def test_a_forged_submission_is_refused_before_its_files_are_read(
    app: Flask, monkeypatch: Any
) -> None:
    """Finding 3: a 3 MiB post with a wrong CSRF token is refused with the app's page after at
    most 4 KiB is read, and nothing is spooled. Control: the same body with the session's
    token is read to its end and stored."""
    spooled_writes: list[int] = []
    real_write = spooled.SpoolFile.write
    monkeypatch.setattr(
        spooled.SpoolFile,
        "write",
        lambda self, data: spooled_writes.append(len(data)) or real_write(self, data),
    )
    client = app.test_client()
    token = csrf_token(client, "/submit")
    ctype, forged = _form("forged-token", 3 * MIB)
    response, read = _post(client, ctype, forged)
    assert read <= 4096 and spooled_writes == []
    assert response.status_code == 400
    assert "The form expired" in response.text and "<html" in response.text

    ctype, honest = _form(token, 3 * MIB)
    response, read = _post(client, ctype, honest)
    assert response.status_code == 200
    assert read == len(honest) and sum(spooled_writes) == 3 * MIB


def test_the_spool_keeps_the_free_space_floor(app_factory: Any) -> None:
    """Below MIN_FREE_BYTES the no-JS path refuses with a 503 before the spool writes a byte
    (before, the spool filled the disk and only the blob write refused). Control: with the
    floor at 0 the same post is stored."""
    for floor, expected in ((1 << 62, 503), (0, 200)):
        app = app_factory(MIN_FREE_BYTES=floor, install=floor != 0)
        client = app.test_client()
        ctype, body = _form(csrf_token(client, "/submit"), MIB)
        opened: list[object] = []
        real_open = spooled.SpoolFile._open

        def spy(
            self: spooled.SpoolFile, opened: list[object] = opened, real: Any = real_open
        ) -> Any:
            opened.append(self)
            return real(self)

        spooled.SpoolFile._open = spy  # type: ignore[method-assign]
        try:
            response, _read = _post(client, ctype, body)
        finally:
            spooled.SpoolFile._open = real_open  # type: ignore[method-assign]
        assert response.status_code == expected
        assert bool(opened) == (expected == 200)


def _admin_limit(app: Flask, size: int) -> None:
    with app.app_context():
        current = settings.load(db.session())
        settings.save(db.session(), replace(current, max_submission_size=size))


def test_a_chunked_submission_gets_the_admins_limit(app: Flask) -> None:
    """A body without Content-Length is bounded by the admin's limit plus the form's overhead,
    not by the configured ceiling (2 GiB). Control: with the admin's limit raised the same
    chunked body is stored."""
    client = app.test_client()
    token = csrf_token(client, "/submit")
    ctype, body = _form(token, 3 * MIB)  # over 100 kB + 2 MiB of overhead
    _admin_limit(app, 100_000)
    response, read = _post(client, ctype, body, chunked=True)
    assert response.status_code == 413 and read < len(body)
    _admin_limit(app, 10 * MIB)
    response, read = _post(client, ctype, body, chunked=True)
    assert response.status_code == 200 and read == len(body)


def test_chunked_small_forms_over_the_limit_are_refused_not_cut(app: Flask) -> None:
    """Finding 10: a chunked URL-encoded form over 64 KiB is a 413, not parsed cut short at
    64 KiB (the token is at its end, so a cut form would be a CSRF failure, 400). Control: the
    same form under the limit is read whole (the token is found: a wrong codename, 401)."""
    client = app.test_client()
    token = csrf_token(client, "/login")
    for padding, expected in ((100_000, 413), (60_000, 401)):
        body = f"codename=x&pad={'x' * padding}&csrf_token={token}".encode()
        response = client.post(
            "/login",
            input_stream=io.BytesIO(body),
            content_type="application/x-www-form-urlencoded",
            headers={"Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )
        assert response.status_code == expected, padding


@pytest.fixture
def api_token(app: Flask) -> str:
    """A journalist's bearer token, made on the account page."""
    from .conftest import staff_token

    return staff_token(app, "scripter")


def test_reply_bundles_keep_the_free_space_floor(app: Flask, org_keys: Any, api_token: str) -> None:
    """A reply bundle sent through the API (no spool in between) is refused with a 503 below
    MIN_FREE_BYTES and nothing is stored; control: with the floor at 0 the same bundle is."""
    from tipline.server.models import new_id

    from .test_journalist import reply_bundle, reply_count, reply_envelope, store_source

    stored = store_source(app, [org_keys.alice.public.public_key], 1)
    envelope = reply_envelope(
        bytes(stored.reply_key.public_key), org_keys.alice.public.public_key, "hello"
    )
    data = reply_bundle([(new_id(), stored.source_id, envelope)])
    store = app.extensions["tipline.blobs"]
    headers = {"Authorization": f"Bearer {api_token}", "Content-Type": "application/octet-stream"}
    for floor, expected, count in ((1 << 62, 503, 0), (0, 201, 1)):
        store.min_free = floor
        response = app.test_client().post("/api/journalist/replies", data=data, headers=headers)
        assert response.status_code == expected
        assert reply_count(app) == count
