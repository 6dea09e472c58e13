"""The JSON and octet-stream API the browser's page controllers use (the client-side path).

The browser makes the codename, derives the login token and reply key, verifies the manifest,
seals, and uploads ciphertext in resumable chunks. The server sees the login token (to hash it),
the reply public key and ciphertext, never the codename or a plaintext byte.

A first-time source sends its login token and reply key with its first upload; the source is
stored only when that upload finishes, in the same commit as the submission, and the session
is logged in then. Until that moment the upload belongs to the session that started it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, BinaryIO, cast

from flask import Blueprint, Response, abort, current_app, jsonify, request, send_file, session
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf.csrf import generate_csrf

from ..crypto.codename import login_token_hash
from ..crypto.encoding import b64d
from ..crypto.errors import TiplineError
from . import db, keyset, settings, uploads
from .limits import limits
from .models import Reply, Source, Submission, Upload, today
from .sources import (
    blobs,
    current_source,
    delete_read_reply,
    find_by_login_token,
    log_in,
    replies_of,
    reply_of,
    require_source,
)

bp = Blueprint("api", __name__, url_prefix="/api/source")


MAX_JSON = 16384
PENDING = "uploads"  # the session's unfinished uploads for a source not stored yet
MAX_PENDING = 4


class BadRequestError(TiplineError):
    """the request is not valid"""


def _json() -> dict[str, Any]:
    if (request.content_length or 0) > MAX_JSON:
        abort(413)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequestError("send a small JSON object")
    return body


def _b64(body: dict[str, Any], name: str, size: int | None) -> bytes:
    return b64d(body.get(name), size, BadRequestError, name)


def _int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequestError(f"{name} must be a whole number")
    return value


def _keys() -> keyset.Current:
    keys = keyset.current(db.session(), current_app.config["ORG_PUBLIC_KEY_BYTES"])
    if keys is None or not settings.current().submissions_open:
        abort(503)
    return keys


def _pending() -> list[str]:
    found = session.get(PENDING)
    return [i for i in found if isinstance(i, str)] if isinstance(found, list) else []


def _upload(upload_id: str) -> Upload:
    """An upload of the logged-in source, or a first-time upload this session started
    (someone else's id is simply not found).
    """
    upload = db.session().get(Upload, upload_id)
    if upload is not None and upload.source_id is None and upload_id in _pending():
        return upload
    source = current_source()
    if source is None:
        abort(401)
    if upload is None or upload.source_id != source.id:
        abort(404)
    return upload


@bp.get("/manifest")
def manifest() -> ResponseReturnValue:
    """The signed key manifest, exactly as installed; the browser verifies it itself."""
    return Response(_keys().file, mimetype="application/json")


@bp.post("/login")
def login() -> ResponseReturnValue:
    """A returning source's login token."""
    source = find_by_login_token(_b64(_json(), "login_token", 32))
    if source is None:
        return jsonify(
            error=_("That codename is not known here. Check each word; a codename has seven words.")
        ), 401
    log_in(source)
    return jsonify(ok=True, csrf_token=generate_csrf())  # a new session: its token


@bp.post("/uploads")
def create_upload() -> ResponseReturnValue:
    """Start an upload: the manifest version the page sealed to, the header, the total size;
    and, from a first-time source, its login token (hashed here, never stored) and reply key.
    """
    if not limits().room("submission"):
        abort(429)  # the tip line's capacity, counted in started uploads (limits.py)
    body = _json()
    source: Source | uploads.NewSource | None = current_source()
    if source is None:
        if "login_token" not in body:
            abort(401)
        token_hash = login_token_hash(_b64(body, "login_token", 32))
        source = uploads.NewSource(token_hash, _b64(body, "reply_public_key", 32))
    keys = _keys()
    if _int(body, "manifest_version") != keys.version:
        raise uploads.StaleKeysError()
    header = _b64(body, "header", None)
    size = _int(body, "size")
    max_size = uploads.max_envelope_size(settings.max_submission_size())
    uploads.check_header(header, size, keys, max_size)
    uploads.expire_old(blobs(), current_app.config["UPLOAD_TTL_HOURS"])
    upload = uploads.create(source, header, size, keys)
    limits().spend("submission")
    if upload.source_id is None:
        session[PENDING] = [*_pending(), upload.id][-MAX_PENDING:]
    return jsonify(id=upload.id, received=len(header), size=size), 201


@bp.get("/uploads/<upload_id>")
def upload_status(upload_id: str) -> ResponseReturnValue:
    """How much of an upload the server holds: where a resumed upload continues."""
    upload = _upload(upload_id)
    return jsonify(received=uploads.received(upload), size=upload.size)


@bp.put("/uploads/<upload_id>")
def upload_chunk(upload_id: str) -> ResponseReturnValue:
    """One chunk at ``?offset=``; acknowledged only once it is on disk."""
    upload = _upload(upload_id)
    offset = request.args.get("offset", type=int)
    length = request.content_length
    if offset is None or offset < 0:
        raise BadRequestError("offset is missing")
    if length is None:
        raise BadRequestError("the chunk needs a Content-Length")
    if length > current_app.config["MAX_CHUNK_SIZE"] or length == 0:
        abort(413)
    try:
        done = uploads.append(upload, offset, length, cast(BinaryIO, request.stream))
    except uploads.WrongOffsetError:
        return jsonify(
            error=_("Resume from the offset given."), received=uploads.received(upload)
        ), 409
    return jsonify(received=done)


@bp.post("/uploads/<upload_id>/finish")
def finish_upload(upload_id: str) -> ResponseReturnValue:
    """The whole envelope is here: store it as a submission (and a first-time source with it,
    logging this session in as that source; the page gets the new session's CSRF token).
    Finishing again (two at once, or a retry after a lost answer) says it is stored: 200.
    """
    # Held here, so ``_upload`` sees this same row even if a finish commits meanwhile.
    found = db.session().get(Upload, upload_id)
    if found is None:
        stored = _finished_earlier(upload_id)
        if stored is not None:
            return jsonify(ok=True, size=stored.size, csrf_token=generate_csrf()), 200
    upload = _upload(upload_id)
    keys = keyset.current(db.session(), current_app.config["ORG_PUBLIC_KEY_BYTES"])
    new = upload.source_id is None
    done = uploads.finish(upload, keys)
    if new:
        log_in(done.source)
    return jsonify(
        ok=True, size=done.submission.size, csrf_token=generate_csrf()
    ), 200 if done.already else 201


def _finished_earlier(upload_id: str) -> Submission | None:
    """The submission an earlier finish stored from this upload, if this session may know:
    the logged-in source's own; or, for the session that started a first-time upload whose
    answer was lost (so it never got the new session), the new source's, which logs it in,
    but only while that source has never logged out and is at most a day old.
    """
    row = db.session().get(Submission, upload_id)
    if row is None:
        return None
    source = current_source()
    if source is not None:
        return row if row.source_id == source.id else None
    if upload_id not in _pending():
        return None
    owner = db.session().get(Source, row.source_id)
    if owner is None or owner.session_epoch or owner.created < today() - timedelta(days=1):
        return None
    log_in(owner)
    return row


@bp.delete("/uploads/<upload_id>")
def cancel_upload(upload_id: str) -> ResponseReturnValue:
    """The source pressed cancel: drop what was sent."""
    uploads.cancel(_upload(upload_id))
    return "", 204


@bp.get("/replies")
def list_replies() -> ResponseReturnValue:
    """The logged-in source's replies (ids, sizes, days)."""
    rows = replies_of(require_source())
    return jsonify(
        replies=[
            {"id": r.id, "size": r.size, "created": r.created.isoformat(), "read": r.read}
            for r in rows
        ]
    )


def _reply(reply_id: str) -> Reply:
    reply = reply_of(require_source(), reply_id)
    if reply is None:
        abort(404)
    return reply


@bp.get("/replies/<reply_id>")
def get_reply(reply_id: str) -> ResponseReturnValue:
    """A reply envelope, for the browser to open with the reply key."""
    reply = _reply(reply_id)
    return send_file(blobs().open("replies", reply.id), mimetype="application/octet-stream")


@bp.post("/replies/<reply_id>/read")
def mark_read(reply_id: str) -> ResponseReturnValue:
    """The browser opened the reply: from now on the source may delete it."""
    reply = _reply(reply_id)
    reply.read = True
    db.session().commit()
    return jsonify(ok=True)


@bp.delete("/replies/<reply_id>")
def delete_reply(reply_id: str) -> ResponseReturnValue:
    """Delete a reply that was read."""
    if not delete_read_reply(_reply(reply_id)):
        return jsonify(error=_("Read a reply before you delete it.")), 409
    return "", 204
