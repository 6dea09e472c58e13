"""Fixtures for the server: an app on SQLite and on PostgreSQL, the org and journalist keys.

The PostgreSQL half makes one uniquely named database per test session and drops it afterwards.
If the server is unreachable those tests fail: they never skip.
"""

from __future__ import annotations

import datetime
import io
import os
import re
import secrets
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tipline.crypto import keys, manifest
from tipline.crypto.encoding import b64e
from tipline.crypto.envelope import seal
from tipline.crypto.inner import Attachment, Inner
from tipline.server import create_app, db, keyset
from tipline.server.cli import main as server_main

from ..s3_server import Seaweed

# The runtime half of "the server never opens an envelope": every test here runs under it.
from .tripwire import tripwire, tripwire_installed  # noqa: F401

POSTGRES_URL = os.environ.get(
    "TIPLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TABLES = (
    "uploads",
    "submissions",
    "replies",
    "sources",
    "manifests",
    "api_tokens",
    "accounts",
    "audit_log",
    "settings",
)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    """A real S3 server (SeaweedFS) for the session: tests/s3_server.py."""
    server = Seaweed(tmp_path_factory.mktemp("seaweed"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Keys:
    """The org key, two journalists, and signed manifests v1 (Alice) and v2 (Bob)."""

    org: keys.OrgSecret
    alice: keys.RecipientSecret
    bob: keys.RecipientSecret

    def signed(self, version: int, *who: keys.RecipientSecret) -> bytes:
        today = datetime.datetime.now(datetime.UTC).date()
        recipients = [w.public for w in who] or [self.alice.public]
        return manifest.sign_manifest(
            self.org, version, recipients, today, today + datetime.timedelta(days=90)
        )


@pytest.fixture(scope="session")
def org_keys() -> Keys:
    return Keys(
        keys.OrgSecret.generate(),
        keys.RecipientSecret.generate("Alice"),
        keys.RecipientSecret.generate("Bob"),
    )


def _sqlalchemy_url(url: str) -> str:
    return re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", url)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh database for this session, dropped at the end."""
    name = f"tipline_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = make_url(_sqlalchemy_url(POSTGRES_URL)).set(database=name)
            yield url.render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tipline.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


def make_app(data_dir: Path, database_url: str, org: keys.OrgSecret, **extra: Any) -> Flask:
    """An app with rate limits off (tests that want them turn them on)."""
    config: dict[str, Any] = {
        "DATA_DIR": str(data_dir),
        "ORG_PUBLIC_KEY": b64e(org.public.public_key),
        "DATABASE_URL": database_url,
        "AUTO_MIGRATE": True,
        "MIN_FREE_BYTES": 0,
        "RATELIMIT_ENABLED": False,
        "TESTING": True,
    }
    config.update(extra)
    return create_app(config)


@pytest.fixture
def app_factory(tmp_path: Path, database_url: str, org_keys: Keys) -> Iterator[Any]:
    """Build apps on this test's database; tables are emptied afterwards."""
    made: list[Flask] = []

    def build(install: bool = True, **extra: Any) -> Flask:
        app = make_app(tmp_path / "data", database_url, org_keys.org, **extra)
        if install:
            with app.app_context():
                keyset.install(db.session(), org_keys.signed(1), org_keys.org.public.public_key)
        made.append(app)
        return app

    yield build
    for app in made:
        db.engine_of(app).dispose()
    _truncate(database_url)


def _truncate(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        return  # each SQLite test has its own file
    engine = db.make_engine(database_url)
    try:
        with engine.begin() as conn:
            if engine.dialect.has_table(conn, "manifests"):
                conn.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture
def clean_database(database_url: str) -> Iterator[None]:
    """Empty the shared PostgreSQL database after a test that writes to it directly."""
    yield
    _truncate(database_url)


class CliResult(NamedTuple):
    """What one ``tipline-server`` run left: its exit code, standard output and standard error."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(
    tmp_path: Path,
    org_keys: Keys,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_database: None,
) -> Callable[..., CliResult]:
    """Run ``tipline-server`` in this process, as the entry point does, on this test's data
    folder, org key and database; ``stdin``, when given, is what it reads from standard input.
    """
    monkeypatch.setenv("TIPLINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TIPLINE_ORG_PUBLIC_KEY", b64e(org_keys.org.public.public_key))
    monkeypatch.setenv("TIPLINE_DATABASE_URL", database_url)

    def call(*args: str, stdin: str | None = None) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["tipline-server", *args])
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = 0
        try:
            server_main()
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return call


@pytest.fixture
def app(app_factory: Any) -> Flask:
    built: Flask = app_factory()
    return built


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def csrf_token(client: FlaskClient, path: str = "/submit") -> str:
    """The CSRF token of a page, as a browser would read it from the form or the meta tag."""
    page = client.get(path)
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def sealed_submission(
    recipients: list[bytes], message: str, files: dict[str, bytes], reply_key: bytes
) -> bytes:
    """An envelope as the browser would seal it."""
    inner = Inner(
        kind="submission",
        sealed_by="browser",
        message=message,
        reply_public_key=reply_key,
        attachments=tuple(Attachment(n, len(d), "text/plain") for n, d in files.items()),
    )
    out = io.BytesIO()
    seal(out, recipients, inner, [io.BytesIO(d) for d in files.values()])
    return out.getvalue()


# -- Journalist and admin side ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its minimum cost in tests (the real cost is checked in test_accounts.py)."""
    import nacl.pwhash

    from tipline.server import accounts

    monkeypatch.setattr(accounts, "OPSLIMIT", nacl.pwhash.argon2id.OPSLIMIT_MIN)
    monkeypatch.setattr(accounts, "MEMLIMIT", nacl.pwhash.argon2id.MEMLIMIT_MIN)


@dataclass
class Staff:
    """A staff account made for a test: its password and TOTP secret."""

    username: str
    password: str
    secret: str


def make_staff(app: Flask, username: str, admin: bool = False) -> Staff:
    """An account with TOTP already enrolled."""
    import pyotp

    from tipline.server import accounts

    password = accounts.generate_passphrase()
    secret = pyotp.random_base32(32)
    with app.app_context():
        made = accounts.create(db.session(), username, password, is_admin=admin)
        made.totp_secret = secret
        db.session().commit()
    return Staff(username, password, secret)


def next_code(app: Flask, staff: Staff) -> str:
    """A TOTP code the server will take when the request reaches it (tests/totp_codes.py)."""
    from tipline.server import accounts

    from ..totp_codes import code_after

    with app.app_context():
        last = accounts.by_username(db.session(), staff.username).totp_last_step  # type: ignore[union-attr]
    return code_after(staff.secret, last)


def staff_login(app: Flask, client: FlaskClient, staff: Staff) -> Any:
    """Log in through the login form; returns the response."""
    token = page_token(client.get("/journalist/login").text)
    return client.post(
        "/journalist/login",
        data={
            "csrf_token": token,
            "username": staff.username,
            "password": staff.password,
            "code": next_code(app, staff),
        },
    )


def new_token(client: FlaskClient, label: str = "usb") -> str:
    """A bearer token made on the account page of the staff member ``client`` is logged in as."""
    page = client.post(
        "/journalist/account/tokens",
        data={"csrf_token": page_token(client.get("/journalist/account").text), "label": label},
    )
    found = re.search(r'id="new-token">([^<]+)<', page.text)
    assert page.status_code == 201 and found, page.text
    return found.group(1)


def staff_token(app: Flask, username: str, label: str = "usb") -> str:
    """A bearer token of a new staff account ``username``, logged in through the form."""
    client = app.test_client()
    staff_login(app, client, make_staff(app, username))
    return new_token(client, label)


def page_token(text: str) -> str:
    """The CSRF token of the first form on a page."""
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', text)
    if found is None:
        found = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert found, text[:500]
    return found.group(1)
