"""The admin side: accounts, key manifest installation (summary first; forged, replayed and
rolled-back manifests refused), settings honoured by the source side, retention, audit log.
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from tipline.crypto import keys
from tipline.server import db, keyset, retention, settings
from tipline.server.models import AuditEntry, Submission

from .conftest import CliResult, Keys, make_staff, page_token, staff_login
from .test_journalist import multipart, store_source


@pytest.fixture
def admin(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert staff_login(app, client, make_staff(app, "chief", admin=True)).status_code == 303
    return client


def installed(app: Flask) -> int | None:
    with app.app_context():
        return keyset.installed_version(db.session())


def upload_manifest(client: FlaskClient, data: bytes) -> Any:
    token = page_token(client.get("/admin/").text)
    return multipart(
        client,
        "/admin/manifest",
        {"csrf_token": token, "manifest": FileStorage(io.BytesIO(data), "m.json", "manifest")},
    )


def test_add_account_shows_passphrase_once(app: Flask, admin: FlaskClient) -> None:
    token = page_token(admin.get("/admin/").text)
    made = admin.post("/admin/accounts", data={"csrf_token": token, "username": "newbie"})
    assert made.status_code == 201 and 'id="passphrase"' in made.text
    assert 'id="passphrase"' not in admin.get("/admin/").text
    taken = admin.post("/admin/accounts", data={"csrf_token": token, "username": "newbie"})
    assert taken.status_code == 400 and "taken" in taken.text
    assert admin.post("/admin/accounts", data={"username": "x2"}).status_code == 400


def test_manifest_summary_then_install(app: Flask, org_keys: Keys, admin: FlaskClient) -> None:
    v2 = org_keys.signed(2, org_keys.bob)
    summary = upload_manifest(admin, v2)
    assert summary.status_code == 200
    assert '<tr class="added"><td>added</td><td>no account</td><td>Bob</td>' in summary.text
    assert '<tr class="retired"><td>retired</td><td>no account</td><td>Alice</td>' in summary.text
    assert installed(app) == 1  # nothing happens before the confirmation
    confirm = admin.post(
        "/admin/manifest/confirm",
        data={
            "csrf_token": page_token(summary.text),
            "manifest": __import__("base64").b64encode(v2).decode(),
        },
    )
    assert confirm.status_code == 200 and "version 2 is now in force" in confirm.text
    assert installed(app) == 2
    with app.app_context():
        entry = (
            db.session()
            .scalars(select(AuditEntry).where(AuditEntry.action == "install-manifest"))
            .one()
        )
    assert entry.actor == "chief" and "1 added, 1 retired" in entry.detail


def test_bad_manifests_are_refused(app: Flask, org_keys: Keys, admin: FlaskClient) -> None:
    stranger = keys.OrgSecret.generate()
    today = datetime.datetime.now(datetime.UTC).date()
    from tipline.crypto.manifest import sign_manifest

    forged = sign_manifest(
        stranger, 5, [org_keys.bob.public], today, today + datetime.timedelta(days=9)
    )
    tampered = bytearray(org_keys.signed(3, org_keys.bob))
    tampered[60] ^= 1
    cases = {
        "forged": forged,
        "replayed": org_keys.signed(1),
        "tampered": bytes(tampered),
        "not json": b"\xff" * 100,
        "huge": b" " * (200 * 1024),
    }
    for name, data in cases.items():
        page = upload_manifest(admin, data)
        assert page.status_code in (400, 413), name
        assert installed(app) == 1, name
    # A confirmation carrying a manifest that is older than the installed one.
    token = page_token(admin.get("/admin/").text)
    import base64

    old = admin.post(
        "/admin/manifest/confirm",
        data={"csrf_token": token, "manifest": base64.b64encode(org_keys.signed(1)).decode()},
    )
    assert old.status_code == 400 and "not newer" in old.text
    assert admin.post("/admin/manifest/confirm", data={"manifest": "x"}).status_code == 400
    assert installed(app) == 1


def test_cli_install_manifest_shows_summary(
    tmp_path: Path,
    org_keys: Keys,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: Callable[..., CliResult],
) -> None:
    monkeypatch.setenv("TIPLINE_AUTO_MIGRATE", "true")
    v1, v2 = tmp_path / "v1.json", tmp_path / "v2.json"
    v1.write_bytes(org_keys.signed(1))
    v2.write_bytes(org_keys.signed(2, org_keys.alice, org_keys.bob))

    def run(*args: str, answer: str = "") -> tuple[int, str]:
        result = run_cli(*args, stdin=answer)
        return result.returncode, result.stderr

    code, err = run("install-manifest", "--yes", str(v1))
    assert code == 0 and "added" in err and "installed key manifest version 1" in err
    code, err = run("install-manifest", str(v2), answer="n\n")
    assert code != 0 and "added" in err and "Bob" in err and "kept" in err
    code, err = run("install-manifest", "--yes", str(v1))
    assert code == 1 and "not newer" in err
    code, err = run("install-manifest", str(v2), answer="y\n")
    assert code == 0 and "version 2" in err


def save(admin: FlaskClient, **values: Any) -> Any:
    data: dict[str, Any] = {
        "csrf_token": page_token(admin.get("/admin/").text),
        "org_name": "The Daily Example",
        "submissions_open": "y",
        "max_submission_size": "0",
        "retention_days_after_download": "0",
        "retention_max_days": "0",
        "languages": ["en", "fr", "ru"],
    }
    data.update(values)
    data = {k: v for k, v in data.items() if v is not None}
    return admin.post("/admin/settings", data=data)


def test_settings_are_honoured_by_the_source_side(app: Flask, admin: FlaskClient) -> None:
    source = app.test_client()
    assert save(admin).status_code == 200
    assert "The Daily Example" in source.get("/").text
    assert save(admin, submissions_open=None).status_code == 200
    assert source.get("/submit").status_code == 503
    assert save(admin, max_submission_size="3", languages=["en", "fr"]).status_code == 200
    page = source.get("/submit")
    assert page.status_code == 200 and f'data-max-size="{3 << 20}"' in page.text
    assert 'hreflang="ru"' not in page.text and 'hreflang="fr"' in page.text
    assert 'lang="en"' in source.get("/?lang=ru").text
    with app.app_context():
        log = db.session().scalars(select(AuditEntry).where(AuditEntry.action == "settings")).all()
    assert log and "languages" in log[-1].detail


def test_bad_settings_change_nothing(app: Flask, admin: FlaskClient) -> None:
    for bad in (
        {"max_submission_size": "-1"},
        {"max_submission_size": str(10**9)},
        {"retention_max_days": "x"},
        {"languages": ["en", "xx"]},
        {"languages": ["fr"]},
        {"org_name": "n" * 101},
        {"csrf_token": None},
    ):
        assert save(admin, **bad).status_code == 400, bad
    with app.app_context():
        assert settings.load(db.session()) == settings.Settings()


def test_retention(app: Flask, org_keys: Keys, admin: FlaskClient) -> None:
    stored = store_source(app, [org_keys.alice.public.public_key], 3)
    old, downloaded, fresh = stored.submissions
    today = datetime.date(2026, 11, 25)
    with app.app_context():
        session = db.session()
        row = session.get(Submission, old)
        assert row is not None
        row.received = today - datetime.timedelta(days=400)
        row = session.get(Submission, downloaded)
        assert row is not None
        row.received, row.downloaded = today - datetime.timedelta(days=20), True
        row.downloaded_on = today - datetime.timedelta(days=10)
        row = session.get(Submission, fresh)
        assert row is not None
        row.received = today
        session.commit()
        assert retention.run(session, app.extensions["tipline.blobs"], today).submissions == 0
    save(admin, retention_days_after_download="7", retention_max_days="365")
    with app.app_context():
        swept = retention.run(db.session(), app.extensions["tipline.blobs"], today)
        left = db.session().scalars(select(Submission.id)).all()
    assert swept.submissions == 2 and left == [fresh]
    store = app.extensions["tipline.blobs"]
    assert not store.path("submissions", old).exists()
    assert store.path("submissions", fresh).exists()
