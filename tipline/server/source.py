"""The source interface: the pages a source sees in Tor Browser, at any security level.

Every page works without JavaScript. Where JS and WebAssembly are present, the controllers in
``static/js/source/`` take over the same forms and seal in the browser instead (``api.py``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from .. import source_replies
from ..crypto.codename import Derived, derive, generate, normalize
from ..crypto.encoding import b64e
from ..crypto.errors import CodenameError
from ..crypto.keys import fingerprint
from ..wordlist import load_wordlist
from . import db, keyset, settings
from .extensions import limiter
from .formpath import FormError, check_submission, collect_parts, seal_to_blob
from .forms import ActionForm, CodenameForm, SubmitForm
from .models import Source
from .security import crypto_page
from .sources import (
    blobs,
    commit_submission,
    current_source,
    delete_read_reply,
    find_by_login_token,
    log_in,
    log_out,
    new_source,
    replies_of,
    reply_of,
    require_source,
)

bp = Blueprint("source", __name__)


def _login_limit() -> str:
    return str(current_app.config["RATELIMIT_LOGIN"])


def _submit_limit() -> str:
    return str(current_app.config["RATELIMIT_SUBMIT"])


def _keys() -> keyset.Current | None:
    return keyset.current(db.session(), current_app.config["ORG_PUBLIC_KEY_BYTES"])


def _derive(typed: str) -> Derived | None:
    """The derivations of a typed codename, or None if it is not a codename at all."""
    try:
        return derive(normalize(load_wordlist(), typed))
    except CodenameError:
        return None


def _page_data(keys: keyset.Current | None = None) -> dict[str, Any]:
    """What the page controllers need, handed over in data- attributes (no inline script)."""
    keys = keys or _keys()
    return {
        "org_public_key": b64e(current_app.config["ORG_PUBLIC_KEY_BYTES"]),
        "manifest_version": keys.version if keys else "",
        "max_size": settings.max_submission_size(),
        "chunk_size": min(current_app.config["MAX_CHUNK_SIZE"], 4 << 20),
    }


@bp.get("/")
def index() -> str:
    """The landing page: what this is, what happens to a tip, how to check the key."""
    return render_template(
        "source/index.html",
        fingerprint=fingerprint(current_app.config["ORG_PUBLIC_KEY_BYTES"]),
        source=current_source(),
    )


@bp.route("/submit", methods=["GET", "POST"])
@limiter.limit(_submit_limit, methods=["POST"])
@crypto_page
def submit() -> ResponseReturnValue:
    """The submit form. Without JS it posts here and the server seals the tip on arrival."""
    form = SubmitForm()
    keys = _keys()
    source = current_source()
    if keys is None or not settings.current().submissions_open:
        return render_template("source/closed.html"), 503
    error = None
    if form.validate_on_submit():
        try:
            message = form.message.data or ""
            parts = collect_parts(request.files.getlist(form.files.name))
            check_submission(message, parts, settings.max_submission_size())
            codename = None
            if source is None:
                codename = generate(load_wordlist())
                derived = derive(codename)
                source = new_source(derived.token_hash, derived.reply_public_key)
            blob_id, size = seal_to_blob(message, parts, keys, source.reply_public_key)
            commit_submission(source, blob_id, size)
            log_in(source)
        except FormError as exc:
            error = exc.detail
        else:
            return render_template(
                "source/submitted.html", codename=codename, sealed_by="server", files=len(parts)
            )
    elif request.method == "POST":
        error = _("The form expired. Please send it again.")
    status = 400 if error else 200
    return render_template(
        "source/submit.html",
        form=form,
        source=source,
        error=error,
        # A returning source's reply key lets the browser seal for them too.
        data={**_page_data(keys), "reply_public_key": b64e(source.reply_public_key)}
        if source
        else _page_data(keys),
    ), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@crypto_page
def login() -> ResponseReturnValue:
    """A returning source types the codename. Without JS the server derives the login token
    and, in the same request, opens the replies with the reply key (then forgets both).
    """
    form = CodenameForm()
    if form.validate_on_submit():
        typed = form.codename.data or ""
        derived = _derive(typed)
        source = find_by_login_token(derived.login_token) if derived else None
        if source is None:
            return render_template(
                "source/login.html", form=form, failed=True, data=_page_data()
            ), 401
        log_in(source)
        return _replies_page(source, typed)
    return render_template("source/login.html", form=form, failed=False, data=_page_data())


def _replies_page(source: Source, codename: str | None) -> str:
    """The replies, opened with the typed codename if there is one, else listed unread."""
    rows = replies_of(source)
    opened: dict[str, source_replies.OpenedReply] = {}
    if codename is not None and rows:
        store = blobs()
        files = [store.open("replies", r.id) for r in rows]
        try:
            result = source_replies.open_replies(
                codename, [(r.id, r.size, f) for r, f in zip(rows, files, strict=True)]
            )
        finally:
            for f in files:
                f.close()
        opened = {o.reply_id: o for o in result}
        for row in rows:
            if opened[row.id].message is not None:
                row.read = True
        db.session().commit()
    return render_template(
        "source/replies.html",
        replies=rows,
        opened=opened,
        form=CodenameForm(formdata=None),
        action=ActionForm(),
        data=_page_data(),
    )


@bp.route("/replies", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@crypto_page
def replies() -> ResponseReturnValue:
    """The replies page; without JS, posting the codename here opens them on the server."""
    source = require_source()
    form = CodenameForm()
    if form.validate_on_submit():
        typed = form.codename.data or ""
        derived = _derive(typed)
        if derived is None or derived.token_hash != source.token_hash:
            return _replies_page(source, None), 401
        return _replies_page(source, typed)
    return _replies_page(source, None)


@bp.post("/replies/<reply_id>/delete")
def delete_reply(reply_id: str) -> ResponseReturnValue:
    """Delete a reply the source has read (an unread one might hold something they need)."""
    source = require_source()
    if not ActionForm().validate_on_submit():
        return render_template("source/error.html", message=_("The form expired.")), 400
    reply = reply_of(source, reply_id)
    if reply is None:
        return render_template("source/error.html", message=_("That reply is gone.")), 404
    if not delete_read_reply(reply):
        return render_template(
            "source/error.html", message=_("Read a reply before you delete it.")
        ), 409
    return redirect(url_for("source.replies"), 303)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Forget the session; tell the source what else to do to leave no trace."""
    if not ActionForm().validate_on_submit():
        return render_template("source/error.html", message=_("The form expired.")), 400
    log_out()
    return render_template("source/logout.html")
