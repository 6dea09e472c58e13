"""The source interface: the pages a source sees in Tor Browser, at any security level.

Every page works without JavaScript. Where JS and WebAssembly are present, the controllers in
``static/js/source/`` take over the same forms and seal in the browser instead (``api.py``).
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    make_response,
    render_template,
    request,
    send_from_directory,
)
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal
from flask_babel import gettext as _
from werkzeug.wsgi import LimitedStream

from ..crypto.codename import Derived, derive, generate, normalize
from ..crypto.encoding import b64e
from ..crypto.errors import CodenameError
from ..crypto.keys import fingerprint
from ..wordlist import load_wordlist
from . import db, errors, keyset, proof_of_work, settings
from .formhead import leading_fields
from .formpath import FormError, check_submission, collect_parts, seal_to_blob
from .forms import ActionForm, SubmitForm
from .limits import limits
from .security import crypto_page
from .sources import (
    commit_submission,
    current_source,
    log_in,
    log_out,
    new_source,
    require_source,
)

bp = Blueprint("source", __name__)
# How much of a refused no-JS body is read to give the typed message back: the message field
# (at most MAX_FORM_MEMORY_SIZE) and the framing before it.
MESSAGE_HEAD = (1 << 20) + 64 * 1024


def _keys() -> keyset.Current | None:
    return keyset.current(db.session(), current_app.config["ORG_PUBLIC_KEY_BYTES"])


def _derive(typed: str) -> Derived | None:
    """The derivations of a typed codename, or None if it is not a codename at all."""
    try:
        return derive(normalize(load_wordlist(), typed))
    except CodenameError:
        return None


def _page_data(keys: keyset.Current | None = None) -> dict[str, Any]:
    """What the page controllers need, handed over in data- attributes (no inline script).

    The signed manifest itself is in the page: the Worker verifies it against the org key, so
    it is as good as one fetched separately, and it saves a round trip over Tor.
    """
    keys = keys or _keys()
    return {
        "org_public_key": b64e(current_app.config["ORG_PUBLIC_KEY_BYTES"]),
        "manifest_version": keys.version if keys else "",
        "manifest": keys.file.decode("utf-8") if keys else "",
        "max_size": settings.max_submission_size(),
        # On S3 each chunk is one part of a multipart upload, which must be >= 5 MiB.
        "chunk_size": current_app.config["MAX_CHUNK_SIZE"]
        if current_app.config["BLOB_STORE"] == "s3"
        else min(current_app.config["MAX_CHUNK_SIZE"], 4 << 20),
        # Whether the page must fetch and solve a proof-of-work before an upload (SPEC §10).
        "pow": "no" if settings.current().pow == "off" else "yes",
        "pow_form": "yes" if proof_of_work.form_gated() else "no",
        # The largest reply this server accepts from the desk, and so the largest the page
        # must open: one value (config MAX_REPLY_BUNDLE), used by both.
        "max_reply": int(current_app.config["MAX_REPLY_BUNDLE"]),
    }


@bp.app_template_filter("human_size")
def human_size(size: int) -> str:
    """A size in the units people know (decimal, as file managers show them), in the page's
    language: "2.1 GB", "2,1 Go", "2,1 ГБ"."""
    units = [_("bytes"), _("KB"), _("MB"), _("GB")]
    value, unit = float(size), 0
    while value >= 1000 and unit < len(units) - 1:
        value, unit = value / 1000, unit + 1
    shown = format_decimal(round(value, 1) if unit else int(value), format="#,##0.#")
    return f"{shown}\u00a0{units[unit]}"


@bp.get("/favicon.ico")
def favicon() -> ResponseReturnValue:
    """The tab's icon (browsers ask for it on every page; a 404 there is noise)."""
    return send_from_directory(current_app.static_folder or "static", "favicon.ico", max_age=86400)


@bp.get("/")
def index() -> str:
    """The landing page: what this is, what happens to a tip, how to check the key."""
    return render_template(
        "source/index.html",
        fingerprint=fingerprint(current_app.config["ORG_PUBLIC_KEY_BYTES"]),
        source=current_source(),
    )


@bp.route("/submit", methods=["GET", "POST"])
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
            if proof_of_work.form_gated():  # before anything is stored (docs/ADMIN.md)
                proof_of_work.check(
                    request.form.get("pow_challenge"), request.form.get("pow_nonce")
                )
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
            limits().spend("submission")  # work done: counted only now
            log_in(source)
        except FormError as exc:
            error = exc.detail
        except proof_of_work.PowError as exc:
            error = proof_of_work.message(exc)
        else:
            return render_template(
                "source/submitted.html", codename=codename, sealed_by="server", files=len(parts)
            )
    elif request.method == "POST":
        error = _("The form expired. Please send it again.")
    return _submit_page(form, keys, error, 400 if error else 200)


def _submit_page(
    form: SubmitForm, keys: keyset.Current, error: str | None, status: int, message: str = ""
) -> ResponseReturnValue:
    """The submit form again, with an error and the message the source typed."""
    source = current_source()
    return render_template(
        "source/submit.html",
        form=form,
        source=source,
        error=error,
        message=message,
        # A returning source's reply key lets the browser seal for them too.
        data={**_page_data(keys), "reply_public_key": b64e(source.reply_public_key)}
        if source
        else _page_data(keys),
    ), status


def too_large(length: int) -> ResponseReturnValue:
    """The 413 for a no-JS submission declared larger than the admin's limit, made before its
    body is read (security._refuse_oversize_early): the form again, with the message typed.
    """
    keys = _keys()
    if keys is None:
        return render_template("source/closed.html"), 503
    message = ""
    boundary = request.mimetype_params.get("boundary")
    if length and request.mimetype == "multipart/form-data" and boundary:
        head = LimitedStream(request.environ["wsgi.input"], min(length, MESSAGE_HEAD))
        message = leading_fields(head, boundary, MESSAGE_HEAD).get("message", "")
    limit = human_size(settings.max_submission_size())
    if message:
        error = _(
            "Your files are larger than this tip line accepts (%(limit)s in all), so nothing "
            "was sent. Your message is still below: choose fewer or smaller files and press "
            "Send again.",
            limit=limit,
        )
    else:
        error = _(
            "Your files are larger than this tip line accepts (%(limit)s in all), so nothing "
            "was sent. Choose fewer or smaller files and send again.",
            limit=limit,
        )
    response = make_response(_submit_page(SubmitForm(formdata=None), keys, error, 413, message))
    # The rest of the body is never read: close the connection rather than read it through.
    response.headers["Connection"] = "close"
    return response


def refused(status: int) -> ResponseReturnValue:
    """The error page for a no-JS submission refused before its body was read (expired form,
    or the tip line at capacity): the connection closes rather than read the rest through.
    """
    if status == 400:
        message = _("The form expired. Please send it again.")
    else:
        message = errors.message_for(status)
    response = make_response(errors.respond(status, message))
    response.headers["Connection"] = "close"
    return response


@bp.get("/submit/too-large")
@crypto_page
def too_large_at_the_proxy() -> ResponseReturnValue:
    """What nginx shows (deploy/nginx/tipline.conf, error_page 413) when it refuses a no-JS
    submission over the configured ceiling: the app's own 413 page, in the source's language
    (the message cannot be given back: nginx read none of the body).
    """
    return too_large(0)


@bp.post("/written")
def written() -> ResponseReturnValue:
    """The new source says the codename is written down: what happens now, and what next."""
    require_source()
    if not ActionForm().validate_on_submit():
        return render_template("source/error.html", message=_("The form expired.")), 400
    return render_template("source/next.html")


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Forget the session; tell the source what else to do to leave no trace."""
    if not ActionForm().validate_on_submit():
        return render_template("source/error.html", message=_("The form expired.")), 400
    log_out()
    return render_template("source/logout.html")


# The reading side (log in, replies, attachments) is on this blueprint too.
from . import source_read  # noqa: E402,F401
