"""The journalist JSON API: bearer tokens (hashed at rest), the same operations as the pages,
bounded input, and an OpenAPI document that agrees with the routes.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tipline import bundle
from tipline.server import accounts, db
from tipline.server.journalist_api import document
from tipline.server.models import ApiToken, Reply, Submission, new_id

from .conftest import Keys, staff_token
from .test_journalist import reply_bundle, reply_envelope, store_source


@pytest.fixture
def token(app: Flask) -> str:
    return staff_token(app, "scripter")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_are_needed_and_hashed(app: Flask, client: FlaskClient, token: str) -> None:
    assert client.get("/api/journalist/sources").status_code == 401
    assert client.get("/api/journalist/sources", headers=auth("tl_wrong")).status_code == 401
    assert client.get("/api/journalist/sources", headers=auth(token)).status_code == 200
    with app.app_context():
        (row,) = db.session().scalars(select(ApiToken)).all()
        assert token.encode() not in row.token_hash and len(row.token_hash) == 32
        account = accounts.by_username(db.session(), "scripter")
        assert account is not None
        accounts.set_disabled(db.session(), account, True)
    assert client.get("/api/journalist/sources", headers=auth(token)).status_code == 401


def test_api_operations(app: Flask, org_keys: Keys, client: FlaskClient, token: str) -> None:
    stored = store_source(app, [org_keys.alice.public.public_key], 3)
    h = auth(token)
    listing = client.get("/api/journalist/sources?limit=10", headers=h).get_json()
    assert listing["sources"][0]["id"] == stored.source_id and listing["next"] is None
    subs = client.get(f"/api/journalist/sources/{stored.source_id}/submissions", headers=h)
    body = subs.get_json()
    assert {s["id"] for s in body["submissions"]} == set(stored.submissions)
    assert body["submissions"][0]["sealed_to"] == ["Alice"]
    star = client.post(
        f"/api/journalist/sources/{stored.source_id}/star", json={"starred": True}, headers=h
    )
    assert star.get_json() == {"starred": True}
    export = client.post("/api/journalist/export", json={"ids": stored.submissions[:2]}, headers=h)
    reader = bundle.BundleReader(io.BytesIO(export.get_data()), bundle.KIND_EXPORT)
    assert [e.item.id for e in reader] == stored.submissions[:2]
    marked = client.post(
        "/api/journalist/submissions/downloaded", json={"ids": stored.submissions}, headers=h
    )
    assert marked.get_json() == {"marked": 1}
    gone = client.post(
        "/api/journalist/submissions/delete",
        json={"ids": stored.submissions[:1], "confirm": True},
        headers=h,
    )
    assert gone.get_json() == {"deleted": 1}
    pub = bytes(stored.reply_key.public_key)
    data = reply_bundle(
        [(new_id(), stored.source_id, reply_envelope(pub, org_keys.alice.public.public_key, "hi"))]
    )
    up = client.post(
        "/api/journalist/replies", data=data, headers=h, content_type="application/octet-stream"
    )
    assert up.status_code == 201 and up.get_json() == {"added": 1, "already": 0}
    again = client.post(
        "/api/journalist/replies", data=data, headers=h, content_type="application/octet-stream"
    )
    assert again.get_json() == {"added": 0, "already": 1}
    with app.app_context():
        assert len(db.session().scalars(select(Reply)).all()) == 1
        assert len(db.session().scalars(select(Submission)).all()) == 2


def test_api_bad_input(app: Flask, org_keys: Keys, client: FlaskClient, token: str) -> None:
    stored = store_source(app, [org_keys.alice.public.public_key], 1)
    h = auth(token)
    bad: list[tuple[str, str, Any]] = [
        ("get", "/api/journalist/sources?limit=0", None),
        ("get", "/api/journalist/sources?after=xyz", None),
        ("post", "/api/journalist/export", {"ids": "all"}),
        ("post", "/api/journalist/export", {"ids": ["nope"]}),
        ("post", "/api/journalist/submissions/delete", {"ids": stored.submissions}),
        ("post", f"/api/journalist/sources/{stored.source_id}/star", {"starred": "yes"}),
        ("post", "/api/journalist/submissions/downloaded", {"ids": ["a" * 32] * 1001}),
    ]
    for method, path, body in bad:
        response = getattr(client, method)(path, json=body, headers=h)
        assert response.status_code == 400, (path, body)
        assert "error" in response.get_json()
    # Well-formed ids that name nothing are not a malformed request (docs/openapi.json).
    gone = client.post("/api/journalist/export", json={"ids": ["0" * 32]}, headers=h)
    assert gone.status_code == 404 and "no longer exist" in gone.get_json()["error"]
    truncated = reply_bundle(
        [
            (
                new_id(),
                stored.source_id,
                reply_envelope(
                    bytes(stored.reply_key.public_key), org_keys.alice.public.public_key, "x"
                ),
            )
        ]
    )[:-5]
    response = client.post(
        "/api/journalist/replies",
        data=truncated,
        headers=h,
        content_type="application/octet-stream",
    )
    assert response.status_code == 400 and "truncated" in response.get_json()["error"]
    with app.app_context():
        assert db.session().scalars(select(Reply)).all() == []
        assert len(db.session().scalars(select(Submission)).all()) == 1


def test_openapi_document_matches_routes(app: Flask, client: FlaskClient) -> None:
    served = client.get("/api/journalist/openapi.json")
    assert served.status_code == 200 and served.get_json() == document()
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("journalist_api."):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/journalist"))
            for method in rule.methods - {"HEAD", "OPTIONS"}:  # type: ignore[operator]
                routes.add((path, method.lower()))
    documented = {(path, method) for path, ops in document()["paths"].items() for method in ops}
    assert routes == documented
