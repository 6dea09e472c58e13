"""Staff accounts: passwords, TOTP enrolment and reuse, throttling across workers, sessions,
logout, admin resets, secret-key rotation, and the ``tipline-server`` account commands.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import nacl.pwhash
import pyotp
import pytest
from flask import Flask
from sqlalchemy import select

from tipline.server import accounts, db
from tipline.server.models import Account, AuditEntry

from .conftest import CliResult, Staff, make_staff, next_code, page_token, staff_login


def test_password_strength_and_passphrase() -> None:
    for weak, why in [
        ("short one", "at least 14"),
        ("aaaaaaaaaaaaaaaaaaaa", "too few different"),
        ("alice-alice-alice!", "username"),
        ("x" * 300, "at most"),
    ]:
        with pytest.raises(accounts.WeakPasswordError, match=why):
            accounts.check_strength(weak, "alice")
    offered = accounts.generate_passphrase()
    assert len(offered.split()) == 7 and offered != accounts.generate_passphrase()
    assert accounts.check_strength(offered, "alice") == offered


def test_real_cost_hash_is_argon2id(monkeypatch: pytest.MonkeyPatch) -> None:
    # Undo the cheap hashing of the autouse fixture: the module's own constants, as shipped, so
    # lowering them fails here (setting them to the expected values would test nothing).
    monkeypatch.undo()
    assert accounts.OPSLIMIT >= nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
    assert accounts.MEMLIMIT >= nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
    stored = accounts.hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=65536,t=2,p=1$")
    account = Account(password_hash=stored)
    assert accounts.verify_password(account, "correct horse battery staple")
    assert not accounts.verify_password(account, "correct horse battery stapler")
    assert not accounts.verify_password(None, "correct horse battery staple")


def test_usernames_are_bounded(app: Flask) -> None:
    with app.app_context():
        for bad in ("A", "has space", "x" * 65, "../etc"):
            with pytest.raises(accounts.AccountError):
                accounts.create(db.session(), bad, accounts.generate_passphrase())
        accounts.create(db.session(), "dana", accounts.generate_passphrase())
        with pytest.raises(accounts.AccountError, match="taken"):
            accounts.create(db.session(), "dana", accounts.generate_passphrase())


def test_enrolment_with_qr_and_first_code(app: Flask) -> None:
    password = accounts.generate_passphrase()
    with app.app_context():
        accounts.create(db.session(), "erin", password)
    client = app.test_client()
    token = page_token(client.get("/journalist/login").text)
    first = client.post(
        "/journalist/login", data={"csrf_token": token, "username": "erin", "password": password}
    )
    assert first.status_code == 303 and first.headers["Location"].endswith("/journalist/enrol")
    page = client.get("/journalist/enrol")
    assert page.status_code == 200 and "<svg" in page.text and "<script" not in page.text
    secret = re.search(r'id="secret">([A-Z2-7 ]+)<', page.text)
    assert secret
    totp = pyotp.TOTP(secret.group(1).replace(" ", ""))
    # Not logged in yet: the journalist pages still send the browser to the login.
    assert client.get("/journalist/").status_code == 303
    wrong = client.post(
        "/journalist/enrol", data={"csrf_token": page_token(page.text), "code": "000000"}
    )
    assert wrong.status_code == 400 and "not right" in wrong.text
    right = client.post(
        "/journalist/enrol", data={"csrf_token": page_token(page.text), "code": totp.now()}
    )
    assert right.status_code == 303
    assert client.get("/journalist/").status_code == 200
    with app.app_context():
        erin = accounts.by_username(db.session(), "erin")
        assert erin is not None and erin.totp_secret and erin.totp_pending is None
        actions = db.session().scalars(select(AuditEntry.action)).all()
        assert "enrol-2fa" in actions


def test_code_works_once(app: Flask) -> None:
    staff = make_staff(app, "frank")
    code = next_code(app, staff)
    client = app.test_client()

    def attempt(c: str) -> Any:
        token = page_token(client.get("/journalist/login").text)
        data = {"csrf_token": token, "username": "frank", "password": staff.password, "code": c}
        return client.post("/journalist/login", data=data)

    assert attempt(code).status_code == 303
    client.post(
        "/journalist/logout", data={"csrf_token": page_token(client.get("/journalist/").text)}
    )
    again = attempt(code)
    assert again.status_code == 401 and "wrong" in again.text
    assert attempt("12345").status_code == 401  # too short
    assert attempt(next_code(app, staff)).status_code == 303


def test_throttling_holds_across_workers(app_factory: Any) -> None:
    one, two = app_factory(), app_factory(install=False)  # two workers, one database
    staff = make_staff(one, "gina")
    for n in range(accounts.MAX_FAILURES):
        worker = (one, two)[n % 2]
        client = worker.test_client()
        token = page_token(client.get("/journalist/login").text)
        bad = client.post(
            "/journalist/login",
            data={"csrf_token": token, "username": "gina", "password": "wrong password here!"},
        )
        assert bad.status_code == 401
    # Now even the right password and code are refused, on either worker.
    for worker in (one, two):
        assert staff_login(worker, worker.test_client(), staff).status_code == 401
    with one.app_context():
        gina = accounts.by_username(db.session(), "gina")
        assert gina is not None and accounts.locked(gina)


def test_logout_needs_csrf_and_ends_session(app: Flask) -> None:
    staff = make_staff(app, "hana")
    client = app.test_client()
    assert staff_login(app, client, staff).status_code == 303
    assert client.post("/journalist/logout").status_code == 400
    assert client.get("/journalist/").status_code == 200
    token = page_token(client.get("/journalist/").text)
    cookie = client.get_cookie("tipline")
    assert cookie is not None
    copied = app.test_client()  # someone who copied the cookie before the logout
    copied.set_cookie("tipline", cookie.value)
    assert copied.get("/journalist/").status_code == 200
    assert client.post("/journalist/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/journalist/").status_code == 303
    assert copied.get("/journalist/").status_code == 303


def test_idle_session_times_out(app: Flask) -> None:
    staff = make_staff(app, "ivan")
    client = app.test_client()
    staff_login(app, client, staff)
    assert client.get("/journalist/").status_code == 200
    with client.session_transaction() as session:
        session["seen"] = int(time.time()) - 60 * app.config["STAFF_IDLE_MINUTES"] - 5
    assert client.get("/journalist/").status_code == 303


def test_admin_resets_and_disables(app: Flask) -> None:
    admin = make_staff(app, "root", admin=True)
    journalist = make_staff(app, "jo")
    boss, jo = app.test_client(), app.test_client()
    assert staff_login(app, boss, admin).headers["Location"].endswith("/admin/")
    staff_login(app, jo, journalist)
    assert jo.get("/admin/").status_code == 403  # journalists are not admins
    with app.app_context():
        jo_id = accounts.by_username(db.session(), "jo").id  # type: ignore[union-attr]
    token = page_token(boss.get("/admin/").text)
    # Without CSRF nothing happens.
    assert boss.post(f"/admin/accounts/{jo_id}/disable").status_code == 400
    assert jo.get("/journalist/").status_code == 200
    yes = {"csrf_token": token, "confirm": "yes"}
    reset = boss.post(f"/admin/accounts/{jo_id}/reset-password", data=yes)
    new_password = re.search(r'id="passphrase">([a-z -]+)<', reset.text)
    assert reset.status_code == 200 and new_password
    assert jo.get("/journalist/").status_code == 303  # the reset ended jo's session
    assert staff_login(app, jo, journalist).status_code == 401  # the old password is gone
    journalist.password = new_password.group(1)
    assert staff_login(app, jo, journalist).status_code == 303
    boss.post(f"/admin/accounts/{jo_id}/reset-2fa", data=yes)
    assert jo.get("/journalist/").status_code == 303
    boss.post(f"/admin/accounts/{jo_id}/disable", data=yes)
    assert staff_login(app, jo, journalist).status_code == 401
    with app.app_context():
        log = [(e.actor, e.action, e.detail) for e in db.session().scalars(select(AuditEntry))]
    assert ("root", "reset-password", "jo") in log and ("root", "disable", "jo") in log


def test_secret_key_rotation_keeps_sessions(app_factory: Any) -> None:
    old, new = "o" * 40 + "ld-key", "n" * 40 + "ew-key"
    first = app_factory(SECRET_KEY=old)
    staff = make_staff(first, "kim")
    client = first.test_client()
    staff_login(first, client, staff)
    cookie = client.get_cookie("tipline")
    assert cookie is not None
    rotated = app_factory(install=False, SECRET_KEY=new, SECRET_KEY_FALLBACKS=[old])
    other = rotated.test_client()
    other.set_cookie("tipline", cookie.value)
    assert other.get("/journalist/").status_code == 200
    dropped = app_factory(install=False, SECRET_KEY=new).test_client()
    dropped.set_cookie("tipline", cookie.value)
    assert dropped.get("/journalist/").status_code == 303


def test_login_form_is_bounded_and_needs_csrf(app: Flask) -> None:
    client = app.test_client()
    assert (
        client.post("/journalist/login", data={"username": "x", "password": "y"}).status_code == 400
    )
    token = page_token(client.get("/journalist/login").text)
    huge = client.post(
        "/journalist/login", data={"csrf_token": token, "username": "x" * 100, "password": "y"}
    )
    assert huge.status_code == 400
    assert client.post("/journalist/login", data={"x": "y" * 100_000}).status_code == 413


def test_cli_accounts(monkeypatch: pytest.MonkeyPatch, run_cli: Callable[..., CliResult]) -> None:
    monkeypatch.setenv("TIPLINE_AUTO_MIGRATE", "true")
    code, out, err = run_cli("create-admin", "chief")
    assert code == 0, err
    assert len(out.split()) == 7 and "passphrase" in err and out.strip() not in err
    code, _, err = run_cli("create-admin", "second")
    assert code == 1 and "an admin exists already" in err
    code, out, err = run_cli("add-journalist", "lee")
    assert code == 0 and len(out.split()) == 7
    code, _, err = run_cli("add-journalist", "Bad Name")
    assert code == 1 and "username" in err
    staff = Staff("lee", out.strip(), "")
    from tipline.server import create_app

    app = create_app()
    try:
        with app.app_context():
            lee = accounts.by_username(db.session(), "lee")
            assert lee is not None and not lee.is_admin
            assert accounts.verify_password(lee, staff.password)
            chief = accounts.by_username(db.session(), "chief")
            assert chief is not None and chief.is_admin
    finally:
        db.engine_of(app).dispose()
