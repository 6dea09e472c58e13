"""Account changes an admin makes: each but enable asks first, and nothing changes until the
confirmation page's button is pressed; remove deletes the account, its tokens and its digest and
keeps the audit log."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tipline.server import accounts, db
from tipline.server.models import Account, ApiToken, AuditEntry, DigestSubscription

from .conftest import make_staff, page_token, staff_login


def account_id(app: Flask, name: str) -> str:
    with app.app_context():
        found = accounts.by_username(db.session(), name)
        assert found is not None
        return found.id


@pytest.fixture
def boss(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert staff_login(app, client, make_staff(app, "root", admin=True)).status_code == 303
    return client


@pytest.mark.parametrize("change", ["reset-password", "reset-2fa", "disable", "remove"])
def test_each_change_asks_first_and_changes_nothing_until_confirmed(
    app: Flask, boss: FlaskClient, change: str
) -> None:
    jo = app.test_client()
    staff = make_staff(app, "jo")
    assert staff_login(app, jo, staff).status_code == 303
    target = account_id(app, "jo")
    token = page_token(boss.get("/admin/").text)
    asked = boss.post(f"/admin/accounts/{target}/{change}", data={"csrf_token": token})
    assert asked.status_code == 200 and 'id="confirm"' in asked.text and "jo" in asked.text
    assert 'name="confirm" value="yes"' in asked.text
    assert jo.get("/journalist/").status_code == 200  # nothing happened yet: jo is still in
    with app.app_context():
        assert not db.session().scalars(select(AuditEntry).where(AuditEntry.action == change)).all()
    done = boss.post(
        f"/admin/accounts/{target}/{change}",
        data={"csrf_token": page_token(asked.text), "confirm": "yes"},
    )
    assert done.status_code == 200, done.text
    assert jo.get("/journalist/").status_code == 303  # every change ends jo's session
    with app.app_context():
        entry = db.session().scalars(select(AuditEntry).where(AuditEntry.action == change)).one()
        assert (entry.actor, entry.detail) == ("root", "jo")


def test_remove_deletes_tokens_and_digest_and_keeps_the_audit_log(
    app: Flask, boss: FlaskClient
) -> None:
    make_staff(app, "jo")
    with app.app_context():
        session = db.session()
        jo = accounts.by_username(session, "jo")
        assert jo is not None
        secret = accounts.new_token(session, jo, "laptop")
        session.add(
            DigestSubscription(
                account_id=jo.id,
                email="jo@example.org",
                key_kind="age",
                public_key="age1x",
                fingerprint="f",
                body_size=1,
            )
        )
        session.commit()
        assert accounts.account_for_token(session, secret) is not None
    target = account_id(app, "jo")
    yes = {"csrf_token": page_token(boss.get("/admin/").text), "confirm": "yes"}
    done = boss.post(f"/admin/accounts/{target}/remove", data=yes)
    assert done.status_code == 200 and "Removed the account jo" in done.text
    with app.app_context():
        session = db.session()
        assert accounts.by_username(session, "jo") is None
        assert accounts.account_for_token(session, secret) is None
        assert session.scalar(select(func.count()).select_from(ApiToken)) == 0
        assert session.scalar(select(func.count()).select_from(DigestSubscription)) == 0
        actions = [(e.action, e.detail) for e in session.scalars(select(AuditEntry))]
        assert ("remove", "jo") in actions
    # The name is free again, and the old token does not come back with a new account.
    make_staff(app, "jo")
    with app.app_context():
        assert accounts.account_for_token(db.session(), secret) is None


def test_the_last_admin_and_oneself_cannot_be_removed(app: Flask, boss: FlaskClient) -> None:
    me = account_id(app, "root")
    yes = {"csrf_token": page_token(boss.get("/admin/").text), "confirm": "yes"}
    refused = boss.post(f"/admin/accounts/{me}/remove", data=yes)
    assert refused.status_code == 400 and "your own account" in refused.text
    other = app.test_client()
    assert staff_login(app, other, make_staff(app, "second", admin=True)).status_code == 303
    with app.app_context():
        db.session().execute(
            Account.__table__.update().where(Account.username == "second").values(disabled=True)
        )
        db.session().commit()
    # root is now the only enabled admin: a disabled admin may go, root may not (asked by another
    # admin it would be refused too; here root cannot remove itself in any case).
    gone = boss.post(f"/admin/accounts/{account_id(app, 'second')}/remove", data=yes)
    assert gone.status_code == 200
    with app.app_context():
        assert accounts.count_admins(db.session()) == 1


def test_unknown_changes_are_404(app: Flask, boss: FlaskClient) -> None:
    make_staff(app, "jo")
    yes = {"csrf_token": page_token(boss.get("/admin/").text), "confirm": "yes"}
    assert (
        boss.post(f"/admin/accounts/{account_id(app, 'jo')}/explode", data=yes).status_code == 404
    )
