"""Test helpers that act as the desk would: make replies (sealed to the source's reply key and a
journalist's key, stored through the server's blob store and model) and open submissions."""

from __future__ import annotations

import io

from flask import Flask
from sqlalchemy import select

from tipline.crypto import keys
from tipline.crypto.codename import derive, normalize
from tipline.crypto.envelope import open_envelope, seal
from tipline.crypto.inner import Attachment, Inner
from tipline.server import db
from tipline.server.models import Reply, Source, Submission, new_id
from tipline.wordlist import load_wordlist


def add_reply(
    app: Flask,
    codename: str,
    journalist: keys.RecipientSecret,
    text: str,
    files: dict[str, bytes] | None = None,
) -> str:
    """Seal ``text`` and ``files`` as a reply to the source with ``codename``, as the desk
    does (tipline.desk.outgoing.write_reply); return the reply id."""
    derived = derive(normalize(load_wordlist(), codename))
    attached = tuple(Attachment(name, len(data), "") for name, data in (files or {}).items())
    inner = Inner(kind="reply", sealed_by="desk", message=text, attachments=attached)
    out = io.BytesIO()
    seal(
        out,
        [derived.reply_public_key, journalist.public.public_key],
        inner,
        [io.BytesIO(data) for data in (files or {}).values()],
    )
    reply_id = new_id()
    with app.app_context():
        session = db.session()
        source = session.scalars(
            select(Source).where(Source.token_hash == derived.token_hash)
        ).one()
        size = app.extensions["tipline.blobs"].write(
            "replies", reply_id, lambda f: f.write(out.getvalue())
        )
        session.add(Reply(id=reply_id, source_id=source.id, size=size))
        session.commit()
    return reply_id


def submission_ids(app: Flask) -> set[str]:
    """The ids of every stored submission."""
    with app.app_context():
        return set(db.session().scalars(select(Submission.id)).all())


def open_stored(
    app: Flask, journalist: keys.RecipientSecret, submission_id: str
) -> tuple[Inner, list[bytes]]:
    """Open a stored submission as the desk would; its inner manifest and attachments."""
    got: list[io.BytesIO] = []

    def sink(_index: int, _attachment: Attachment) -> io.BytesIO:
        got.append(io.BytesIO())
        return got[-1]

    with app.extensions["tipline.blobs"].open("submissions", submission_id) as blob:
        inner = open_envelope(blob, [journalist.secret_key], sink)
    return inner, [g.getvalue() for g in got]
