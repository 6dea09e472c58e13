"""The journalist pages: lists (keyset pages, metadata only), stars, export bundles, marking
downloaded, deleting with confirmation, and reply-bundle upload with every kind of bad bundle.
"""

from __future__ import annotations

import datetime
import io
import re
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from nacl.public import PrivateKey
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from tipline import bundle
from tipline.crypto.envelope import seal
from tipline.crypto.inner import Inner
from tipline.server import db
from tipline.server.models import AuditEntry, Reply, Source, Submission, new_id

from .conftest import Keys, make_staff, page_token, sealed_submission, staff_login


@dataclass
class Stored:
    source_id: str
    reply_key: PrivateKey
    submissions: list[str]


def store_source(app: Flask, recipients: list[bytes], count: int = 2, day: Any = None) -> Stored:
    """A source with ``count`` sealed submissions, written as the source side would."""
    reply_key = PrivateKey.generate()
    source = Source(
        id=new_id(),
        designation=f"tidy otter {new_id()[:4]}",
        token_hash=new_id().encode()[:32],
        reply_public_key=bytes(reply_key.public_key),
        created=day or datetime.date(2026, 11, 20),
    )
    ids = []
    store = app.extensions["tipline.blobs"]
    with app.app_context():
        db.session().add(source)
        db.session().commit()
        for n in range(count):
            data = sealed_submission(recipients, f"tip {n}", {}, bytes(reply_key.public_key))
            sid = new_id()
            size = store.write("submissions", sid, lambda f, d=data: f.write(d))
            db.session().add(Submission(id=sid, source_id=source.id, size=size))
            ids.append(sid)
        db.session().commit()
    return Stored(source.id, reply_key, ids)


@pytest.fixture
def journalist(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert staff_login(app, client, make_staff(app, "reporter")).status_code == 303
    return client


def token_of(client: FlaskClient, path: str = "/journalist/") -> str:
    return page_token(client.get(path).text)


def test_pages_need_login(client: FlaskClient) -> None:
    for path in ("/journalist/", "/journalist/replies", "/admin/"):
        page = client.get(path)
        assert page.status_code == 303 and page.headers["Location"].endswith("/journalist/login")


def test_source_list_pages_by_key(app: Flask, org_keys: Keys, journalist: FlaskClient) -> None:
    store = app.extensions["tipline.blobs"]
    with app.app_context():
        for n in range(120):
            db.session().add(
                Source(
                    id=new_id(),
                    designation=f"source {n}",
                    token_hash=new_id().encode(),
                    reply_public_key=bytes(32),
                    created=datetime.date(2026, 1, 1) + datetime.timedelta(days=n % 7),
                )
            )
        db.session().commit()
    assert store is not None
    seen: list[str] = []
    path = "/journalist/"
    pages = 0
    while path:
        page = journalist.get(path)
        assert page.status_code == 200
        seen += re.findall(r'href="/journalist/sources/([0-9a-f]{32})"', page.text)
        found = re.search(r'rel="next" href="([^"]+)"', page.text)
        path = found.group(1).replace("&amp;", "&") if found else ""
        pages += 1
    assert pages == 3 and len(seen) == 120 == len(set(seen))
    assert journalist.get("/journalist/?after=nonsense").status_code == 400


def test_source_page_shows_metadata_only(
    app: Flask, org_keys: Keys, journalist: FlaskClient
) -> None:
    stored = store_source(app, [org_keys.alice.public.public_key])
    page = journalist.get(f"/journalist/sources/{stored.source_id}")
    assert page.status_code == 200
    assert "Alice" in page.text  # the label of the key it was sealed to
    assert "tip 0" not in page.text  # the server cannot read it and shows nothing of it
    assert page.text.count('name="ids"') == 2
    assert journalist.get(f"/journalist/sources/{'0' * 32}").status_code == 404
    assert journalist.get("/journalist/sources/../../etc").status_code == 404


def test_star(app: Flask, org_keys: Keys, journalist: FlaskClient) -> None:
    stored = store_source(app, [org_keys.alice.public.public_key], 1)
    url = f"/journalist/sources/{stored.source_id}/star"
    assert journalist.post(url).status_code == 400  # no CSRF token
    assert journalist.post(url, data={"csrf_token": token_of(journalist)}).status_code == 303
    with app.app_context():
        assert db.session().get(Source, stored.source_id).starred  # type: ignore[union-attr]
    assert "★ starred" in journalist.get("/journalist/").text


def _read_bundle(data: bytes) -> dict[str, bytes]:
    reader = bundle.BundleReader(io.BytesIO(data), bundle.KIND_EXPORT)
    out = {}
    for entry in reader:
        out[entry.item.id] = entry.read()
        assert entry.finish()
    return out


def test_export_selected_and_mark_downloaded(
    app: Flask, org_keys: Keys, journalist: FlaskClient
) -> None:
    stored = store_source(app, [org_keys.alice.public.public_key], 3)
    token = token_of(journalist, f"/journalist/sources/{stored.source_id}")
    picked = stored.submissions[:2]
    response = journalist.post(
        "/journalist/selection",
        data={"csrf_token": token, "action": "export", "ids": picked},
    )
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.is_streamed
    items = _read_bundle(response.get_data())
    store = app.extensions["tipline.blobs"]
    assert set(items) == set(picked)
    for sid, data in items.items():
        assert store.path("submissions", sid).read_bytes() == data
    with app.app_context():
        flags = dict(db.session().execute(select(Submission.id, Submission.downloaded)).all())
    assert flags == {picked[0]: True, picked[1]: True, stored.submissions[2]: False}
    # Mark the third one by hand.
    journalist.post(
        "/journalist/selection",
        data={"csrf_token": token, "action": "downloaded", "ids": [stored.submissions[2]]},
    )
    with app.app_context():
        assert db.session().get(Submission, stored.submissions[2]).downloaded  # type: ignore[union-attr]


def test_export_new(app: Flask, org_keys: Keys, journalist: FlaskClient) -> None:
    a = store_source(app, [org_keys.alice.public.public_key], 2)
    b = store_source(app, [org_keys.alice.public.public_key], 1)
    token = token_of(journalist)
    first = journalist.post("/journalist/export-new", data={"csrf_token": token})
    assert set(_read_bundle(first.get_data())) == set(a.submissions + b.submissions)
    again = journalist.post("/journalist/export-new", data={"csrf_token": token})
    assert again.status_code == 404 and "nothing new" in again.text


def test_selection_is_validated(app: Flask, org_keys: Keys, journalist: FlaskClient) -> None:
    stored = store_source(app, [org_keys.alice.public.public_key], 1)
    token = token_of(journalist)
    for ids in ([], ["not-an-id"], ["0" * 32], ["a" * 32] * 1001):
        page = journalist.post(
            "/journalist/selection", data={"csrf_token": token, "action": "export", "ids": ids}
        )
        assert page.status_code in (400, 413), ids
    assert (
        journalist.post(
            "/journalist/selection", data={"action": "export", "ids": stored.submissions}
        ).status_code
        == 400
    )


def test_delete_needs_confirmation(app: Flask, org_keys: Keys, journalist: FlaskClient) -> None:
    stored = store_source(app, [org_keys.alice.public.public_key], 2)
    store = app.extensions["tipline.blobs"]
    token = token_of(journalist)
    ask = journalist.post(
        "/journalist/selection",
        data={"csrf_token": token, "action": "delete", "ids": stored.submissions[:1]},
    )
    assert ask.status_code == 200 and "Delete for good?" in ask.text
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Submission)) == 2
    unconfirmed = journalist.post(
        "/journalist/delete", data={"csrf_token": token, "ids": stored.submissions[:1]}
    )
    assert unconfirmed.status_code == 400
    done = journalist.post(
        "/journalist/delete",
        data={"csrf_token": token, "ids": stored.submissions[:1], "confirm": "yes"},
    )
    assert done.status_code == 200 and "1 submission deleted" in done.text
    assert not store.path("submissions", stored.submissions[0]).exists()
    assert store.path("submissions", stored.submissions[1]).exists()
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Submission)) == 1
        details = " ".join(e.detail for e in db.session().scalars(select(AuditEntry)))
    assert stored.source_id not in details and stored.submissions[0] not in details


def test_delete_source(app: Flask, org_keys: Keys, journalist: FlaskClient) -> None:
    stored = store_source(app, [org_keys.alice.public.public_key], 2)
    url = f"/journalist/sources/{stored.source_id}/delete"
    token = token_of(journalist)
    assert "Delete for good?" in journalist.post(url, data={"csrf_token": token}).text
    done = journalist.post(url, data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 200
    with app.app_context():
        assert db.session().get(Source, stored.source_id) is None
    for sid in stored.submissions:
        assert not app.extensions["tipline.blobs"].path("submissions", sid).exists()


# -- Reply bundles ------------------------------------------------------------------------------


def reply_envelope(reply_public: bytes, journalist_public: bytes, text: str) -> bytes:
    out = io.BytesIO()
    seal(
        out, [reply_public, journalist_public], Inner(kind="reply", sealed_by="desk", message=text)
    )
    return out.getvalue()


def reply_bundle(replies: list[tuple[str, str, bytes]]) -> bytes:
    """A reply bundle of (id, source id, envelope)."""
    items = [bundle.ReplyItem(i, s, len(e)) for i, s, e in replies]
    data = {i: e for i, _, e in replies}
    out = io.BytesIO()
    bundle.write_bundle(out, bundle.KIND_REPLY, items, lambda item: io.BytesIO(data[item.id]))
    return out.getvalue()


def multipart(client: FlaskClient, path: str, fields: dict[str, Any]) -> Any:
    """Post a form with files, encoded in memory (the test client would otherwise spool a
    big body to a temporary file of its own that it never closes)."""
    boundary, body = encode_multipart(MultiDict(fields))
    return client.post(path, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def upload(client: FlaskClient, data: bytes) -> Any:
    token = token_of(client, "/journalist/replies")
    bundle_file = FileStorage(io.BytesIO(data), "replies.tlb", "bundle")
    return multipart(client, "/journalist/replies", {"csrf_token": token, "bundle": bundle_file})


def reply_count(app: Flask) -> int:
    with app.app_context():
        return int(db.session().scalar(select(func.count()).select_from(Reply)) or 0)


def test_reply_bundle_upload_is_idempotent(
    app: Flask, org_keys: Keys, journalist: FlaskClient
) -> None:
    stored = store_source(app, [org_keys.alice.public.public_key], 1)
    pub, alice = bytes(stored.reply_key.public_key), org_keys.alice.public.public_key
    replies = [
        (new_id(), stored.source_id, reply_envelope(pub, alice, f"reply {n}")) for n in range(2)
    ]
    data = reply_bundle(replies)
    first = upload(journalist, data)
    assert first.status_code == 201 and "2 replies added" in first.text
    second = upload(journalist, data)
    assert second.status_code == 201 and "0 replies added, 2 already here" in second.text
    assert reply_count(app) == 2
    store = app.extensions["tipline.blobs"]
    for rid, _, envelope in replies:
        assert store.path("replies", rid).read_bytes() == envelope


def _bad_bundles(stored: Stored, org_keys: Keys) -> dict[str, bytes]:
    pub, alice = bytes(stored.reply_key.public_key), org_keys.alice.public.public_key
    good = reply_envelope(pub, alice, "hello")
    whole = reply_bundle([(new_id(), stored.source_id, good)])
    damaged = bytearray(whole)
    damaged[-40] ^= 1  # inside the last envelope's H record region or envelope
    return {
        "truncated": whole[:-10],
        "trailing": whole + b"x",
        "damaged": bytes(damaged),
        "unknown source": reply_bundle([(new_id(), "f" * 32, good)]),
        "not to the source": reply_bundle(
            [
                (
                    new_id(),
                    stored.source_id,
                    reply_envelope(org_keys.bob.public.public_key, alice, "hello"),
                )
            ]
        ),
        "not an envelope": reply_bundle([(new_id(), stored.source_id, b"\0" * len(good))]),
        "export kind": whole[:9] + b"\x01" + whole[10:],
        "half good": reply_bundle(
            [(new_id(), stored.source_id, good), (new_id(), stored.source_id, good[:-1] + b"!")]
        )[:-1],
    }


def test_bad_reply_bundles_store_nothing(
    app: Flask, org_keys: Keys, journalist: FlaskClient
) -> None:
    stored = store_source(app, [org_keys.alice.public.public_key], 1)
    store = app.extensions["tipline.blobs"]
    for name, data in _bad_bundles(stored, org_keys).items():
        page = upload(journalist, data)
        assert page.status_code == 400, name
        assert "refused, nothing was stored" in page.text, name
        assert reply_count(app) == 0, name
        assert not any(store.root.joinpath("replies").iterdir()), name


def test_oversized_reply_bundle(app_factory: Any, org_keys: Keys) -> None:
    app = app_factory(MAX_REPLY_BUNDLE=1000)
    client = app.test_client()
    staff_login(app, client, make_staff(app, "reporter"))
    stored = store_source(app, [org_keys.alice.public.public_key], 1)
    pub, alice = bytes(stored.reply_key.public_key), org_keys.alice.public.public_key
    data = reply_bundle([(new_id(), stored.source_id, reply_envelope(pub, alice, "x" * 5000))])
    page = upload(client, data + b"\0" * (2 << 20))
    assert page.status_code == 413
    assert reply_count(app) == 0
    assert upload(client, data).status_code == 400  # under the body limit, over the item limit


def test_reply_upload_needs_csrf(app: Flask, journalist: FlaskClient) -> None:
    page = multipart(
        journalist,
        "/journalist/replies",
        {"bundle": FileStorage(io.BytesIO(b"TLBUNDLE"), "r.tlb", "bundle")},
    )
    assert page.status_code == 400 and reply_count(app) == 0
