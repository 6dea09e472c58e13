"""Shared triage between desks, sealed (docs/SPEC.md §4.4, §8.5; docs/DESK.md §5.1).

Every triage change made on this desk (status, star, a tag added or removed, a note) becomes a
*triage update*: a small JSON document inside an envelope of kind ``triage``, sealed to every
active key of the key manifest this desk holds. ``tipline-desk sync`` writes the pending ones
into a reply bundle; the server keeps them as opaque blobs and puts them in every export; the
import applies the ones from other desks.

Rule for concurrent edits: last writer wins *per field*, ordered by (date, writer key id,
update id); the winning writer and date are kept with the field and shown. Notes never conflict
(each is its own field). Unsigned, forged, replayed, older, unknown-writer, retired-writer and
unknown-item updates change nothing and each gets a one-line outcome.

The envelope is anonymous (crypto_box_seal), and the manifest's public keys are public, so the
envelope says nothing about who wrote it. Each update is therefore signed by its writer's Ed25519
key (the one its recipient key is derived from, SPEC §3.1) and carries that signing key; a desk
applies it only if the X25519 key derived from the signing key is the writer's key in the
manifest the desk holds (SPEC §8.5).
"""

from __future__ import annotations

import datetime
import io
import json
from dataclasses import dataclass

import nacl.utils
from nacl.signing import SigningKey

from ..crypto import envelope, keys
from ..crypto.encoding import (
    b64d,
    b64e,
    dump_json,
    expect_header,
    expect_members,
    hexd,
    load_json,
)
from ..crypto.errors import TiplineError
from ..crypto.inner import Inner
from ..crypto.manifest import KeyManifest, verify_manifest
from ..crypto.primitives import SIG_TRIAGE
from .errors import UsageError
from .store import MAX_NOTE, MAX_TAG, STATUSES, Store

MAX_CHANGES = 64
MAX_UPDATE_JSON = 1 << 15
MAX_SIGNED_UPDATE = 3 << 14  # the signed form: base64 of the body (at most 43,692) and keys
META_MANIFEST = "triage_manifest"
META_RETIRED = "triage_retired"  # writers of earlier held manifests, and when each went
MAX_RETIRED = 1000
MAX_PARKED = 10000  # updates kept for items not on the desk (each at most MAX_SIGNED_UPDATE)


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


@dataclass(frozen=True)
class Signed:
    """A triage update whose signature verified, and the writer's X25519 key it proves."""

    update: Update
    public_key: bytes
    message: str  # the signed document as received, kept if the item is not here yet


def sign_update(update: Update, seed: bytes) -> str:
    """The signed form of an update (the envelope's message), signed with the Ed25519 key of
    ``seed``; the writer's key id must be that of the X25519 key derived from it."""
    signing = SigningKey(seed)
    if keys.key_id(bytes(signing.verify_key.to_curve25519_public_key())).hex() != update.writer:
        raise TriageError("the update's writer is not the key that signs it")
    body = update.encode().encode()
    return dump_json(
        {
            "type": "tipline-signed-triage",
            "v": 1,
            "body": b64e(body),
            "signing_key": b64e(bytes(signing.verify_key)),
            "signature": b64e(signing.sign(SIG_TRIAGE + body).signature),
        }
    ).decode()


def read_signed(text: str) -> Signed:
    """Check a signed triage update in the order of SPEC §8.5; ``TriageError`` says which rule
    failed. It says nothing about whether its writer may write: see ``apply``."""
    what = "the signed triage update"
    doc = load_json(text.encode(), MAX_SIGNED_UPDATE, TriageError, what)
    if doc.get("type") == "tipline-triage":
        raise TriageError("it is not signed (written by a desk from before signed updates)")
    expect_header(doc, "tipline-signed-triage", TriageError, what)
    expect_members(doc, {"type", "v", "body", "signing_key", "signature"}, TriageError, what)
    body = b64d(doc["body"], None, TriageError, "its body")
    signing_key = b64d(doc["signing_key"], 32, TriageError, "its signing_key")
    signature = b64d(doc["signature"], 64, TriageError, "its signature")
    if len(body) > MAX_UPDATE_JSON:
        raise TriageError(f"its body is larger than {MAX_UPDATE_JSON} bytes")
    # The writer is named in the body, so its key is checked once the body is parsed (§8.5).
    public_key = keys.verify_derived(
        signing_key, SIG_TRIAGE, body, signature, TriageError, "its signature does not verify"
    )
    try:
        text_body = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TriageError("its body is not UTF-8") from exc
    update = parse_update(text_body)
    if keys.key_id(public_key).hex() != update.writer:
        raise TriageError("it is signed by a key other than its writer's")
    return Signed(update, public_key, text)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the manifest this desk holds --------------------------------------------------------------


def hold_manifest(
    store: Store, data: bytes, org_public: bytes | None, today: datetime.date
) -> tuple[int, list[str]]:
    """Verify a signed key manifest against the org key and keep it; returns its version and
    the key ids the manifest held before listed and this one drops (retired)."""
    if org_public is None:
        raise UsageError("this vault has no org public key (tipline-desk keys org-import)")
    signed = verify_manifest(data, org_public, today)
    held = held_manifest(store, org_public, today, strict=False)
    if held is not None and held.version > signed.manifest.version:
        raise UsageError(
            f"this desk holds manifest version {held.version}, newer than {signed.manifest.version}"
        )
    dropped: list[str] = []
    if held is not None and held.version < signed.manifest.version:
        dropped = _note_retired(store, held, signed.manifest)
    store.db.execute(
        "INSERT OR REPLACE INTO meta VALUES(?, ?)", (META_MANIFEST, data.decode("utf-8"))
    )
    store.dirty = True
    return signed.manifest.version, dropped


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


@dataclass(frozen=True)
class Writer:
    """A key that may sign triage updates: its X25519 public key, a short name, and the day
    from which it may no longer write (None while it is active)."""

    public_key: bytes
    name: str
    retired: str | None = None


def _name(r: keys.RecipientPublic) -> str:
    return f"{r.account or r.label} {r.key_id.hex()[:8]}"


def _retired(store: Store) -> dict[str, Writer]:
    row = store.db.execute("SELECT value FROM meta WHERE key=?", (META_RETIRED,)).fetchone()
    if row is None:
        return {}
    doc = json.loads(str(row[0]))
    return {k: Writer(bytes.fromhex(v[0]), str(v[1]), str(v[2])) for k, v in doc.items()}


def _note_retired(store: Store, old: KeyManifest, new: KeyManifest) -> list[str]:
    """Keep the keys ``old`` lists and ``new`` drops as retired from ``new``'s issue day: an
    update they signed is applied only when dated before that day (SPEC §8.5). Returns them."""
    retired = _retired(store)
    still = {r.key_id.hex() for r in new.recipients}
    dropped = [r.key_id.hex() for r in old.recipients if r.key_id.hex() not in still]
    for r in old.recipients:
        if r.key_id.hex() not in still and r.key_id.hex() not in retired:
            retired[r.key_id.hex()] = Writer(r.public_key, _name(r), new.issued.isoformat())
    for key_id in still:
        retired.pop(key_id, None)
    if len(retired) > MAX_RETIRED:  # the oldest retirements go first
        kept = sorted(retired.items(), key=lambda kv: str(kv[1].retired))[-MAX_RETIRED:]
        retired = dict(kept)
    doc = {k: [w.public_key.hex(), w.name, w.retired] for k, w in retired.items()}
    store.db.execute(
        "INSERT OR REPLACE INTO meta VALUES(?, ?)", (META_RETIRED, json.dumps(doc, sort_keys=True))
    )
    return dropped


@dataclass(frozen=True)
class Writers:
    """Who may write triage updates, as the manifest this desk holds (and the ones before it)
    say: active keys, and retired keys with the day they were retired."""

    active: dict[str, Writer]
    retired: dict[str, Writer]

    @property
    def names(self) -> dict[str, str]:
        return {k: w.name for k, w in (self.retired | self.active).items()}


def writers(store: Store, manifest: KeyManifest | None) -> Writers:
    """The writers of the held manifest (none if the desk holds none)."""
    if manifest is None:
        return Writers({}, {})
    active = {r.key_id.hex(): Writer(r.public_key, _name(r)) for r in manifest.recipients}
    return Writers(active, _retired(store))


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


def seal_update(update: Update, seed: bytes, recipients: list[bytes]) -> bytes:
    """The update, signed with the Ed25519 key of ``seed``, as an envelope of kind ``triage``
    sealed to these public keys."""
    out = io.BytesIO()
    envelope.seal(out, recipients, Inner("triage", "desk", sign_update(update, seed)))
    return out.getvalue()


def sign_as(store: Store, update: Update, writer: str) -> Update:
    """A pending update written again as ``writer`` (this desk's key changed since it was
    made: the old key is retired and signs nothing more); its fields' clocks follow."""
    if update.writer == writer:
        return update
    moved = Update(update.id, update.item, update.date, writer, update.changes)
    store.db.execute(
        "UPDATE triage_pending SET body=? WHERE update_id=?", (moved.encode(), update.id)
    )
    store.db.execute("UPDATE triage_clock SET writer=? WHERE update_id=?", (writer, update.id))
    store.dirty = True
    return moved


def last_writer(store: Store, item_id: str) -> dict[str, tuple[str, str]]:
    """Field → (date, writer key id) of the change in force, for fields changed by an update."""
    rows = store.db.execute(
        "SELECT field, date, writer FROM triage_clock WHERE item_id=? ORDER BY field", (item_id,)
    ).fetchall()
    return {str(r[0]): (str(r[1]), str(r[2])) for r in rows}


# --- updates from other desks ------------------------------------------------------------------


def receive(store: Store, bundle_id: str, message: str, who: Writers) -> str:
    """Check and apply one triage update's message (the opened envelope's); its one line."""
    head = f"triage update {bundle_id[:12]}"
    try:
        signed = read_signed(message)
    except TiplineError as exc:
        return f"{head}: refused: {exc.message}: nothing changed"
    if signed.update.id != bundle_id:
        return f"{head}: refused: its id differs from the bundle's: nothing changed"
    if not who.active:
        return (
            f"{head}: not applied: this desk holds no key manifest (tipline-desk sync --manifest)"
        )
    return apply(store, signed, who)


def _refusal(signed: Signed, who: Writers) -> str | None:
    """Why this writer may not write this update, or None if it may."""
    update, short = signed.update, signed.update.writer[:8]
    writer = who.active.get(update.writer)
    if writer is None:
        writer = who.retired.get(update.writer)
        if writer is None:
            return f"signed by key {short}, not a key of the manifest this desk holds"
        if update.date >= f"{writer.retired}T00:00:00Z":
            return (
                f"signed by key {short} ({writer.name}), retired on {writer.retired}, "
                f"and dated {update.date}"
            )
    if writer.public_key != signed.public_key:  # the key ids matched: a collision, never seen
        return f"signed by a key that is not key {short} of the manifest this desk holds"
    return None


def apply(store: Store, signed: Signed, who: Writers) -> str:
    """Apply a signed update (idempotent); return its one-line outcome."""
    update = signed.update
    head = f"triage update {update.id[:12]}"
    if store.db.execute("SELECT 1 FROM triage_seen WHERE update_id=?", (update.id,)).fetchone():
        if store.db.execute("DELETE FROM triage_pending WHERE update_id=?", (update.id,)).rowcount:
            store.dirty = True
            return f"{head}: this desk's own, back from the server"
        return f"{head}: already applied (replayed): nothing changed"
    refusal = _refusal(signed, who)
    if refusal is not None:
        return f"{head}: refused: {refusal}: nothing changed"
    names = who.names
    if not store.has_item(update.item):
        return f"{head}: {_park(store, signed)}: nothing changed"
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
    name = names.get(update.writer, update.writer[:8])
    if not applied:  # not kept as seen: an update older on every field loses every time
        return (
            f"{head} by {name} of {update.date}: older than this desk's "
            f"{', '.join(kept)}: nothing changed"
        )
    store.db.execute("INSERT INTO triage_seen VALUES(?)", (update.id,))
    store.dirty = True
    tail = f" (kept this desk's newer {', '.join(kept)})" if kept else ""
    return f"{head} by {name} of {update.date}: applied {', '.join(applied)}{tail}"


def _park(store: Store, signed: Signed) -> str:
    """Keep a verified update for an item not on this desk; say so."""
    update = signed.update
    what = f"for item {update.item[:12]}, not on this desk"
    if store.db.execute("SELECT 1 FROM triage_parked WHERE update_id=?", (update.id,)).fetchone():
        return f"not applied: {what} (already kept until an import brings it)"
    (count,) = store.db.execute("SELECT count(*) FROM triage_parked").fetchone()
    if count >= MAX_PARKED:
        return f"refused: {what}, and {MAX_PARKED} updates already wait for their items"
    store.db.execute(
        "INSERT INTO triage_parked VALUES(?, ?, ?)", (update.id, update.item, signed.message)
    )
    store.dirty = True
    return f"not applied: {what} (kept until an import brings it)"


def apply_parked(store: Store, who: Writers) -> list[str]:
    """Apply the kept updates whose items are now on this desk (after an import); their lines.
    Each is checked again against the writers of the manifest the desk holds now."""
    if not who.active:
        return []  # no manifest held: they wait
    rows = store.db.execute(
        "SELECT p.update_id, p.message FROM triage_parked p JOIN items i ON i.id = p.item_id "
        "ORDER BY p.rowid"
    ).fetchall()
    lines = []
    for update_id, message in rows:
        store.db.execute("DELETE FROM triage_parked WHERE update_id=?", (update_id,))
        store.dirty = True
        lines.append(receive(store, str(update_id), str(message), who) + " (kept from before)")
    return lines


def describe(store: Store, item_id: str, names: dict[str, str]) -> list[str]:
    """Lines saying who last changed each field, for ``show``."""
    return [
        f"{field} last set {date} by {names.get(writer, writer[:8])}"
        for field, (date, writer) in last_writer(store, item_id).items()
    ]


def json_of(update: Update) -> dict[str, object]:
    return dict(json.loads(update.encode()))
