"""The client-side path's API: resumable uploads (a first-time source's stored only with its
submission), refusals, replies."""

from __future__ import annotations

import base64
import datetime
import io
import os
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tipline.crypto import format as fmt
from tipline.crypto.codename import derive, generate
from tipline.crypto.encoding import b64e
from tipline.crypto.envelope import open_envelope
from tipline.crypto.errors import EnvelopeFormatError
from tipline.server import db, keyset
from tipline.server.models import Source, Submission, Upload
from tipline.server.uploads import max_envelope_size, plausible_size
from tipline.wordlist import load_wordlist

from .conftest import Keys, csrf_token, sealed_submission
from .replies import add_reply


class Browser:
    """What the page controller does, step by step, with the CSRF header on every change."""

    def __init__(self, client: FlaskClient, recipient: bytes) -> None:
        self.client = client
        self.recipient = recipient
        self.token = csrf_token(client)
        self.codename = generate(load_wordlist())
        self.derived = derive(self.codename)
        self.stored = False  # the source exists once its first upload finished

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"X-CSRFToken": self.token}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def create(self, envelope: bytes, version: int = 1) -> Any:
        try:
            size = fmt.header_size_from_prefix(envelope[:11])
        except EnvelopeFormatError:
            size = fmt.header_size(1)  # a broken envelope: send what a one-key header would be
        body: dict[str, Any] = {
            "manifest_version": version,
            "header": b64e(envelope[:size]),
            "size": len(envelope),
        }
        if not self.stored:
            body["login_token"] = b64e(self.derived.login_token)
            body["reply_public_key"] = b64e(self.derived.reply_public_key)
        return self.call("POST", "/api/source/uploads", json=body)

    def send(self, envelope: bytes) -> Any:
        """Create, upload whole and finish; a first-time source is stored and logged in."""
        created = self.create(envelope)
        assert created.status_code == 201, created.text
        upload_id, offset = created.json["id"], created.json["received"]
        assert self.put(upload_id, offset, envelope[offset:]).status_code == 200
        return self.finish(upload_id)

    def finish(self, upload_id: str) -> Any:
        done = self.call("POST", f"/api/source/uploads/{upload_id}/finish")
        if done.status_code == 201:
            self.stored = True
            self.token = done.json["csrf_token"]  # a new session: logged in as the source
        return done

    def register(self) -> None:
        """Become a stored source the only way there is: by sending a first submission."""
        envelope = sealed_submission(
            [self.recipient],
            "first",
            {},
            self.derived.reply_public_key,
        )
        assert self.send(envelope).status_code == 201

    def put(self, upload_id: str, offset: int, data: bytes) -> Any:
        return self.call(
            "PUT",
            f"/api/source/uploads/{upload_id}?offset={offset}",
            data=data,
            content_type="application/octet-stream",
        )


@pytest.fixture
def browser(client: FlaskClient, org_keys: Keys) -> Browser:
    b = Browser(client, org_keys.alice.public.public_key)
    b.register()
    return b


def _envelope(keys: Keys, browser: Browser, message: str = "hello", **files: bytes) -> bytes:
    return sealed_submission(
        [keys.alice.public.public_key], message, files, browser.derived.reply_public_key
    )


def _count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(db.session().scalar(select(func.count()).select_from(model)) or 0)


def test_upload_in_chunks_with_a_resume(app: Flask, browser: Browser, org_keys: Keys) -> None:
    stored_before = _count(app, Submission)
    envelope = _envelope(org_keys, browser, "in chunks", **{"x.bin": bytes(300_000)})
    created = browser.create(envelope)
    assert created.status_code == 201, created.text
    upload_id, offset = created.json["id"], created.json["received"]
    step = 100_000
    first = browser.put(upload_id, offset, envelope[offset : offset + step])
    assert first.json["received"] == offset + step
    # The connection dropped after the server stored the next chunk but before the browser
    # heard back: the browser asks where to continue and does not send it twice.
    browser.put(upload_id, offset + step, envelope[offset + step : offset + 2 * step])
    again = browser.put(upload_id, offset + step, envelope[offset + step : offset + 2 * step])
    assert again.status_code == 409 and again.json["received"] == offset + 2 * step
    status = browser.call("GET", f"/api/source/uploads/{upload_id}")
    offset = status.json["received"]
    early = browser.call("POST", f"/api/source/uploads/{upload_id}/finish")
    assert early.status_code == 400
    while offset < len(envelope):
        offset = browser.put(upload_id, offset, envelope[offset : offset + step]).json["received"]
    done = browser.call("POST", f"/api/source/uploads/{upload_id}/finish")
    assert done.status_code == 201, done.text
    assert _count(app, Submission) == stored_before + 1
    with app.app_context():
        row = db.session().scalars(select(Submission).where(Submission.size == len(envelope))).one()
        assert row.size == len(envelope)
        with app.extensions["tipline.blobs"].open("submissions", row.id) as blob:
            assert blob.read() == envelope
            blob.seek(0)
            inner = open_envelope(blob, [org_keys.alice.secret_key])
    assert inner.message == "in chunks" and inner.sealed_by == "browser"
    assert _count(app, Upload) == 0
    assert not list(app.extensions["tipline.blobs"].uploads.iterdir())


def test_new_source_can_log_in_again(client: FlaskClient, browser: Browser) -> None:
    other = Browser(client.application.test_client(), browser.recipient)
    wrong = other.call("POST", "/api/source/login", json={"login_token": b64e(bytes(32))})
    assert wrong.status_code == 401 and "not known" in wrong.json["error"]
    ok = other.call(
        "POST", "/api/source/login", json={"login_token": b64e(browser.derived.login_token)}
    )
    assert ok.status_code == 200
    assert other.client.get("/api/source/replies").json == {"replies": []}


def test_state_changes_need_csrf(client: FlaskClient) -> None:
    reply = client.post("/api/source/uploads", json={"login_token": b64e(bytes(32))})
    assert reply.status_code == 400 and "expired" in reply.json["error"]


def test_uploads_need_a_session_or_a_new_source(client: FlaskClient, org_keys: Keys) -> None:
    b = Browser(client, org_keys.alice.public.public_key)
    b.stored = True  # claims a session it does not have, and sends no new source
    assert b.create(b"TIPLINE" + bytes(200)).status_code == 401


def test_a_source_is_stored_only_with_its_first_submission(app: Flask, org_keys: Keys) -> None:
    """A failed, refused or cancelled first attempt stores no source and logs nobody in; the
    attempt after it is a first-time source again (its page shows the codename)."""
    b = Browser(app.test_client(), org_keys.alice.public.public_key)
    envelope = _envelope(org_keys, b, "first try")
    created = b.create(envelope)
    assert created.status_code == 201
    upload_id = created.json["id"]
    assert _count(app, Source) == 0
    assert b.client.get("/api/source/replies").status_code == 401  # not logged in
    # Another session cannot touch this first-time upload.
    other = Browser(app.test_client(), org_keys.alice.public.public_key)
    assert other.call("GET", f"/api/source/uploads/{upload_id}").status_code == 401
    assert b.call("DELETE", f"/api/source/uploads/{upload_id}").status_code == 204
    assert _count(app, Source) == 0 and _count(app, Upload) == 0
    # A key rotation refuses the next one at finish: still nothing stored.
    created = b.create(envelope)
    upload_id, offset = created.json["id"], created.json["received"]
    assert b.put(upload_id, offset, envelope[offset:]).status_code == 200
    with app.app_context():
        keyset.install(
            db.session(), org_keys.signed(2, org_keys.bob), org_keys.org.public.public_key
        )
    assert b.finish(upload_id).status_code == 409
    assert _count(app, Source) == 0 and _count(app, Submission) == 0
    # The page reloads and sends again: the source and its submission arrive together.
    b.recipient = org_keys.bob.public.public_key
    again = sealed_submission([b.recipient], "second try", {}, b.derived.reply_public_key)
    created = b.call(
        "POST",
        "/api/source/uploads",
        json={
            "manifest_version": 2,
            "header": b64e(again[: fmt.header_size(1)]),
            "size": len(again),
            "login_token": b64e(b.derived.login_token),
            "reply_public_key": b64e(b.derived.reply_public_key),
        },
    )
    upload_id, offset = created.json["id"], created.json["received"]
    assert b.put(upload_id, offset, again[offset:]).status_code == 200
    assert b.finish(upload_id).status_code == 201
    with app.app_context():
        (source,) = db.session().scalars(select(Source)).all()
        assert source.token_hash == b.derived.token_hash and source.submitted
        (row,) = db.session().scalars(select(Submission)).all()
        assert row.source_id == source.id
    assert b.client.get("/api/source/replies").status_code == 200  # logged in now
    # The same codename cannot start a second source.
    twin = Browser(app.test_client(), b.recipient)
    twin.codename, twin.derived = b.codename, b.derived
    taken = twin.call(
        "POST",
        "/api/source/uploads",
        json={
            "manifest_version": 2,
            "header": b64e(again[: fmt.header_size(1)]),
            "size": len(again),
            "login_token": b64e(b.derived.login_token),
            "reply_public_key": b64e(b.derived.reply_public_key),
        },
    )
    assert taken.status_code == 400 and "taken" in taken.json["error"]


@pytest.mark.parametrize(
    "mutate, status, words",
    [
        (lambda e: b"NOTTIPL" + e[7:], 400, "malformed"),
        (lambda e: e[:8] + b"\x01" + e[9:], 400, "malformed"),
        (lambda e: e + bytes(5), 400, "not the size of an envelope"),
    ],
)
def test_bad_headers_are_refused(
    app: Flask, browser: Browser, org_keys: Keys, mutate: Any, status: int, words: str
) -> None:
    reply = browser.create(mutate(_envelope(org_keys, browser)))
    assert reply.status_code == status and words in reply.json["error"], reply.json
    assert _count(app, Upload) == 0
    assert not list(app.extensions["tipline.blobs"].uploads.iterdir())


def test_unknown_key_is_refused(app: Flask, browser: Browser, org_keys: Keys) -> None:
    envelope = sealed_submission(
        [org_keys.bob.public.public_key], "x", {}, browser.derived.reply_public_key
    )
    reply = browser.create(envelope)
    assert reply.status_code == 409 and "Reload the page" in reply.json["error"]
    assert _count(app, Upload) == 0


def test_key_rotation_needs_a_reload(app: Flask, browser: Browser, org_keys: Keys) -> None:
    stored_before = _count(app, Submission)
    envelope = _envelope(org_keys, browser)
    created = browser.create(envelope)
    assert created.status_code == 201
    with app.app_context():
        keyset.install(
            db.session(), org_keys.signed(2, org_keys.bob), org_keys.org.public.public_key
        )
    stale = browser.create(envelope, version=1)
    assert stale.status_code == 409 and "changed its keys" in stale.json["error"]
    # An upload begun before the rotation is refused at the end, and nothing is kept.
    upload_id, offset = created.json["id"], created.json["received"]
    browser.put(upload_id, offset, envelope[offset:])
    done = browser.call("POST", f"/api/source/uploads/{upload_id}/finish")
    assert done.status_code == 409
    assert _count(app, Submission) == stored_before and _count(app, Upload) == 0
    served = browser.client.get("/api/source/manifest").json
    assert served["type"] == "tipline-signed-key-manifest"
    body = base64.b64decode(served["body"])
    assert b'"version":2' in body  # the page now gets the new manifest


def test_size_limits(app_factory: Any, org_keys: Keys) -> None:
    app = app_factory(MAX_SUBMISSION_SIZE=200_000, MAX_CHUNK_SIZE=65536)
    browser = Browser(app.test_client(), org_keys.alice.public.public_key)
    browser.register()
    too_big = _envelope(org_keys, browser, **{"a": bytes(300_000)})
    assert browser.create(too_big).status_code == 400
    envelope = _envelope(org_keys, browser, **{"a": bytes(150_000)})
    created = browser.create(envelope)
    assert created.status_code == 201
    upload_id, offset = created.json["id"], created.json["received"]
    big_chunk = browser.put(upload_id, offset, envelope[offset : offset + 70_000])
    assert big_chunk.status_code == 413
    beyond = browser.put(upload_id, offset, envelope[offset:] + bytes(10))
    assert beyond.status_code in (400, 413)
    status = browser.call("GET", f"/api/source/uploads/{upload_id}")
    assert status.json["received"] == offset  # nothing refused was kept


def test_low_disk_space(app: Flask, browser: Browser, org_keys: Keys) -> None:
    envelope = _envelope(org_keys, browser)
    created = browser.create(envelope)
    upload_id, offset = created.json["id"], created.json["received"]
    app.extensions["tipline.blobs"].min_free = 1 << 62
    refused = browser.put(upload_id, offset, envelope[offset:])
    assert refused.status_code == 503 and "disk space" in refused.json["error"]
    assert browser.create(envelope).status_code == 503
    app.extensions["tipline.blobs"].min_free = 0
    # Nothing already acknowledged was lost: the upload goes on from where it was.
    assert browser.put(upload_id, offset, envelope[offset:]).status_code == 200
    assert browser.call("POST", f"/api/source/uploads/{upload_id}/finish").status_code == 201


def test_cancel_and_others_uploads(app: Flask, browser: Browser, org_keys: Keys) -> None:
    envelope = _envelope(org_keys, browser)
    upload_id = browser.create(envelope).json["id"]
    stranger = Browser(app.test_client(), org_keys.alice.public.public_key)
    stranger.register()
    assert stranger.call("GET", f"/api/source/uploads/{upload_id}").status_code == 404
    assert stranger.call("DELETE", f"/api/source/uploads/{upload_id}").status_code == 404
    assert browser.call("DELETE", f"/api/source/uploads/{upload_id}").status_code == 204
    assert _count(app, Upload) == 0
    assert not list(app.extensions["tipline.blobs"].uploads.iterdir())


def test_replies_api(app: Flask, browser: Browser, org_keys: Keys) -> None:
    reply_id = add_reply(app, browser.codename, org_keys.alice, "hello source")
    listing = browser.client.get("/api/source/replies").json["replies"]
    assert [r["id"] for r in listing] == [reply_id] and listing[0]["read"] is False
    assert browser.call("DELETE", f"/api/source/replies/{reply_id}").status_code == 409
    blob = browser.client.get(f"/api/source/replies/{reply_id}")
    inner = open_envelope(io.BytesIO(blob.data), [browser.derived.reply_secret_key])
    blob.close()
    assert inner.message == "hello source"
    assert browser.call("POST", f"/api/source/replies/{reply_id}/read").status_code == 200
    assert browser.call("DELETE", f"/api/source/replies/{reply_id}").status_code == 204
    assert browser.client.get("/api/source/replies").json == {"replies": []}


def test_plausible_sizes() -> None:
    assert plausible_size(fmt.ciphertext_size(4096, 1), 1)
    assert plausible_size(fmt.ciphertext_size(1 << 20, 3), 3)
    assert not plausible_size(fmt.ciphertext_size(4096, 1) + 1, 1)
    assert not plausible_size(fmt.ciphertext_size(4000, 1), 1)  # below the padding floor
    assert not plausible_size(fmt.ciphertext_size(4097, 1), 1)  # not a Padmé length
    assert max_envelope_size(1 << 31) > 1 << 31


def test_unfinished_uploads_expire(app: Flask, browser: Browser, org_keys: Keys) -> None:
    """By last activity (the partial file's mtime, kept to the hour), not by creation."""
    envelope = _envelope(org_keys, browser)
    idle = browser.create(envelope).json["id"]
    busy = browser.create(envelope).json["id"]
    store = app.extensions["tipline.blobs"]
    long_ago = time.time() - 49 * 3600
    with app.app_context():
        for upload_id in (idle, busy):
            row = db.session().get(Upload, upload_id)
            assert row is not None and row.created.minute == 0  # kept to the hour only
            row.created = row.created - datetime.timedelta(hours=49)
        db.session().commit()
    os.utime(store.upload_path(idle), (long_ago, long_ago))
    # The busy one got a chunk just now (started 49 hours ago on a slow circuit): it stays.
    header = fmt.header_size_from_prefix(envelope[:11])
    assert browser.put(busy, header, envelope[header : header + 1000]).status_code == 200
    assert store.upload_path(busy).stat().st_mtime % 3600 == 0  # the hour, not the moment
    assert browser.create(envelope).status_code == 201  # creating an upload sweeps old ones
    with app.app_context():
        assert db.session().get(Upload, idle) is None
        assert db.session().get(Upload, busy) is not None
    assert not store.upload_path(idle).exists()
    assert store.upload_path(busy).exists()
