"""Shared triage between desks, sealed (docs/SPEC.md §4.4, §8.5; docs/DESK.md §5.1).

Every triage change made on this desk (status, star, a tag added or removed, a note) becomes a
*triage update*: a small JSON document inside an envelope of kind ``triage``, sealed to every
active key of the key manifest this desk holds. ``tipline-desk sync`` writes the pending ones
into a reply bundle; the server keeps them as opaque blobs and puts them in every export; the
import applies the ones from other desks.

Rule for concurrent edits: last writer wins *per field*, ordered by (date, writer key id,
update id); the winning writer and date are kept with the field and shown. Notes never conflict
(each is its own field). Replayed, older, unknown-writer and unknown-item updates change nothing
and each gets a one-line outcome.

The writer key id is what the update says: the envelope is anonymous (crypto_box_seal), so it is
checked only against the manifest's active keys. Anyone who can seal to those keys (which are
public) could write an update; see docs/THREAT-MODEL.md.
"""

from __future__ import annotations

import datetime
import io
import json
from dataclasses import dataclass

import nacl.utils

from ..crypto import envelope
from ..crypto.encoding import dump_json, expect_header, expect_members, hexd, load_json
from ..crypto.errors import TiplineError
from ..crypto.inner import Inner
from ..crypto.manifest import KeyManifest, verify_manifest
from .errors import UsageError
from .store import MAX_NOTE, MAX_TAG, STATUSES, Store

MAX_CHANGES = 64
MAX_UPDATE_JSON = 1 << 15
META_MANIFEST = "triage_manifest"


class TriageError(TiplineError):
    """this triage update cannot be read"""


@dataclass(frozen=True)
class Update:
    """One triage update: who changed which fields of which item, when."""

    id: str
    item: str
    date: str  # YYYY-MM-DDTHH:MM:SSZ, UTC; sorts as text
    writer: str  # hex key id of the writing desk's active key
    changes: tuple[tuple[str, object], ...]

    def encode(self) -> str:
        return dump_json(
            {
                "type": "tipline-triage",
                "v": 1,
                "id": self.id,
                "item": self.item,
                "date": self.date,
                "writer": self.writer,
                "changes": [[f, v] for f, v in self.changes],
            }
        ).decode()

    def order(self) -> tuple[str, str, str]:
        return (self.date, self.writer, self.id)


def _check_change(field: object, value: object) -> tuple[str, object]:
    if field == "status" and value in STATUSES:
        return field, value
    if field == "star" and isinstance(value, bool):
        return field, value
    if isinstance(field, str) and field.startswith("tag:") and isinstance(value, bool):
        tag = field[4:]
        valid = 1 <= len(tag) <= MAX_TAG and all(c.isalnum() or c in "-_" for c in tag)
        if valid and tag == tag.lower():
            return field, value
    if field == "note" and isinstance(value, str) and value.strip() and len(value) <= MAX_NOTE:
        return field, value
    raise TriageError(f"a change is not valid: {str(field)[:50]!r}")


def parse_update(text: str) -> Update:
    """Parse and check a triage update's JSON (the envelope's message)."""
    what = "the triage update"
    doc = load_json(text.encode(), MAX_UPDATE_JSON, TriageError, what)
    expect_header(doc, "tipline-triage", TriageError, what)
    expect_members(doc, {"type", "v", "id", "item", "date", "writer", "changes"}, TriageError, what)
    update_id = hexd(doc["id"], 16, TriageError, "its id").hex()
    item = hexd(doc["item"], 16, TriageError, "its item").hex()
    writer = hexd(doc["writer"], 16, TriageError, "its writer").hex()
    date = doc["date"]
    try:
        parsed = datetime.datetime.strptime(str(date), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError as exc:
        raise TriageError("its date is not YYYY-MM-DDTHH:MM:SSZ") from exc
    if parsed.strftime("%Y-%m-%dT%H:%M:%SZ") != date:
        raise TriageError("its date is not YYYY-MM-DDTHH:MM:SSZ")
    raw = doc["changes"]
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_CHANGES:
        raise TriageError(f"it must carry 1 to {MAX_CHANGES} changes")
    changes = []
    for entry in raw:
        if not isinstance(entry, list) or len(entry) != 2:
            raise TriageError("a change must be [field, value]")
        changes.append(_check_change(entry[0], entry[1]))
    if len({f for f, _ in changes if f != "note"}) != len([f for f, _ in changes if f != "note"]):
        raise TriageError("it changes one field twice")
    return Update(update_id, item, str(date), writer, tuple(changes))


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the manifest this desk holds --------------------------------------------------------------


def hold_manifest(store: Store, data: bytes, org_public: bytes | None, today: datetime.date) -> int:
    """Verify a signed key manifest against the org key and keep it; returns its version."""
    if org_public is None:
        raise UsageError("this vault has no org public key (tipline-desk keys org-import)")
    signed = verify_manifest(data, org_public, today)
    held = held_manifest(store, org_public, today, strict=False)
    if held is not None and held.version > signed.manifest.version:
        raise UsageError(
            f"this desk holds manifest version {held.version}, newer than {signed.manifest.version}"
        )
    store.db.execute(
        "INSERT OR REPLACE INTO meta VALUES(?, ?)", (META_MANIFEST, data.decode("utf-8"))
    )
    store.dirty = True
    return signed.manifest.version


def held_manifest(
    store: Store, org_public: bytes | None, today: datetime.date, strict: bool = True
) -> KeyManifest | None:
    """The manifest this desk holds (checked again: org key, signature, expiry)."""
    row = store.db.execute("SELECT value FROM meta WHERE key=?", (META_MANIFEST,)).fetchone()
    if row is None or org_public is None:
        return None
    try:
        return verify_manifest(str(row[0]).encode(), org_public, today).manifest
    except TiplineError:
        if strict:
            raise
        return None


# --- changes made here -------------------------------------------------------------------------


def record(store: Store, item_id: str, changes: list[tuple[str, object]], writer: str) -> Update:
    """Keep a change made on this desk as a pending update, and stamp its fields' clocks so that
    an older update from another desk does not undo it."""
    checked = tuple(_check_change(field, value) for field, value in changes)
    update = Update(nacl.utils.random(16).hex(), item_id, now(), writer, checked)
    if len(update.encode().encode()) > MAX_UPDATE_JSON:  # so that every pending one can be sent
        raise UsageError(f"this change is too large to share (at most {MAX_UPDATE_JSON} bytes)")
    for field, _ in update.changes:
        _stamp(store, update, field)
    store.db.execute("INSERT INTO triage_seen VALUES(?)", (update.id,))
    store.db.execute("INSERT INTO triage_pending VALUES(?, ?)", (update.id, update.encode()))
    store.dirty = True
    return update


def _stamp(store: Store, update: Update, field: str) -> None:
    if field == "note":
        return  # notes never conflict: each is added once, by update id
    store.db.execute(
        "INSERT OR REPLACE INTO triage_clock VALUES(?,?,?,?,?)",
        (update.item, field, update.date, update.writer, update.id),
    )


def pending(store: Store) -> list[Update]:
    """Updates made here that have not yet come back from the server."""
    rows = store.db.execute("SELECT body FROM triage_pending ORDER BY rowid").fetchall()
    return [parse_update(str(r[0])) for r in rows]


def seal_update(update: Update, recipients: list[bytes]) -> bytes:
    """The update as an envelope of kind ``triage`` sealed to these public keys."""
    out = io.BytesIO()
    envelope.seal(out, recipients, Inner("triage", "desk", update.encode()))
    return out.getvalue()


def last_writer(store: Store, item_id: str) -> dict[str, tuple[str, str]]:
    """Field → (date, writer key id) of the change in force, for fields changed by an update."""
    rows = store.db.execute(
        "SELECT field, date, writer FROM triage_clock WHERE item_id=? ORDER BY field", (item_id,)
    ).fetchall()
    return {str(r[0]): (str(r[1]), str(r[2])) for r in rows}


# --- updates from other desks ------------------------------------------------------------------


def apply(store: Store, update: Update, writers: frozenset[str], names: dict[str, str]) -> str:
    """Apply an update (idempotent); return its one-line outcome."""
    head = f"triage update {update.id[:12]}"
    if store.db.execute("SELECT 1 FROM triage_seen WHERE update_id=?", (update.id,)).fetchone():
        if store.db.execute("DELETE FROM triage_pending WHERE update_id=?", (update.id,)).rowcount:
            store.dirty = True
            return f"{head}: this desk's own, back from the server"
        return f"{head}: already applied (replayed): nothing changed"
    if update.writer not in writers:
        return (
            f"{head}: refused: written by key {update.writer[:8]}, not an active key of the "
            "manifest this desk holds: nothing changed"
        )
    if not store.has_item(update.item):
        return f"{head}: refused: for item {update.item[:12]}, not on this desk: nothing changed"
    applied, kept = [], []
    for field, value in update.changes:
        row = store.db.execute(
            "SELECT date, writer, update_id FROM triage_clock WHERE item_id=? AND field=?",
            (update.item, field),
        ).fetchone()
        if field != "note" and row is not None and tuple(row) >= update.order():
            kept.append(field)
            continue
        if field == "status":
            store.set_status(update.item, str(value))
        elif field == "star":
            store.set_star(update.item, bool(value))
        elif field.startswith("tag:"):
            store.tag(update.item, field[4:], remove=not value)
        else:
            store.add_note(update.item, str(value), update.date[:10])
        _stamp(store, update, field)
        applied.append(field)
    who = names.get(update.writer, update.writer[:8])
    if not applied:  # not kept as seen: an update older on every field loses every time
        return (
            f"{head} by {who} of {update.date}: older than this desk's "
            f"{', '.join(kept)}: nothing changed"
        )
    store.db.execute("INSERT INTO triage_seen VALUES(?)", (update.id,))
    store.dirty = True
    tail = f" (kept this desk's newer {', '.join(kept)})" if kept else ""
    return f"{head} by {who} of {update.date}: applied {', '.join(applied)}{tail}"


def writer_names(manifest: KeyManifest | None) -> tuple[frozenset[str], dict[str, str]]:
    """Active key ids of the held manifest, and a short name for each (account and key id)."""
    if manifest is None:
        return frozenset(), {}
    names = {
        r.key_id.hex(): f"{r.account or r.label} {r.key_id.hex()[:8]}" for r in manifest.recipients
    }
    return frozenset(names), names


def describe(store: Store, item_id: str, names: dict[str, str]) -> list[str]:
    """Lines saying who last changed each field, for ``show``."""
    return [
        f"{field} last set {date} by {names.get(writer, writer[:8])}"
        for field, (date, writer) in last_writer(store, item_id).items()
    ]


def json_of(update: Update) -> dict[str, object]:
    return dict(json.loads(update.encode()))
