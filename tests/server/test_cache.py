"""The per-worker caches (tipline/server/cache.py): the key manifest and the settings are read
from memory, yet an install or a settings change made in one worker holds in every other worker
from its next request; a change made around the app holds within the TTL. Also the lazily made
spool file of the no-JS form.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from tipline.server import cache, db, keyset, settings, spooled
from tipline.server.models import InstalledManifest, Submission

from .conftest import Keys, csrf_token
from .replies import open_stored
from .test_api import Browser, _envelope
from .test_limits import redis_uri  # noqa: F401  (a fixture)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _served_version(app: Flask) -> int:
    served = app.test_client().get("/api/source/manifest")
    assert served.status_code == 200
    body = base64.b64decode(served.json["body"])  # type: ignore[index]
    for version in (1, 2, 3):
        if f'"version":{version}'.encode() in body:
            return version
    raise AssertionError(body[:200])


def _two_workers(app_factory: Any) -> tuple[Flask, Flask]:
    """Two apps on one data folder and one database, as two gunicorn workers are."""
    first: Flask = app_factory()
    second: Flask = app_factory(install=False)
    return first, second


def test_an_install_in_one_worker_holds_in_the_other_at_once(
    app_factory: Any, org_keys: Keys
) -> None:
    first, second = _two_workers(app_factory)
    browser = Browser(first.test_client(), org_keys.alice.public.public_key)
    browser.register()
    with first.app_context():
        before = db.session().scalars(select(Submission.id)).all()
    envelope = _envelope(org_keys, browser)
    started = browser.create(envelope)  # the first worker now holds manifest 1 in its cache
    assert started.status_code == 201 and _served_version(first) == 1
    with second.app_context():
        keyset.install(
            db.session(), org_keys.signed(2, org_keys.bob), org_keys.org.public.public_key
        )
    # No waiting: the first worker refuses Alice's retired key from its very next request.
    assert _served_version(first) == 2
    stale = browser.create(envelope, version=2)
    assert stale.status_code == 409 and "changed its keys" in stale.json["error"]
    upload_id, offset = started.json["id"], started.json["received"]
    assert browser.put(upload_id, offset, envelope[offset:]).status_code == 200
    done = browser.call("POST", f"/api/source/uploads/{upload_id}/finish")
    assert done.status_code == 409
    with first.app_context():
        assert db.session().scalars(select(Submission.id)).all() == before


def test_a_change_made_around_the_app_holds_within_the_ttl(
    app_factory: Any, org_keys: Keys
) -> None:
    app: Flask = app_factory()
    clock = Clock()
    cache.of(app).clock = clock
    assert _served_version(app) == 1
    with app.app_context():  # SQL typed by hand: no stamp is replaced
        db.session().add(InstalledManifest(version=2, file=org_keys.signed(2, org_keys.bob)))
        db.session().commit()
    assert _served_version(app) == 1  # still the cached copy
    clock.now += cache.TTL_SECONDS - 0.5
    assert _served_version(app) == 1
    clock.now += 1
    assert _served_version(app) == 2


def test_settings_saved_in_one_worker_hold_in_the_other(app_factory: Any) -> None:
    first, second = _two_workers(app_factory)
    client = first.test_client()
    assert client.get("/submit").status_code == 200
    with second.app_context():
        changed = settings.save(db.session(), settings.Settings(submissions_open=False))
    assert changed == ["submissions_open"]
    assert client.get("/submit").status_code == 503
    with second.app_context():
        settings.save(db.session(), settings.Settings(submissions_open=True))
    assert client.get("/submit").status_code == 200


def test_the_stamp_is_replaced_whole(tmp_path: Path) -> None:
    store = cache.Cache(tmp_path)
    assert store.stamp() == b""
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert store.get("x", load) == 1 and store.get("x", load) == 1
    store.changed()
    first = store.stamp()
    assert len(first) == 32 and store.get("x", load) == 2
    other = cache.Cache(tmp_path)  # another worker: sees the same stamp, keeps its own copy
    assert other.stamp() == first and other.get("x", load) == 3
    other.changed()
    assert store.stamp() != first and store.get("x", load) == 4
    assert [p.name for p in tmp_path.iterdir()] == [cache.STAMP_NAME]  # no temp file left


def test_an_unusable_stamp_costs_speed_not_correctness(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = cache.Cache(tmp_path)
    store.stamp_path.mkdir()  # neither readable as a file nor replaceable
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert [store.get("x", load) for _ in range(3)] == [1, 2, 3]  # never served from memory
    store.changed()  # the change was committed: this must not fail, only warn
    assert "other workers may keep the old values" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == [cache.STAMP_NAME]


def _form(token: str, filename: str, content: bytes) -> tuple[bytes, str]:
    """The no-JS form as a browser sends it: the file part is there even when empty."""
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\nhello\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"'
        "\r\nContent-Type: text/plain\r\n\r\n"
    ).encode()
    body += content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_an_empty_file_part_makes_no_spool_file(
    app: Flask, org_keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[object] = []
    real = spooled.tempfile.TemporaryFile

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(kwargs.get("dir"))
        return real(*args, **kwargs)

    monkeypatch.setattr(spooled.tempfile, "TemporaryFile", counting)
    client = app.test_client()
    body, content_type = _form(csrf_token(client), "", b"")
    page = client.post("/submit", data=body, content_type=content_type)
    assert page.status_code == 200, page.text
    assert made == []
    # A chosen file, even an empty one, is spooled and sealed as an attachment.
    body, content_type = _form(csrf_token(client), "empty.txt", b"")
    assert client.post("/submit", data=body, content_type=content_type).status_code == 200
    body, content_type = _form(csrf_token(client), "note.txt", b"in the file")
    assert client.post("/submit", data=body, content_type=content_type).status_code == 200
    assert made == [app.extensions["tipline.blobs"].tmp] * 2
    opened = []
    with app.app_context():
        ids = [s.id for s in db.session().scalars(select(Submission)).all()]
    for submission_id in ids:
        inner, files = open_stored(app, org_keys.alice, submission_id)
        opened.append(([(a.name, a.size) for a in inner.attachments], files))
    assert sorted(opened) == sorted(
        [([], []), ([("empty.txt", 0)], [b""]), ([("note.txt", 11)], [b"in the file"])]
    )


def test_a_spool_refuses_writes_after_its_part_ended(tmp_path: Path) -> None:
    spool = spooled.SpoolFile(tmp_path)
    assert spool.write(b"") == 0 and spool.size == 0
    spool.seek(0)
    with pytest.raises(ValueError, match="closed"):
        spool.write(b"late")
    assert spool.reader().read(10) == b""
    spool.close()


def test_a_change_on_one_app_server_reaches_the_others(
    tmp_path: Path,
    redis_uri: str,  # noqa: F811
) -> None:
    """Two caches with their own data folders and one Redis: a change through one is seen by
    the other at once. Control: without the shared Redis the other keeps its value (until the
    TTL). And with Redis gone, nothing cached is trusted."""
    loads = {"a": 0, "b": 0}

    def loader(name: str) -> Any:
        def load() -> int:
            loads[name] += 1
            return loads[name]

        return load

    for shared, seen in ((redis_uri, 2), ("memory://", 1)):
        a = cache.Cache(tmp_path / f"a{seen}", shared=shared)
        b = cache.Cache(tmp_path / f"b{seen}", shared=shared)
        loads.update(a=0, b=0)
        (tmp_path / f"a{seen}").mkdir()
        (tmp_path / f"b{seen}").mkdir()
        assert b.get("manifest", loader("b")) == 1
        a.changed()
        assert b.get("manifest", loader("b")) == seen
    down = cache.Cache(tmp_path / "a2", shared="redis+unix:///nonexistent/redis.sock")
    assert down.stamp() != down.stamp()
