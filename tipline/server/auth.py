"""Staff login: password then TOTP, enrolment with a server-drawn QR code, session timeouts,
logout, and one's own password and API tokens.

A staff session records the account, its ``session_epoch`` (a password or 2FA reset, or
disabling the account, bumps it and so ends every session at once), when it began and when
it was last used: it ends after ``STAFF_IDLE_MINUTES`` idle or ``STAFF_SESSION_HOURS`` in all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from . import accounts, audit, db
from .forms import ActionForm
from .i18n import refusal
from .limits import limits
from .models import Account
from .sources import _new_session
from .staff_forms import CodeForm, LoginForm, PasswordForm, TokenForm

F = TypeVar("F", bound=Callable[..., Any])
ENROL_SECONDS = 600  # a password-checked, not yet enrolled login may take this long

bp = Blueprint("auth", __name__, url_prefix="/journalist")


def _start(account: Account) -> None:
    _new_session()
    session["staff"] = account.id
    session["epoch"] = account.session_epoch
    session["since"] = session["seen"] = int(time.time())


def current_account() -> Account | None:
    """The logged-in staff account, or None (expired, reset, disabled or never logged in)."""
    if "account" in g:
        found: Account | None = g.account
        return found
    g.account = None
    account_id = session.get("staff")
    if not isinstance(account_id, str):
        return None
    config, now = current_app.config, int(time.time())
    since, seen = session.get("since"), session.get("seen")
    if not isinstance(since, int) or not isinstance(seen, int):
        session.clear()
        return None
    if (
        now - seen > 60 * config["STAFF_IDLE_MINUTES"]
        or now - since > 3600 * config["STAFF_SESSION_HOURS"]
    ):
        session.clear()
        return None
    account = db.session().get(Account, account_id)
    if (
        account is None
        or account.disabled
        or account.totp_secret is None
        or account.session_epoch != session.get("epoch")
    ):
        session.clear()
        return None
    if now - seen >= 30:  # no need to rewrite the cookie on every click
        session["seen"] = now
    g.account = account
    return account


def staff_required(admin: bool = False) -> Callable[[F], F]:
    """Views for logged-in staff (admins only with ``admin=True``); others go to the login."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            account = current_account()
            if account is None:
                return redirect(url_for("auth.login"), 303)
            if admin and not account.is_admin:
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def account() -> Account:
    """The logged-in account inside a ``staff_required`` view."""
    found = current_account()
    assert found is not None
    return found


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Username, password and TOTP code; an account without TOTP goes on to enrolment."""
    form = LoginForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("journalist/login.html", form=form, failed=status == 400), status
    # Per account: failed attempts at one account's password or code, counted by every
    # worker (limits.py); on top of the account's own lock in the database.
    who = (form.username.data or "").strip().lower()
    if not limits().room("staff-login", who):
        return render_template(
            "journalist/login.html", form=form, failed=True, message=accounts.LoginError().message
        ), 429
    session_db = db.session()
    try:
        found = accounts.check_password_step(session_db, form.username.data, form.password.data)
        if found.totp_secret is None:
            _new_session()
            session["enrol"] = found.id
            session["enrol_epoch"] = found.session_epoch
            session["enrol_until"] = int(time.time()) + ENROL_SECONDS
            accounts.begin_enrolment(session_db, found)
            return redirect(url_for("auth.enrol"), 303)
        accounts.check_code_step(session_db, found, form.code.data or "")
    except accounts.LoginError as exc:
        limits().spend("staff-login", who)
        return render_template(
            "journalist/login.html", form=form, failed=True, message=refusal(exc)
        ), 401
    _start(found)
    return redirect(url_for("admin.index" if found.is_admin else "journalist.index"), 303)


def _enrolling() -> Account:
    account_id, until = session.get("enrol"), session.get("enrol_until")
    if not isinstance(account_id, str) or not isinstance(until, int) or until < time.time():
        abort(401)
    found = db.session().get(Account, account_id)
    if (
        found is None
        or found.disabled
        or found.totp_secret is not None
        or found.totp_pending is None
        or found.session_epoch != session.get("enrol_epoch")
    ):
        abort(401)
    return found


@bp.route("/enrol", methods=["GET", "POST"])
def enrol() -> ResponseReturnValue:
    """Show the new TOTP secret as a QR code; the first code from the app completes login."""
    found = _enrolling()
    form = CodeForm()
    failed = False
    if form.validate_on_submit():
        if accounts.finish_enrolment(db.session(), found, form.code.data):
            audit.record(db.session(), found.username, "enrol-2fa")
            _start(found)
            return redirect(url_for("admin.index" if found.is_admin else "journalist.index"), 303)
        accounts.record_failure(db.session(), found)
        limits().spend("staff-login", found.username.lower())
        failed = True
    elif request.method == "POST":
        failed = True
    secret = found.totp_pending or ""
    uri = accounts.provisioning_uri(found, secret)
    return render_template(
        "journalist/enrol.html",
        form=form,
        failed=failed,
        svg=accounts.qr_svg(uri),
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
    ), (400 if failed else 200)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the session, and with it every other session of the account: a cookie copied
    from this browser must not outlive the logout."""
    if not ActionForm().validate_on_submit():
        abort(400)
    me = current_account()
    if me is not None:
        accounts.end_sessions(db.session(), me)
    _new_session()
    return redirect(url_for("auth.login"), 303)


@bp.route("/account", methods=["GET", "POST"])
@staff_required()
def own_account() -> ResponseReturnValue:
    """Change one's own password (a passphrase is offered) and manage API tokens."""
    me = account()
    form = PasswordForm()
    message, status = None, 200
    if form.validate_on_submit():
        if not accounts.verify_password(me, form.current.data):
            message, status = gettext("The current password is wrong."), 400
        else:
            try:
                accounts.set_password(db.session(), me, form.new.data)
            except accounts.AccountError as exc:
                message, status = refusal(exc), 400
            else:
                audit.record(db.session(), me.username, "change-own-password")
                _start(me)
                message = gettext("Your password was changed.")
    elif request.method == "POST":
        message, status = gettext("The form expired or was incomplete."), 400
    return render_template(
        "journalist/account.html",
        form=form,
        token_form=TokenForm(formdata=None),
        action=ActionForm(),
        tokens=accounts.tokens_of(db.session(), me),
        offered=accounts.generate_passphrase(),
        message=message,
        new_token=None,
    ), status


@bp.post("/account/tokens")
@staff_required()
def new_token() -> ResponseReturnValue:
    """Make an API token and show it once."""
    me = account()
    form = TokenForm()
    if not form.validate_on_submit():
        abort(400)
    token = accounts.new_token(db.session(), me, form.label.data)
    audit.record(db.session(), me.username, "create-api-token", form.label.data[:64])
    return render_template(
        "journalist/account.html",
        form=PasswordForm(formdata=None),
        token_form=TokenForm(formdata=None),
        action=ActionForm(),
        tokens=accounts.tokens_of(db.session(), me),
        offered=accounts.generate_passphrase(),
        message=None,
        new_token=token,
    ), 201


@bp.post("/account/tokens/<token_id>/revoke")
@staff_required()
def revoke_token(token_id: str) -> ResponseReturnValue:
    """Delete one of one's tokens."""
    me = account()
    if not ActionForm().validate_on_submit():
        abort(400)
    if not accounts.revoke_token(db.session(), me, token_id[:32]):
        abort(404)
    audit.record(db.session(), me.username, "revoke-api-token")
    return redirect(url_for("auth.own_account"), 303)
