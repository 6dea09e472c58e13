"""A journalist's own daily digest page (/journalist/digest): switch it on with an address and
a public key (age or OpenPGP), change them, or switch it off. The key is checked with the real
tool before it is kept, and the page says plainly what is wrong with one that is refused.
"""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from . import audit, db, digest, digest_keys
from .auth import account, staff_required
from .forms import ActionForm
from .i18n import refusal

bp = Blueprint("digest", __name__, url_prefix="/journalist/digest")


class DigestForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped
    """Where the digest goes and the key it is encrypted to."""

    email = StringField(_l("Your e-mail address"), validators=[DataRequired(), Length(max=254)])
    key = TextAreaField(
        _l("Your public key: age (age1...) or OpenPGP (-----BEGIN PGP PUBLIC KEY BLOCK-----)"),
        validators=[DataRequired(), Length(max=digest_keys.MAX_KEY_CHARS)],
    )


def _page(form: DigestForm, status: int = 200, **extra: object) -> ResponseReturnValue:
    me = account()
    values: dict[str, object] = {
        "form": form,
        "off_form": ActionForm(),
        "subscription": digest.subscription_of(db.session(), me),
        "enabled": bool(current_app.config["DIGEST_ENABLED"]),
        "me": me,
        "message": None,
        "error": None,
    }
    values.update(extra)
    return render_template("journalist/digest.html", **values), status


@bp.route("/", methods=["GET", "POST"])
@staff_required()
def settings() -> ResponseReturnValue:
    """Show the digest's state; on POST, switch it on or change the address and key."""
    form = DigestForm()
    if request.method == "GET":
        found = digest.subscription_of(db.session(), account())
        if found is not None:
            form.email.data = found.email
        return _page(form)
    if not form.validate_on_submit():
        return _page(
            form, 400, error=gettext("Give an address and a key (the form may have expired).")
        )
    me = account()
    try:
        key = digest.subscribe(db.session(), me, form.email.data, form.key.data)
    except digest.DigestError as exc:
        return _page(
            form, 400, error=gettext("Nothing was changed: %(reason)s.", reason=exc.detail)
        )
    except digest_keys.DigestKeyError as exc:
        return _page(
            form, 400, error=gettext("Nothing was changed: %(reason)s.", reason=refusal(exc))
        )
    kind = "age" if key.kind == digest_keys.AGE else "OpenPGP"
    said = (
        gettext(
            "The daily digest is on, encrypted to your age key %(fingerprint)s.",
            fingerprint=key.fingerprint,
        )
        if key.kind == digest_keys.AGE
        else gettext(
            "The daily digest is on, encrypted to your OpenPGP key %(fingerprint)s.",
            fingerprint=key.fingerprint,
        )
    )
    audit.record(db.session(), me.username, "digest-on", f"{kind} key {key.fingerprint}")
    return _page(
        DigestForm(formdata=None, email=form.email.data),
        message=said,
    )


@bp.post("/off")
@staff_required()
def switch_off() -> ResponseReturnValue:
    """Switch the digest off: the address and key are deleted from the server."""
    if not ActionForm().validate_on_submit():
        return _page(
            DigestForm(formdata=None), 400, error=gettext("The form expired. Nothing was changed.")
        )
    me = account()
    if digest.unsubscribe(db.session(), me):
        audit.record(db.session(), me.username, "digest-off")
    return redirect(url_for("digest.settings"), 303)
