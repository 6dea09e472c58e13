"""What journalists do with sources and submissions, shared by the pages and the JSON API:
keyset-paginated lists (metadata only), stars, export bundles, marking downloaded, deleting,
and importing reply bundles made on the desk.

Lists walk an index by key (``after`` the last row seen), never by OFFSET, so the hundredth page
costs what the first does.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from flask import current_app
from sqlalchemy import and_, case, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import bundle
from ..crypto import format as fmt
from ..crypto.errors import EnvelopeFormatError, TiplineError
from ..crypto.keys import key_id
from . import faults, keyset
from .blobs import Store
from .db import forget
from .i18n import _
from .models import (
    Account,
    Assignment,
    Download,
    Reply,
    Source,
    Submission,
    TriageDelivery,
    TriageUpdate,
    Upload,
    today,
)
from .uploads import discard, plausible_size

ID = re.compile(r"\A[0-9a-f]{32}\Z")
PAGE = 50
MAX_PAGE = 200
MAX_SELECTION = 1000


class TransferError(TiplineError):
    """the request was refused"""


class GoneError(TransferError):
    """some of the selected items no longer exist"""


@dataclass(frozen=True)
class SourceRow:
    """One line of the sources list."""

    id: str
    designation: str
    created: datetime.date
    starred: bool
    submissions: int
    new: int
    last_received: datetime.date | None
    assigned: tuple[str, ...] = ()  # usernames, sorted


@dataclass(frozen=True)
class SubmissionRow:
    """One submission, metadata only."""

    id: str
    source_id: str
    size: int
    received: datetime.date
    downloaded: bool
    keys: tuple[str, ...]  # labels of the keys it is sealed to (kept for API clients)
    names: tuple[keyset.KeyName, ...] = ()  # the same keys with account and short key id


def check_ids(ids: Sequence[object], limit: int = MAX_SELECTION) -> list[str]:
    """A bounded list of distinct well-formed ids, or ``TransferError``."""
    if len(ids) > limit:
        raise TransferError(_("select at most %(num)d items at a time", num=limit))
    out: dict[str, None] = {}
    for value in ids:
        if not isinstance(value, str) or not ID.match(value):
            raise TransferError(_("an id is not valid"))
        out[value] = None
    return list(out)


def _cursor(after: str | None) -> tuple[datetime.date, str] | None:
    """Parse ``YYYY-MM-DD.id``, the position a list page continues after."""
    if not after:
        return None
    day, row_id = after.partition(".")[::2]
    try:
        parsed = datetime.date.fromisoformat(day)
    except ValueError as exc:
        raise TransferError(_("the page position is not valid")) from exc
    if not ID.match(row_id):
        raise TransferError(_("the page position is not valid"))
    return parsed, row_id


def cursor_of(day: datetime.date, row_id: str) -> str:
    """The position after a row, for the next page's link."""
    return f"{day.isoformat()}.{row_id}"


def _downloaded_by(account_id: str) -> Any:
    """True for a submission the account has downloaded (a correlated EXISTS)."""
    return exists().where(
        Download.submission_id == Submission.id, Download.account_id == account_id
    )


def list_sources(
    db: Session,
    account_id: str,
    after: str | None = None,
    limit: int = PAGE,
    *,
    assigned: bool = False,
    new: bool = False,
) -> tuple[list[SourceRow], str | None]:
    """Sources, newest first, with their counts ("new" meaning not yet downloaded by this
    account); and the position of the next page. ``assigned`` keeps the sources assigned to
    the account, ``new`` those with something new for it."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(Source).order_by(Source.created.desc(), Source.id.desc()).limit(limit + 1)
    position = _cursor(after)
    if position is not None:
        day, row_id = position
        query = query.where(
            or_(Source.created < day, and_(Source.created == day, Source.id < row_id))
        )
    if assigned:
        query = query.where(
            exists().where(Assignment.source_id == Source.id, Assignment.account_id == account_id)
        )
    if new:
        query = query.where(
            exists().where(Submission.source_id == Source.id, ~_downloaded_by(account_id))
        )
    sources = list(db.scalars(query).all())
    more = len(sources) > limit
    sources = sources[:limit]
    counts: dict[str, tuple[int, int, datetime.date | None]] = {}
    if sources:
        grouped = db.execute(
            select(
                Submission.source_id,
                func.count(),
                func.sum(case((_downloaded_by(account_id), 0), else_=1)),
                func.max(Submission.received),
            )
            .where(Submission.source_id.in_([s.id for s in sources]))
            .group_by(Submission.source_id)
        ).all()
        counts = {r[0]: (int(r[1]), int(r[2] or 0), r[3]) for r in grouped}
    people: dict[str, list[str]] = {}
    if sources:
        pairs = db.execute(
            select(Assignment.source_id, Account.username)
            .join(Account, Account.id == Assignment.account_id)
            .where(Assignment.source_id.in_([s.id for s in sources]))
            .order_by(Account.username)
        ).all()
        for source_id, username in pairs:
            people.setdefault(source_id, []).append(username)
    rows = [
        SourceRow(
            s.id,
            s.designation,
            s.created,
            s.starred,
            *counts.get(s.id, (0, 0, None)),
            tuple(people.get(s.id, ())),
        )
        for s in sources
    ]
    following = cursor_of(sources[-1].created, sources[-1].id) if more else None
    return rows, following


def key_names(db: Session) -> dict[bytes, keyset.KeyName]:
    """Key id → account, label and short id, from every manifest ever installed (so retired
    keys keep their names)."""
    return keyset.known_keys(db, current_app.config["ORG_PUBLIC_KEY_BYTES"])


def name_of(names: dict[bytes, keyset.KeyName], kid: bytes) -> keyset.KeyName:
    """A key's name, or "unknown key" for an id no installed manifest listed."""
    return names.get(kid) or keyset.KeyName(kid, _("unknown key"), None)


def sealed_to(store: Store, kind: str, blob_id: str) -> tuple[bytes, ...]:
    """The key ids in a stored envelope's header (it says nothing else without a secret key)."""
    try:
        with store.open(kind, blob_id) as blob:
            head = blob.read(fmt.PREAMBLE_SIZE + 1)
            size = fmt.header_size_from_prefix(head)
            return fmt.parse_header(head + blob.read(size - len(head))).key_ids
    except (OSError, EnvelopeFormatError):
        return ()


def list_submissions(
    db: Session,
    store: Store,
    account_id: str,
    source_id: str,
    after: str | None = None,
    limit: int = PAGE,
) -> tuple[list[SubmissionRow], str | None]:
    """One source's submissions, newest first, each with the labels of the keys it is sealed
    to and whether this account downloaded it, and the position of the next page.
    """
    names = key_names(db)
    limit = max(1, min(limit, MAX_PAGE))
    query = (
        select(Submission)
        .where(Submission.source_id == source_id)
        .order_by(Submission.received.desc(), Submission.id.desc())
        .limit(limit + 1)
    )
    position = _cursor(after)
    if position is not None:
        day, row_id = position
        query = query.where(
            or_(
                Submission.received < day,
                and_(Submission.received == day, Submission.id < row_id),
            )
        )
    found = list(db.scalars(query).all())
    more = len(found) > limit
    found = found[:limit]
    mine = set(
        db.scalars(
            select(Download.submission_id).where(
                Download.account_id == account_id,
                Download.submission_id.in_([s.id for s in found]),
            )
        ).all()
    )
    rows = []
    for s in found:
        named = tuple(name_of(names, k) for k in sealed_to(store, "submissions", s.id))
        labels = tuple(n.label for n in named)
        rows.append(
            SubmissionRow(s.id, s.source_id, s.size, s.received, s.id in mine, labels, named)
        )
    following = cursor_of(found[-1].received, found[-1].id) if more else None
    return rows, following


def set_star(db: Session, source: Source, starred: bool) -> None:
    """Star or unstar a source."""
    source.starred = starred
    db.commit()


def selected(db: Session, ids: Sequence[str]) -> list[Submission]:
    """The submissions with these ids, in the order given; ``TransferError`` if one is gone."""
    ids = check_ids(ids)
    if not ids:
        raise TransferError(_("select at least one submission"))
    rows = {s.id: s for s in db.scalars(select(Submission).where(Submission.id.in_(ids))).all()}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise GoneError(_("%(num)d of the selected submissions no longer exist", num=len(missing)))
    return [rows[i] for i in ids]


def new_submissions(
    db: Session, account_id: str, limit: int = bundle.MAX_BUNDLE_ITEMS
) -> list[Submission]:
    """Every submission this account has not downloaded yet, oldest first (what another
    journalist took stays new here)."""
    query = (
        select(Submission)
        .where(~_downloaded_by(account_id))
        .order_by(Submission.received, Submission.id)
        .limit(limit)
    )
    return list(db.scalars(query).all())


def export_items(db: Session, rows: Sequence[Submission]) -> list[bundle.ExportItem]:
    """The bundle manifest's items for these submissions."""
    source_ids = {r.source_id for r in rows}
    names: dict[str, str] = {}
    for chunk in _chunks(sorted(source_ids), 500):
        query = select(Source.id, Source.designation).where(Source.id.in_(chunk))
        names.update({r[0]: r[1] for r in db.execute(query).all()})
    return [
        bundle.ExportItem(r.id, r.source_id, names[r.source_id], r.received.isoformat(), r.size)
        for r in rows
    ]


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def triage_items(db: Session, account_id: str, room: int) -> list[bundle.TriageItem]:
    """The sealed triage updates not yet delivered to this account (at most ``room``), oldest
    first. Each is at most ``MAX_TRIAGE_UPDATE`` bytes (checked when it was stored)."""
    delivered = exists().where(
        TriageDelivery.update_id == TriageUpdate.id, TriageDelivery.account_id == account_id
    )
    query = (
        select(TriageUpdate.id, TriageUpdate.size)
        .where(~delivered)
        .order_by(TriageUpdate.stored, TriageUpdate.id)
        .limit(max(room, 0))
    )
    return [bundle.TriageItem(r[0], r[1]) for r in db.execute(query).all()]


def export_stream(
    store: Store,
    items: Sequence[bundle.ExportItem],
    updates: Sequence[bundle.TriageItem] = (),
) -> Iterator[bytes]:
    """The export bundle, chunk by chunk (constant memory, whatever the total size): the
    submissions, then the sealed triage updates given (SPEC §8.5, ``triage_items``)."""

    def open_item(item: bundle.Item) -> BinaryIO:
        kind = "triage" if isinstance(item, bundle.TriageItem) else "submissions"
        return store.open(kind, item.id)

    listed: list[bundle.Item] = [*items, *updates]
    return bundle.bundle_chunks(bundle.KIND_EXPORT, listed, open_item)


def mark_delivered(db: Session, account_id: str, update_ids: Sequence[str]) -> int:
    """Mark triage updates as delivered to this account (an export carried them whole); an
    update deleted meanwhile (expired) is skipped. Returns how many were marked."""
    total = 0
    for chunk in _chunks(list(update_ids), 500):
        known = set(db.scalars(select(TriageUpdate.id).where(TriageUpdate.id.in_(chunk))).all())
        done = set(
            db.scalars(
                select(TriageDelivery.update_id).where(
                    TriageDelivery.account_id == account_id, TriageDelivery.update_id.in_(chunk)
                )
            ).all()
        )
        fresh = sorted(known - done)
        db.add_all(TriageDelivery(account_id=account_id, update_id=i) for i in fresh)
        total += len(fresh)
    db.commit()
    return total


def expire_triage(db: Session, store: Store, before: datetime.date) -> int:
    """Delete the triage updates stored before ``before``: rows first (their delivery marks
    go with them), then blobs. Returns how many."""
    total = 0
    while True:
        ids = list(
            db.scalars(select(TriageUpdate.id).where(TriageUpdate.stored < before).limit(500))
        )
        if not ids:
            return total
        db.execute(delete(TriageUpdate).where(TriageUpdate.id.in_(ids)))
        db.commit()
        for update_id in ids:
            store.delete("triage", update_id)
        total += len(ids)


def mark_downloaded(
    db: Session, account_id: str, ids: Sequence[str], limit: int = MAX_SELECTION
) -> int:
    """Mark submissions as downloaded by this account; the first download by anyone starts the
    retention clock. Returns how many were new for the account. Two marks of the same items at
    once (a double-clicked export) both succeed: the loser of the race tries again."""
    ids = check_ids(ids, limit)
    for attempt in range(3):
        try:
            return _mark(db, account_id, ids)
        except IntegrityError:
            db.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _mark(db: Session, account_id: str, ids: list[str]) -> int:
    total = 0
    day = today()
    for chunk in _chunks(ids, 500):
        fresh = list(
            db.scalars(
                select(Submission.id).where(Submission.id.in_(chunk), ~_downloaded_by(account_id))
            ).all()
        )
        db.add_all(Download(account_id=account_id, submission_id=i, day=day) for i in fresh)
        db.flush()
        db.execute(
            update(Submission)
            .where(Submission.id.in_(chunk), ~Submission.downloaded)
            .values(downloaded=True, downloaded_on=day)
        )
        total += len(fresh)
    db.commit()
    return total


def assignees(db: Session, source_id: str) -> list[Account]:
    """The accounts a source is assigned to, by username."""
    query = (
        select(Account)
        .join(Assignment, Assignment.account_id == Account.id)
        .where(Assignment.source_id == source_id)
        .order_by(Account.username)
    )
    return list(db.scalars(query).all())


def assignable(db: Session) -> list[Account]:
    """The accounts a source can be assigned to: every enabled one, by username."""
    query = select(Account).where(~Account.disabled).order_by(Account.username)
    return list(db.scalars(query).all())


def assign(db: Session, source: Source, usernames: Sequence[str]) -> tuple[list[str], list[str]]:
    """Assign a source to exactly these (enabled) accounts; returns the usernames added and
    removed. An unknown or disabled username is refused and nothing changes."""
    if len(usernames) > MAX_PAGE:
        raise TransferError(_("select at most %(num)d items at a time", num=MAX_PAGE))
    if not all(isinstance(n, str) for n in usernames):
        raise TransferError(_("an account name is not valid"))
    wanted = set(usernames)
    enabled = {a.username: a for a in assignable(db) if a.username in wanted}
    if len(enabled) != len(wanted):
        raise TransferError(_("an account name is not valid"))
    current = {a.username: a for a in assignees(db, source.id)}
    added = sorted(set(enabled) - set(current))
    removed = sorted(set(current) - set(enabled))
    for name in added:
        db.add(Assignment(source_id=source.id, account_id=enabled[name].id))
    if removed:
        db.execute(
            delete(Assignment).where(
                Assignment.source_id == source.id,
                Assignment.account_id.in_([current[n].id for n in removed]),
            )
        )
    db.commit()
    return added, removed


def delete_submissions(db: Session, store: Store, ids: Sequence[str]) -> int:
    """Delete submissions: rows first (committed), then their blobs."""
    ids = check_ids(ids)
    gone = list(db.scalars(select(Submission.id).where(Submission.id.in_(ids))).all())
    if gone:
        db.execute(delete(Submission).where(Submission.id.in_(gone)))
        db.commit()
        faults.point("delete-committed")  # a kill here leaves files with no row: swept
    for submission_id in gone:
        store.delete("submissions", submission_id)
    return len(gone)


def delete_source(db: Session, store: Store, source: Source) -> int:
    """Delete a source with every submission, reply and unfinished upload it has."""
    subs = list(db.scalars(select(Submission.id).where(Submission.source_id == source.id)).all())
    reps = list(db.scalars(select(Reply.id).where(Reply.source_id == source.id)).all())
    ups = list(db.scalars(select(Upload.id).where(Upload.source_id == source.id)).all())
    for model in (Submission, Reply, Upload):
        db.execute(delete(model).where(model.source_id == source.id))
    db.delete(source)
    db.commit()
    forget(db)
    faults.point("delete-committed")
    for blob_id in subs:
        store.delete("submissions", blob_id)
    for blob_id in reps:
        store.delete("replies", blob_id)
    for upload_id in ups:
        discard(store, upload_id)
    return len(subs)


@dataclass(frozen=True)
class ImportResult:
    """What a reply bundle added."""

    added: int
    already: int
    triage_added: int = 0  # sealed triage updates (SPEC §8.5), kept as opaque blobs
    triage_already: int = 0


def import_replies(db: Session, store: Store, src: BinaryIO) -> ImportResult:
    """Store the replies of a reply bundle, all or nothing.

    Before anything is stored: every source must be known, and each envelope's header must
    parse and be sealed to its source's reply key. A reply whose id is already here is
    skipped (the same bundle twice adds nothing twice). A bundle that is damaged anywhere,
    even in its last byte, leaves nothing behind.
    """
    reader = bundle.BundleReader(src, bundle.KIND_REPLY)
    items = [i for i in reader.items if not isinstance(i, bundle.TriageItem)]
    source_ids = sorted({i.source_id for i in items})
    reply_keys: dict[str, bytes] = {}
    for chunk in _chunks(source_ids, 500):
        query = select(Source.id, Source.reply_public_key).where(Source.id.in_(chunk))
        reply_keys.update({r[0]: r[1] for r in db.execute(query).all()})
    unknown = [s for s in source_ids if s not in reply_keys]
    if unknown:
        raise bundle.BundleError(f"it names {len(unknown)} source(s) this server does not know")
    existing: set[str] = set()
    for chunk in _chunks([i.id for i in items], 500):
        existing.update(db.scalars(select(Reply.id).where(Reply.id.in_(chunk))).all())
    limit = int(current_app.config["MAX_REPLY_BUNDLE"])
    written: list[Reply] = []
    updates: list[TriageUpdate] = []  # triage rows and blobs written by this import
    triage_ids = [i.id for i in reader.items if isinstance(i, bundle.TriageItem)]
    triage_have: set[str] = set()
    for chunk in _chunks(triage_ids, 500):
        triage_have.update(
            db.scalars(select(TriageUpdate.id).where(TriageUpdate.id.in_(chunk))).all()
        )
    triage_known = 0
    try:
        for entry in reader:
            item = entry.item
            if isinstance(item, bundle.TriageItem):
                if item.id in triage_have:
                    triage_known += 1
                else:
                    store.write("triage", item.id, functools.partial(_copy_triage, entry))
                    updates.append(TriageUpdate(id=item.id, size=item.size))
                if not entry.finish():
                    raise bundle.BundleError(f"item {item.id} is damaged (checksum)")
                continue
            if item.size > limit:
                raise bundle.BundleError("a reply in it is larger than this server accepts")
            if item.id in existing:
                if not entry.finish():
                    raise bundle.BundleError(f"item {item.id} is damaged (checksum)")
                continue
            reply_key_id = key_id(reply_keys[item.source_id])
            store.check_space(item.size)  # the free-space floor holds for replies too
            written.append(Reply(id=item.id, source_id=item.source_id, size=item.size, read=False))
            store.write("replies", item.id, functools.partial(_copy_reply, entry, reply_key_id))
            if not entry.finish():
                raise bundle.BundleError(f"item {item.id} is damaged (checksum)")
        # Iteration ended: the final checksum matched and nothing trails it.
        db.add_all(written)
        db.add_all(updates)
        db.commit()
    except BaseException:
        db.rollback()
        for row in written:
            store.delete("replies", row.id)
        for triage_row in updates:
            store.delete("triage", triage_row.id)
        raise
    return ImportResult(len(written), len(existing), len(updates), triage_known)


def _copy_triage(entry: bundle.BundleEntry, out: BinaryIO) -> None:
    """Copy one triage update: the server can check only its envelope header (and its size)."""
    head = entry.read(fmt.MAX_HEADER_SIZE)
    try:
        header = fmt.parse_header(head)
    except EnvelopeFormatError as exc:
        raise bundle.BundleError(
            f"a triage update is not a well-formed envelope: {exc.detail}"
        ) from exc
    if not plausible_size(entry.item.size, len(header.stanzas)):
        raise bundle.BundleError("a triage update's size is not the size of an envelope")
    out.write(head)
    for chunk in entry.chunks():
        out.write(chunk)


def _copy_reply(entry: bundle.BundleEntry, reply_key_id: bytes, out: BinaryIO) -> None:
    """Copy one reply envelope, checking its header and size on the way."""
    head = entry.read(fmt.MAX_HEADER_SIZE)
    try:
        header = fmt.parse_header(head)
    except EnvelopeFormatError as exc:
        raise bundle.BundleError(f"a reply is not a well-formed envelope: {exc.detail}") from exc
    if reply_key_id not in header.key_ids:
        raise bundle.BundleError("a reply is not sealed to its source's reply key")
    if not plausible_size(entry.item.size, len(header.stanzas)):
        raise bundle.BundleError("a reply's size is not the size of an envelope")
    out.write(head)
    for chunk in entry.chunks():
        out.write(chunk)
