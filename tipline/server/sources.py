"""Sources, their sessions and their submissions: the logic both submission paths share."""

from __future__ import annotations

import time

from flask import abort, current_app, g, session
from sqlalchemy import select

from ..crypto.codename import login_token_hash
from ..crypto.primitives import random_below
from ..wordlist import load_wordlist
from . import db, faults
from .blobs import Store
from .models import Reply, Source, Submission, new_id


def blobs() -> Store:
    """The app's blob store."""
    store: Store = current_app.extensions["tipline.blobs"]
    return store


def designation() -> str:
    """A readable two-word name for journalists to tell sources apart; not the codename, and
    not derived from it.
    """
    words = load_wordlist().words
    return f"{words[random_below(len(words))]} {words[random_below(len(words))]}"


def new_source(token_hash: bytes, reply_public_key: bytes) -> Source:
    """A source row, not yet committed: it is stored only with its first submission
    (``commit_submission``), so a failed or cancelled first attempt leaves nothing behind.
    """
    return Source(
        id=new_id(),
        designation=designation(),
        token_hash=token_hash,
        reply_public_key=reply_public_key,
    )


def find_by_login_token(token: bytes) -> Source | None:
    """The source a login token belongs to, if any."""
    return find_by_token_hash(login_token_hash(token))


def find_by_token_hash(token_hash: bytes) -> Source | None:
    """The source whose stored token hash this is, if any."""
    return db.session().scalars(select(Source).where(Source.token_hash == token_hash)).first()


def _new_session(keep_language: bool = True) -> None:
    """Start afresh (no session fixation); Flask-WTF caches this request's CSRF token in ``g``,
    so drop that too, or the page would carry a token of the session just cleared.

    The chosen language stays: a source who chose Russian must read the codename page, and
    every page after logging in, in Russian (Tor Browser asks for English whatever the person
    reads). Only logging out forgets it.
    """
    language = session.get("lang") if keep_language else None
    session.clear()
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    if isinstance(language, str):
        session["lang"] = language


def log_in(source: Source) -> None:
    """Mark the session as this source's, until ``SESSION_MINUTES`` from now."""
    _new_session()
    session["source"] = source.id
    session["epoch"] = source.session_epoch
    session["until"] = int(time.time()) + 60 * current_app.config["SESSION_MINUTES"]


def log_out() -> None:
    """Forget the source (the language choice goes too: it says something about a person),
    and end every other session of theirs: a copied cookie must not outlive the logout."""
    source = current_source()
    if source is not None:
        source.session_epoch += 1
        db.session().commit()
    _new_session(keep_language=False)


def current_source() -> Source | None:
    """The logged-in source, or None (a session past its time counts as logged out)."""
    source_id = session.get("source")
    if not isinstance(source_id, str):
        return None
    if not isinstance(session.get("until"), int) or session["until"] < time.time():
        _new_session()
        return None
    source = db.session().get(Source, source_id)
    if source is None or session.get("epoch") != source.session_epoch:
        _new_session()
        return None
    return source


def require_source() -> Source:
    """The logged-in source, or a 401 (the error page explains how to log in)."""
    source = current_source()
    if source is None:
        abort(401)
    return source


def commit_submission(source: Source, submission_id: str, size: int) -> Submission:
    """Commit the row of a blob that is already durable (and the source, if it is new in this
    session); remove the blob if that fails, so nothing is left half stored.
    """
    row = Submission(id=submission_id, source_id=source.id, size=size)
    source.submitted = True
    faults.point("blob-written")  # a kill here leaves a blob with no row: swept
    try:
        db.session().add(source)
        db.session().add(row)
        db.session().commit()
    except BaseException:
        db.session().rollback()
        blobs().delete("submissions", submission_id)
        raise
    return row


def replies_of(source: Source) -> list[Reply]:
    """A source's replies, oldest first."""
    query = select(Reply).where(Reply.source_id == source.id).order_by(Reply.created, Reply.id)
    return list(db.session().scalars(query).all())


def reply_of(source: Source, reply_id: str) -> Reply | None:
    """One of the source's replies (another source's id is simply not found)."""
    reply = db.session().get(Reply, reply_id)
    return reply if reply is not None and reply.source_id == source.id else None


def delete_read_reply(reply: Reply) -> bool:
    """Delete a reply the source has read; False (and nothing done) if it is unread, since it
    may hold something they have not seen.
    """
    if not reply.read:
        return False
    db.session().delete(reply)
    db.session().commit()
    blobs().delete("replies", reply.id)
    return True
