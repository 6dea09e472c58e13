"""The journalist interface (/journalist/): sources and submissions as metadata only, stars,
export bundles for the USB stick, marking downloaded, deleting, and reply-bundle upload.

Nothing here can read a submission: the server holds no secret key. The journalist carries
the export bundle to the desk, which opens it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import BinaryIO, cast

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from sqlalchemy.orm import Session

from .. import bundle
from . import audit, db, keyset, transfer
from .auth import account, staff_required
from .forms import ActionForm
from .i18n import refusal
from .models import Source
from .sources import blobs
from .spooled import SpoolFile
from .staff_forms import ReplyBundleForm, SelectionForm

bp = Blueprint("journalist", __name__, url_prefix="/journalist")
bp.context_processor(keyset.notice_context)


def _source(source_id: str) -> Source:
    if not transfer.ID.match(source_id):
        abort(404)
    found = db.session().get(Source, source_id)
    if found is None:
        abort(404)
    return found


def _error(message: str, status: int = 400) -> ResponseReturnValue:
    return render_template("journalist/error.html", message=message, status=status), status


@bp.get("/")
@staff_required()
def index() -> ResponseReturnValue:
    """Every source, newest first, a page at a time."""
    try:
        rows, following = transfer.list_sources(
            db.session(),
            account().id,
            request.args.get("after"),
            assigned=request.args.get("assigned") == "1",
            new=request.args.get("new") == "1",
        )
    except transfer.TransferError as exc:
        return _error(refusal(exc))
    return render_template(
        "journalist/index.html",
        sources=rows,
        following=following,
        filters={k: "1" for k in ("assigned", "new") if request.args.get(k) == "1"},
        action=ActionForm(),
        me=account(),
    )


@bp.get("/sources/<source_id>")
@staff_required()
def source(source_id: str) -> ResponseReturnValue:
    """One source's submissions (metadata only), with the selection form."""
    found = _source(source_id)
    try:
        rows, following = transfer.list_submissions(
            db.session(), blobs(), account().id, found.id, request.args.get("after")
        )
    except transfer.TransferError as exc:
        return _error(refusal(exc))
    return render_template(
        "journalist/source.html",
        source=found,
        submissions=rows,
        following=following,
        form=SelectionForm(),
        action=ActionForm(),
        assigned={a.username for a in transfer.assignees(db.session(), found.id)},
        assignable=[a.username for a in transfer.assignable(db.session())],
        me=account(),
    )


@bp.post("/sources/<source_id>/assign")
@staff_required()
def assign(source_id: str) -> ResponseReturnValue:
    """Assign a source to the checked journalists (and to no one else)."""
    found = _source(source_id)
    if not ActionForm().validate_on_submit():
        return _error(gettext("The form expired. Reload the page and try again."))
    try:
        added, removed = transfer.assign(db.session(), found, request.form.getlist("accounts"))
    except transfer.TransferError as exc:
        return _error(refusal(exc))
    audit.record(db.session(), account().username, "assign", audit_assign(added, removed))
    return redirect(url_for("journalist.source", source_id=found.id), 303)


def audit_assign(added: list[str], removed: list[str]) -> str:
    """The audit detail of an assignment: usernames only, never the source."""
    return f"added: {', '.join(added) or '-'}; removed: {', '.join(removed) or '-'}"[:500]


@bp.post("/sources/<source_id>/star")
@staff_required()
def star(source_id: str) -> ResponseReturnValue:
    """Star or unstar a source."""
    found = _source(source_id)
    if not ActionForm().validate_on_submit():
        return _error(gettext("The form expired. Reload the page and try again."))
    transfer.set_star(db.session(), found, not found.starred)
    return redirect(
        (request.form.get("next") == "source" and url_for("journalist.source", source_id=found.id))
        or url_for("journalist.index"),
        303,
    )


def export_response(items: list[bundle.ExportItem], mark: bool, account_id: str) -> Response:
    """Stream an export bundle with the triage updates not yet delivered to this account; when
    every byte has gone out, mark the items downloaded and the updates delivered (if ``mark``)."""
    store, engine = blobs(), db.engine_of(current_app)
    ids = [item.id for item in items]
    updates = transfer.triage_items(db.session(), account_id, bundle.MAX_BUNDLE_ITEMS - len(ids))

    def generate() -> Iterator[bytes]:
        yield from transfer.export_stream(store, items, updates)
        if mark:
            with Session(engine) as session:
                transfer.mark_downloaded(session, account_id, ids, limit=bundle.MAX_BUNDLE_ITEMS)
                transfer.mark_delivered(session, account_id, [u.id for u in updates])

    day = datetime.datetime.now(datetime.UTC).date().isoformat()
    return Response(
        stream_with_context(generate()),
        mimetype="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="tipline-export-{day}.tlb"'},
    )


@bp.post("/selection")
@staff_required()
def selection() -> ResponseReturnValue:
    """Act on the checked submissions: export, mark downloaded, or ask before deleting."""
    if not SelectionForm().validate_on_submit():
        return _error(gettext("The form expired. Reload the page and try again."))
    action = request.form.get("action")
    try:
        rows = transfer.selected(db.session(), request.form.getlist("ids"))
    except transfer.TransferError as exc:
        return _error(refusal(exc))
    ids = [r.id for r in rows]
    back = request.form.get("back", "")
    back_url = (
        url_for("journalist.source", source_id=back)
        if transfer.ID.match(back)
        else url_for("journalist.index")
    )
    if action == "export":
        audit.record(db.session(), account().username, "export", f"{len(rows)} submissions")
        return export_response(
            transfer.export_items(db.session(), rows), mark=True, account_id=account().id
        )
    if action == "downloaded":
        transfer.mark_downloaded(db.session(), account().id, ids)
        return redirect(back_url, 303)
    if action == "delete":
        return render_template(
            "journalist/confirm_delete.html",
            ids=ids,
            count=len(ids),
            form=SelectionForm(),
            back=back_url,
            me=account(),
        )
    return _error(gettext("Choose what to do with the selection."))


@bp.post("/delete")
@staff_required()
def delete_confirmed() -> ResponseReturnValue:
    """Delete the submissions the confirmation page listed."""
    if not SelectionForm().validate_on_submit() or request.form.get("confirm") != "yes":
        return _error(gettext("The deletion was not confirmed. Nothing was deleted."))
    try:
        ids = transfer.check_ids(request.form.getlist("ids"))
    except transfer.TransferError as exc:
        return _error(refusal(exc))
    count = transfer.delete_submissions(db.session(), blobs(), ids)
    audit.record(db.session(), account().username, "delete-submissions", f"{count} submissions")
    return render_template("journalist/deleted.html", count=count, me=account())


@bp.route("/sources/<source_id>/delete", methods=["POST"])
@staff_required()
def delete_source(source_id: str) -> ResponseReturnValue:
    """Delete a source and everything it sent, after a confirmation page."""
    found = _source(source_id)
    form = SelectionForm()
    if not form.validate_on_submit():
        return _error(gettext("The form expired. Reload the page and try again."))
    if request.form.get("confirm") != "yes":
        return render_template(
            "journalist/confirm_delete.html", source=found, form=form, count=None, me=account()
        )
    count = transfer.delete_source(db.session(), blobs(), found)
    audit.record(db.session(), account().username, "delete-source", f"{count} submissions")
    return render_template("journalist/deleted.html", count=count, me=account())


@bp.post("/export-new")
@staff_required()
def export_new() -> ResponseReturnValue:
    """Everything this journalist has not downloaded yet, as one bundle."""
    if not ActionForm().validate_on_submit():
        return _error(gettext("The form expired. Reload the page and try again."))
    rows = transfer.new_submissions(db.session(), account().id)
    if not rows and not transfer.triage_items(db.session(), account().id, 1):
        return _error(gettext("There is nothing new to download."), 404)
    audit.record(db.session(), account().username, "export", f"{len(rows)} submissions")
    return export_response(
        transfer.export_items(db.session(), rows), mark=True, account_id=account().id
    )


@bp.route("/replies", methods=["GET", "POST"])
@staff_required()
def replies() -> ResponseReturnValue:
    """Upload a reply bundle made on the desk."""
    form = ReplyBundleForm()
    if request.method == "GET":
        return render_template("journalist/replies.html", form=form, result=None, me=account())
    if not form.validate_on_submit():
        return _error(gettext("Choose a reply bundle file (the form may also have expired)."))
    stream = form.bundle.data.stream
    source_stream = stream.reader() if isinstance(stream, SpoolFile) else stream
    try:
        result = transfer.import_replies(db.session(), blobs(), cast(BinaryIO, source_stream))
    except bundle.BundleError as exc:
        return _error(
            gettext(
                "The reply bundle was refused, nothing was stored: %(reason)s.", reason=refusal(exc)
            )
        )
    audit.record(db.session(), account().username, "upload-replies", f"{result.added} added")
    return render_template(
        "journalist/replies.html", form=ReplyBundleForm(formdata=None), result=result, me=account()
    ), 201
