"""The journalist and admin interface for browser tests: gunicorn (2 workers) on a loopback
port, with an admin account whose TOTP secret the test knows, and a source with submissions.
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Iterator
from dataclasses import dataclass

import pyotp
import pytest
from flask import Flask
from nacl.public import PrivateKey
from playwright.sync_api import Browser, BrowserContext

from tipline.crypto import keys, manifest
from tipline.crypto.encoding import b64e
from tipline.server import accounts, create_app, db, keyset
from tipline.server.models import Source, Submission, new_id

from ..server.conftest import sealed_submission
from ..totp_codes import code_after
from .source_fixtures import gunicorn


@dataclass
class StaffServer:
    """A running server, its org key and journalist keys, an admin, and a stored source."""

    url: str
    app: Flask
    org: keys.OrgSecret
    alice: keys.RecipientSecret
    admin_password: str
    admin_secret: str
    source_id: str
    reply_key: PrivateKey
    submissions: list[str]


def code_for(app: Flask, username: str, secret: str) -> str:
    """A code the server takes when the form reaches it (tests/totp_codes.py)."""
    with app.app_context():
        found = accounts.by_username(db.session(), username)
        assert found is not None
        last = found.totp_last_step
    return code_after(secret, last)


def _seed(app: Flask, alice: keys.RecipientSecret) -> tuple[str, PrivateKey, list[str]]:
    reply_key = PrivateKey.generate()
    source = Source(
        id=new_id(),
        designation="brave heron",
        token_hash=new_id().encode(),
        reply_public_key=bytes(reply_key.public_key),
    )
    ids = []
    with app.app_context():
        db.session().add(source)
        db.session().commit()
        for n in range(2):
            data = sealed_submission(
                [alice.public.public_key],
                f"tip {n}",
                {"a.txt": b"x" * 1000},
                bytes(reply_key.public_key),
            )
            sid = new_id()
            size = app.extensions["tipline.blobs"].write(
                "submissions", sid, lambda f, d=data: f.write(d)
            )
            db.session().add(Submission(id=sid, source_id=source.id, size=size))
            ids.append(sid)
        db.session().commit()
    return source.id, reply_key, ids


@pytest.fixture(scope="session")
def staff_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaffServer]:
    base = tmp_path_factory.mktemp("staff-server")
    data_dir, log = base / "data", base / "server.log"
    org = keys.OrgSecret.generate()
    alice = keys.RecipientSecret.generate("Alice")
    today = datetime.datetime.now(datetime.UTC).date()
    signed = manifest.sign_manifest(org, 1, [alice.public], today, today + datetime.timedelta(30))
    app = create_app({"DATA_DIR": str(data_dir), "ORG_PUBLIC_KEY": b64e(org.public.public_key)})
    password, secret = accounts.generate_passphrase(), pyotp.random_base32(32)
    with app.app_context():
        keyset.install(db.session(), signed, org.public.public_key)
        admin = accounts.create(db.session(), "chief", password, is_admin=True)
        admin.totp_secret = secret
        db.session().commit()
    source_id, reply_key, ids = _seed(app, alice)
    env = {
        "TIPLINE_DATA_DIR": str(data_dir),
        "TIPLINE_ORG_PUBLIC_KEY": b64e(org.public.public_key),
        "TIPLINE_RATELIMIT_ENABLED": "false",
        "TIPLINE_MIN_FREE_BYTES": "0",
    }
    try:
        with gunicorn(env, log, "/journalist/login") as url:
            yield StaffServer(url, app, org, alice, password, secret, source_id, reply_key, ids)
    finally:
        db.engine_of(app).dispose()


@pytest.fixture(scope="package")
def admin_context(chromium: Browser, staff_server: StaffServer) -> Iterator[BrowserContext]:
    """A browser logged in as the admin (once: each login spends a TOTP time step)."""
    context = chromium.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(staff_server.url + "/journalist/login")
    page.get_by_label("Username").fill("chief")
    page.get_by_label("Password").fill(staff_server.admin_password)
    page.get_by_label("Two-factor code").fill(
        code_for(staff_server.app, "chief", staff_server.admin_secret)
    )
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    page.close()
    yield context
    context.close()


__all__ = ["StaffServer", "admin_context", "code_for", "io", "staff_server"]
