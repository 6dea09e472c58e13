"""The source's reading side, on the source blueprint: log in, the replies, their attachments.

Without JS the server derives the login token and the reply key from the codename typed in
that request, opens what the page shows (``tipline.source_replies``) and forgets both. With JS
the page's Worker does all of that and the server sees only the login token.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from urllib.parse import quote

from flask import Response, redirect, render_template, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from .. import source_replies
from ..crypto.errors import CodenameError
from . import db
from .forms import ActionForm, CodenameForm
from .models import Source
from .security import crypto_page
from .source import _derive, _page_data, bp
from .sources import (
    blobs,
    delete_read_reply,
    find_by_login_token,
    log_in,
    replies_of,
    reply_of,
    require_source,
)


@bp.route("/login", methods=["GET", "POST"])
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


def _replies_page(source: Source, codename: str | None, error: str | None = None) -> str:
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
        has_attachments=any(o.attachments for o in opened.values()),
        error=error,
        form=CodenameForm(formdata=None),
        action=ActionForm(),
        data=_page_data(),
    )


@bp.route("/replies", methods=["GET", "POST"])
@crypto_page
def replies() -> ResponseReturnValue:
    """The replies page; without JS, posting the codename here opens them on the server."""
    source = require_source()
    form = CodenameForm()
    if form.validate_on_submit():
        typed = form.codename.data or ""
        derived = _derive(typed)
        if derived is None or derived.token_hash != source.token_hash:
            return _replies_page(source, None, _wrong_codename()), 401
        return _replies_page(source, typed)
    return _replies_page(source, None)


def _wrong_codename() -> str:
    return str(_("That is not your codename. Check each word; a codename has seven words."))


def download_name(name: str) -> str:
    """A Content-Disposition header for an attachment's display name: never a path, no control
    characters, the UTF-8 name in RFC 5987 form and a plain ASCII fallback."""
    clean = "".join(c for c in name if unicodedata.category(c)[0] != "C").replace("/", "_")
    clean = clean.replace("\\\\", "_").strip(". ") or "attachment"
    ascii_name = clean.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(clean, safe='')}"


@bp.post("/replies/download")
def download() -> ResponseReturnValue:
    """Without JS: one attachment of a reply, opened with the codename typed in this request
    and streamed to the source as it is decrypted (after the whole reply authenticated). The
    reply key lives only while this response is being sent; nothing is written anywhere.
    """
    source = require_source()
    form = CodenameForm()
    if not form.validate_on_submit():
        return _replies_page(source, None, _("The form expired. Please try again.")), 400
    reply_id, _sep, index = (request.form.get("file") or "").partition("/")
    reply = reply_of(source, reply_id)
    typed = form.codename.data or ""
    derived = _derive(typed)
    if derived is None or derived.token_hash != source.token_hash:
        return _replies_page(source, None, _wrong_codename()), 401
    if reply is None or not index.isdigit():
        return _replies_page(source, None, _("That file is gone.")), 404
    file = blobs().open("replies", reply.id)
    try:
        found = source_replies.open_attachment(typed, file, int(index))
    except CodenameError:
        found = None
    if found is None:
        file.close()
        return _replies_page(source, None, _("That file could not be opened.")), 404
    attachment, pieces = found

    def body() -> Iterator[bytes]:
        try:
            yield from pieces
        finally:
            file.close()

    response = Response(stream_with_context(body()), mimetype="application/octet-stream")
    response.headers["Content-Disposition"] = download_name(attachment.name)
    response.headers["Content-Length"] = str(attachment.size)
    return response


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
