"""API tokens end with the admin's clean-up (issue 10, finding 6): a password reset, a 2FA
reset and disabling the account delete them, and enabling the account again brings none back.
An admin who resets their own password is shown the new one.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tipline.server import accounts, db

from .conftest import make_staff, page_token, staff_login, staff_token
from .test_journalist_api import auth


def _admin(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert staff_login(app, client, make_staff(app, "chief", admin=True)).status_code == 303
    return client


def _works(app: Flask, token: str) -> bool:
    status = app.test_client().get("/api/journalist/sources", headers=auth(token)).status_code
    assert status in (200, 401)
    return status == 200


def _change(app: Flask, admin: FlaskClient, username: str, change: str) -> None:
    with app.app_context():
        target = accounts.by_username(db.session(), username)
        assert target is not None
        target_id = target.id
    token = page_token(admin.get("/admin/").text)
    # The confirmation page's Yes button (enable has none; the field is ignored there).
    response = admin.post(
        f"/admin/accounts/{target_id}/{change}", data={"csrf_token": token, "confirm": "yes"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "changes", [["reset-password"], ["reset-2fa"], ["disable", "enable"]], ids="+".join
)
def test_the_admins_clean_up_ends_api_tokens(app: Flask, changes: list[str]) -> None:
    """Each change ends the attacker's token, also once the victim has enrolled 2FA again;
    control: a second account's token, untouched, still works."""
    admin = _admin(app)
    attacker, bystander = staff_token(app, "victim"), staff_token(app, "bystander")
    assert _works(app, attacker) and _works(app, bystander)
    for change in changes:
        _change(app, admin, "victim", change)
    with app.app_context():  # the victim enrols 2FA again (a reset's usual sequel)
        victim = accounts.by_username(db.session(), "victim")
        assert victim is not None
        victim.totp_secret = victim.totp_secret or "A" * 32
        db.session().commit()
    assert not _works(app, attacker)
    assert _works(app, bystander)


def test_an_admin_resetting_their_own_password_sees_it(app: Flask) -> None:
    """The reset ends the admin's own session, so the new passphrase is on the answer to the
    reset itself, and it logs in; the next page asks for a login (control: the session did
    end)."""
    admin = _admin(app)
    with app.app_context():
        me = accounts.by_username(db.session(), "chief")
        assert me is not None
        my_id = me.id
    token = page_token(admin.get("/admin/").text)
    page = admin.post(
        f"/admin/accounts/{my_id}/reset-password", data={"csrf_token": token, "confirm": "yes"}
    )
    assert page.status_code == 200
    found = re.search(r'id="passphrase">([^<]+)<', page.text)
    assert found
    assert admin.get("/admin/").status_code == 303
    with app.app_context():
        me = accounts.by_username(db.session(), "chief")
        assert accounts.verify_password(me, found.group(1).strip())
