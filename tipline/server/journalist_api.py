"""The journalist JSON API (/api/journalist/): the same operations as the pages, for scripts,
authenticated by a bearer token (``Authorization: Bearer tl_...``) made on the account page.

Tokens are stored hashed. Cookies are ignored here, so there is no CSRF to guard against.
The routes are described in docs/openapi.json, served at /api/journalist/openapi.json; a test
checks that the two agree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO, cast

from flask import Blueprint, Response, abort, g, jsonify, request
from flask.typing import ResponseReturnValue

from .. import bundle
from . import accounts, audit, db, transfer
from .journalist import audit_assign, export_response
from .limits import limits
from .models import Account, Source
from .sources import blobs

bp = Blueprint("journalist_api", __name__, url_prefix="/api/journalist")
OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
MAX_JSON = 128 * 1024


@bp.before_request
def _authenticate() -> ResponseReturnValue | None:
    if request.endpoint == "journalist_api.openapi":
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    found = None
    if scheme.lower() == "bearer" and token:
        found = accounts.account_for_token(db.session(), token.strip())
    if found is None:
        response = jsonify(error="a valid bearer token is needed (make one on your account page)")
        response.headers["WWW-Authenticate"] = 'Bearer realm="tipline"'
        return response, 401
    g.api_account = found
    return None


# The query parameters each operation takes (docs/openapi.json); any other is refused, so a
# typo such as ?limt=10 is an error rather than silently the default.
PAGED = {"after", "limit"}
QUERY = {
    "journalist_api.sources": PAGED | {"assigned", "new"},
    "journalist_api.submissions": PAGED,
}


@bp.before_request
def _known_query() -> ResponseReturnValue | None:
    unknown = set(request.args) - QUERY.get(request.endpoint or "", set())
    if unknown and request.endpoint != "journalist_api.openapi":
        return jsonify(error="unknown query parameters: " + ", ".join(sorted(unknown))[:200]), 400
    return None


def _me() -> Account:
    found: Account = g.api_account
    return found


def _json() -> dict[str, Any]:
    if (request.content_length or 0) > MAX_JSON:
        abort(413)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise transfer.TransferError("send a JSON object")
    return body


def _ids(body: dict[str, Any]) -> list[str]:
    ids = body.get("ids")
    if not isinstance(ids, list):
        raise transfer.TransferError("ids must be a list of submission ids")
    return transfer.check_ids(ids)


def _after() -> str | None:
    """Where a page continues; present but empty is refused (the document's pattern)."""
    raw = request.args.get("after")
    if raw is not None and not raw:
        raise transfer.TransferError("after must be the next value of the previous page")
    return raw


def _limit() -> int:
    """The page size asked for: absent means the default; anything but digits ("null", "",
    "1.5") is refused, as the document says, rather than taken as the default."""
    raw = request.args.get("limit")
    if raw is None:
        return transfer.PAGE
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= transfer.MAX_PAGE:
        raise transfer.TransferError(f"limit must be 1 to {transfer.MAX_PAGE}")
    return int(raw)


def _flag(name: str) -> bool:
    """A filter about the caller: ``NAME=me`` on, absent off, anything else refused. (Not
    ``true``/``false``: in a query string those cannot be told from a JSON boolean, so the
    document could not say which requests are wrong.)"""
    raw = request.args.get(name)
    if raw not in (None, "me"):
        raise transfer.TransferError(f"{name} must be me, or left out")
    return raw == "me"


@bp.errorhandler(transfer.TransferError)
@bp.errorhandler(bundle.BundleError)
def _refused(exc: Exception) -> ResponseReturnValue:
    message = exc.message if isinstance(exc, transfer.TransferError | bundle.BundleError) else ""
    # Well-formed ids that name nothing (any more) are not a malformed request: 404.
    return jsonify(error=message), 404 if isinstance(exc, transfer.GoneError) else 400


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI document describing this API."""
    return Response(OPENAPI.read_bytes(), mimetype="application/json")


@bp.get("/sources")
def sources() -> ResponseReturnValue:
    """Sources, newest first, a page at a time (``after`` is the ``next`` of the last page);
    ``assigned=true`` keeps those assigned to the caller, ``new=true`` those with something the
    caller has not downloaded yet."""
    rows, following = transfer.list_sources(
        db.session(),
        _me().id,
        _after(),
        _limit(),
        assigned=_flag("assigned"),
        new=_flag("new"),
    )
    return jsonify(
        sources=[
            {
                "id": r.id,
                "designation": r.designation,
                "created": r.created.isoformat(),
                "starred": r.starred,
                "submissions": r.submissions,
                "new": r.new,
                "last_received": r.last_received.isoformat() if r.last_received else None,
                "assigned": list(r.assigned),
            }
            for r in rows
        ],
        next=following,
    )


def _source(source_id: str) -> Source:
    found = db.session().get(Source, source_id) if transfer.ID.match(source_id) else None
    if found is None:
        abort(404)
    return found


@bp.get("/sources/<source_id>/submissions")
def submissions(source_id: str) -> ResponseReturnValue:
    """One source's submissions (metadata only), newest first."""
    found = _source(source_id)
    rows, following = transfer.list_submissions(
        db.session(), blobs(), _me().id, found.id, _after(), _limit()
    )
    return jsonify(
        submissions=[
            {
                "id": r.id,
                "source_id": r.source_id,
                "size": r.size,
                "received": r.received.isoformat(),
                "downloaded": r.downloaded,
                "sealed_to": list(r.keys),
                "sealed_to_keys": [n.to_json() for n in r.names],
            }
            for r in rows
        ],
        next=following,
    )


@bp.post("/sources/<source_id>/star")
def star(source_id: str) -> ResponseReturnValue:
    """Set or clear a source's star."""
    found = _source(source_id)
    starred = _json().get("starred")
    if not isinstance(starred, bool):
        raise transfer.TransferError("starred must be true or false")
    transfer.set_star(db.session(), found, starred)
    return jsonify(starred=starred)


@bp.post("/sources/<source_id>/assign")
def assign(source_id: str) -> ResponseReturnValue:
    """Assign a source to exactly the journalists named in ``usernames``."""
    found = _source(source_id)
    names = _json().get("usernames")
    if not isinstance(names, list):
        raise transfer.TransferError("usernames must be a list of account names")
    added, removed = transfer.assign(db.session(), found, names)
    audit.record(db.session(), _me().username, "assign", audit_assign(added, removed) + " (API)")
    return jsonify(
        assigned=[a.username for a in transfer.assignees(db.session(), found.id)],
        added=added,
        removed=removed,
    )


@bp.post("/export")
def export() -> ResponseReturnValue:
    """An export bundle of the submissions named in ``ids``, or of all new ones (``new``)."""
    body = _json()
    if body.get("new") is True:
        rows = transfer.new_submissions(db.session(), _me().id)
        if not rows and not transfer.triage_items(db.session(), _me().id, 1):
            return jsonify(error="there is nothing new"), 404
    else:
        rows = transfer.selected(db.session(), _ids(body))
    mark = body.get("mark_downloaded", True)
    if not isinstance(mark, bool):
        raise transfer.TransferError("mark_downloaded must be true or false")
    audit.record(db.session(), _me().username, "export", f"{len(rows)} submissions (API)")
    return export_response(
        transfer.export_items(db.session(), rows), mark=mark, account_id=_me().id
    )


@bp.post("/submissions/downloaded")
def downloaded() -> ResponseReturnValue:
    """Mark submissions as downloaded."""
    changed = transfer.mark_downloaded(db.session(), _me().id, _ids(_json()))
    return jsonify(marked=changed)


@bp.post("/submissions/delete")
def delete() -> ResponseReturnValue:
    """Delete submissions (the API has no confirmation page: the caller confirms by sending
    ``"confirm": true``).
    """
    body = _json()
    if body.get("confirm") is not True:
        raise transfer.TransferError('send "confirm": true to delete')
    count = transfer.delete_submissions(db.session(), blobs(), _ids(body))
    audit.record(db.session(), _me().username, "delete-submissions", f"{count} submissions (API)")
    return jsonify(deleted=count)


@bp.post("/replies")
def upload_replies() -> ResponseReturnValue:
    """A reply bundle as the request body (application/octet-stream), streamed."""
    if not limits().room("reply-bundle", _me().id):
        abort(429)
    if request.mimetype != "application/octet-stream":
        raise transfer.TransferError("send the bundle as application/octet-stream")
    if request.content_length is None:
        raise transfer.TransferError("the bundle needs a Content-Length")
    result = transfer.import_replies(db.session(), blobs(), cast(BinaryIO, request.stream))
    limits().spend("reply-bundle", _me().id)
    audit.record(db.session(), _me().username, "upload-replies", f"{result.added} added (API)")
    return jsonify(added=result.added, already=result.already), 201


def document() -> dict[str, Any]:
    """The OpenAPI document, parsed (for tests and tools)."""
    loaded: dict[str, Any] = json.loads(OPENAPI.read_text("utf-8"))
    return loaded
