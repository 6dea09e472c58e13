"""The triage database: SQLite held in memory, saved only sealed under the vault key.

It holds what the journalist needs to triage without opening envelopes again: the message text,
attachment names, tags, notes, status. Full-text search is SQLite's FTS5 over the same
in-memory database, so the index never touches the disk unencrypted either.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import AmbiguousError, NotFoundError, UsageError, VaultDamagedError

STATUSES = ("new", "read", "follow-up", "done")
MAX_TAG = 40
MAX_NOTE = 20000
# The schema grows by numbered steps: a new database gets SCHEMA and every step, an older one
# the steps it lacks when it is opened (and is saved so at the next save).
MIGRATIONS: dict[int, str] = {
    # 2: SHA-256 fingerprints taken at import (tipline/desk/provenance.py): part 0 is the
    # envelope as received, part n the plaintext of attachment n.
    2: """
    CREATE TABLE fingerprints(
        item_id TEXT NOT NULL, part INTEGER NOT NULL, sha256 BLOB NOT NULL,
        PRIMARY KEY(item_id, part));
    """,
    # 3: shared triage (tipline/desk/triage.py): each field's last writer, the update ids
    # already applied, and this desk's updates not yet back from the server.
    3: """
    CREATE TABLE triage_clock(item_id TEXT NOT NULL, field TEXT NOT NULL, date TEXT NOT NULL,
        writer TEXT NOT NULL, update_id TEXT NOT NULL, PRIMARY KEY(item_id, field));
    CREATE TABLE triage_seen(update_id TEXT PRIMARY KEY);
    CREATE TABLE triage_pending(update_id TEXT PRIMARY KEY, body TEXT NOT NULL);
    """,
    # 4: verified triage updates for items not (yet) on this desk, kept to apply when an
    # import brings the item: the server delivers each update to an account once.
    4: """
    CREATE TABLE triage_parked(update_id TEXT PRIMARY KEY, item_id TEXT NOT NULL,
        message TEXT NOT NULL);
    CREATE INDEX triage_parked_item ON triage_parked(item_id);
    """,
}
SCHEMA_VERSION = max(MIGRATIONS)
TEMP_STORE_MEMORY = 2  # SQLite's PRAGMA temp_store value for MEMORY

SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources(
    id TEXT PRIMARY KEY, designation TEXT NOT NULL, reply_public_key BLOB);
CREATE TABLE items(
    seq INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, source_id TEXT NOT NULL,
    direction TEXT NOT NULL, received TEXT NOT NULL, imported TEXT NOT NULL,
    size INTEGER NOT NULL, digest BLOB NOT NULL, sealed_by TEXT NOT NULL,
    attachments TEXT NOT NULL, status TEXT NOT NULL, starred INTEGER NOT NULL DEFAULT 0);
CREATE INDEX items_source ON items(source_id, received);
CREATE TABLE tags(item_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY(item_id, tag));
CREATE TABLE notes(item_id TEXT NOT NULL, created TEXT NOT NULL, body TEXT NOT NULL);
CREATE VIRTUAL TABLE texts USING fts5(message, names, notes, designation,
    tokenize='unicode61 remove_diacritics 2');
"""


@dataclass(frozen=True)
class Item:
    """One submission or reply, as triage sees it."""

    id: str
    source_id: str
    designation: str
    direction: str
    received: str
    size: int
    sealed_by: str
    attachments: tuple[tuple[str, int, str], ...]
    status: str
    starred: bool
    tags: tuple[str, ...]
    preview: str = ""


@dataclass(frozen=True)
class Thread:
    """A source and the items in its thread."""

    source_id: str
    designation: str
    items: tuple[Item, ...]


class Store:
    """The in-memory triage database."""

    def __init__(self, data: bytes | bytearray | None = None) -> None:
        self.db = sqlite3.connect(":memory:", isolation_level=None)
        # A ":memory:" database still sorts and builds temporary indexes in files under
        # /var/tmp (etilqs_*, unlinked at once) when a query outgrows the page cache: a triage
        # listing of about 3,000 items spilled decrypted previews there. Temporary storage
        # stays in memory, set before anything runs (tests/desk/test_spill.py watches it).
        self.db.execute(f"PRAGMA temp_store={TEMP_STORE_MEMORY}")
        self.dirty = False
        if data is None:
            self.db.executescript(SCHEMA)
            self.db.execute("INSERT INTO meta VALUES('schema', '1')")
            version = 1
        else:
            try:
                self.db.deserialize(data)
                row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            except sqlite3.DatabaseError as exc:
                raise VaultDamagedError("the triage database does not read") from exc
            if row is None or not str(row[0]).isdigit() or int(row[0]) > SCHEMA_VERSION:
                raise VaultDamagedError("the triage database is from another version")
            version = int(row[0])
        for step in sorted(n for n in MIGRATIONS if n > version):
            self.db.executescript(MIGRATIONS[step])
            self.db.execute("UPDATE meta SET value=? WHERE key='schema'", (str(step),))
            self.dirty = data is not None

    def serialize(self) -> bytes:
        """The database file's bytes, to be sealed."""
        return self.db.serialize()

    # --- writing -------------------------------------------------------------------------

    def has_item(self, item_id: str) -> bool:
        """Whether an item with this exact id is stored."""
        return self.db.execute("SELECT 1 FROM items WHERE id=?", (item_id,)).fetchone() is not None

    def add_item(
        self,
        *,
        item_id: str,
        source_id: str,
        designation: str,
        reply_public_key: bytes | None,
        direction: str,
        received: str,
        imported: str,
        size: int,
        digest: bytes,
        sealed_by: str,
        message: str,
        attachments: Iterable[tuple[str, int, str]],
    ) -> None:
        """Add one item (and its source, the first time it is seen)."""
        atts = list(attachments)
        self.db.execute(
            "INSERT INTO sources VALUES(?,?,?) ON CONFLICT(id) DO UPDATE SET "
            "reply_public_key=coalesce(excluded.reply_public_key, sources.reply_public_key)",
            (source_id, designation, reply_public_key),
        )
        status = "new" if direction == "in" else "done"
        cur = self.db.execute(
            "INSERT INTO items(id, source_id, direction, received, imported, size, digest,"
            " sealed_by, attachments, status) VALUES(?,?,?,?,?,?,?,?,?,?)",
            (
                item_id,
                source_id,
                direction,
                received,
                imported,
                size,
                digest,
                sealed_by,
                json.dumps(atts),
                status,
            ),
        )
        self.db.execute(
            "INSERT INTO texts(rowid, message, names, notes, designation) VALUES(?,?,?,?,?)",
            (cur.lastrowid, message, " ".join(a[0] for a in atts), "", designation),
        )
        self.dirty = True

    def remove_item(self, item_id: str) -> None:
        """Forget an item entirely (its envelope file is removed by the vault)."""
        seq = self._seq(item_id)
        for sql in ("DELETE FROM texts WHERE rowid=?", "DELETE FROM items WHERE seq=?"):
            self.db.execute(sql, (seq,))
        self.db.execute("DELETE FROM tags WHERE item_id=?", (item_id,))
        self.db.execute("DELETE FROM notes WHERE item_id=?", (item_id,))
        self.db.execute("DELETE FROM fingerprints WHERE item_id=?", (item_id,))
        self.dirty = True

    def add_fingerprints(self, item_id: str, parts: dict[int, bytes]) -> None:
        """Record SHA-256 fingerprints: part 0 the envelope as received, n attachment n."""
        self.db.executemany(
            "INSERT OR REPLACE INTO fingerprints VALUES(?,?,?)",
            [(item_id, part, digest) for part, digest in parts.items()],
        )
        self.dirty = True

    def set_status(self, item_id: str, status: str) -> None:
        """Set new / read / follow-up / done."""
        if status not in STATUSES:
            raise UsageError(f"status must be one of {', '.join(STATUSES)}")
        self.db.execute("UPDATE items SET status=? WHERE id=?", (status, item_id))
        self.dirty = True

    def set_star(self, item_id: str, starred: bool) -> None:
        """Star or unstar an item."""
        self.db.execute("UPDATE items SET starred=? WHERE id=?", (int(starred), item_id))
        self.dirty = True

    def tag(self, item_id: str, tag: str, remove: bool = False) -> None:
        """Add or remove a tag: a short word, lowercased."""
        tag = tag.strip().lower()
        if not 1 <= len(tag) <= MAX_TAG or not all(c.isalnum() or c in "-_" for c in tag):
            raise UsageError(f"a tag is 1 to {MAX_TAG} letters, digits, - or _")
        if remove:
            self.db.execute("DELETE FROM tags WHERE item_id=? AND tag=?", (item_id, tag))
        else:
            self.db.execute("INSERT OR IGNORE INTO tags VALUES(?,?)", (item_id, tag))
        self.dirty = True

    def add_note(self, item_id: str, body: str, created: str) -> None:
        """Attach a note to an item; notes are searchable."""
        if not body.strip() or len(body) > MAX_NOTE:
            raise UsageError(f"a note is 1 to {MAX_NOTE} characters")
        seq = self._seq(item_id)
        self.db.execute("INSERT INTO notes VALUES(?,?,?)", (item_id, created, body))
        notes = " ".join(self.notes(item_id))
        self.db.execute("UPDATE texts SET notes=? WHERE rowid=?", (notes, seq))
        self.dirty = True

    def set_digest(self, item_id: str, digest: bytes, size: int) -> None:
        """Record a re-wrapped envelope's new digest and size."""
        self.db.execute("UPDATE items SET digest=?, size=? WHERE id=?", (digest, size, item_id))
        self.dirty = True

    # --- reading -------------------------------------------------------------------------

    def _seq(self, item_id: str) -> int:
        row = self.db.execute("SELECT seq FROM items WHERE id=?", (item_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no item {item_id}")
        return int(row[0])

    def resolve(self, prefix: str) -> str:
        """The full id of the item whose id starts with ``prefix`` (at least 4 hex digits)."""
        prefix = prefix.strip().lower()
        if len(prefix) < 4 or any(c not in "0123456789abcdef" for c in prefix):
            raise UsageError("an item id is at least 4 hex digits")
        rows = self.db.execute(
            "SELECT id FROM items WHERE id >= ? AND id < ? LIMIT 2", (prefix, prefix + "g")
        ).fetchall()
        if not rows:
            raise NotFoundError(f"no item {prefix}")
        if len(rows) > 1:
            raise AmbiguousError(prefix)
        return str(rows[0][0])

    def resolve_source(self, text: str) -> tuple[str, str, bytes | None]:
        """A source by id prefix or by its designation: (id, designation, reply key)."""
        text = text.strip().lower()
        rows = self.db.execute(
            "SELECT id, designation, reply_public_key FROM sources WHERE lower(designation)=?",
            (text,),
        ).fetchall()
        if not rows and len(text) >= 4:
            rows = self.db.execute(
                "SELECT id, designation, reply_public_key FROM sources WHERE id >= ? AND id < ?"
                " LIMIT 2",
                (text, text + "g"),
            ).fetchall()
        if not rows:
            raise NotFoundError(f"no source {text!r}")
        if len(rows) > 1:
            raise AmbiguousError(text)
        return str(rows[0][0]), str(rows[0][1]), rows[0][2]

    _SELECT = (
        "SELECT i.id, i.source_id, s.designation, i.direction, i.received, i.size, i.sealed_by,"
        " i.attachments, i.status, i.starred,"
        " (SELECT group_concat(tag, ' ') FROM tags t WHERE t.item_id=i.id),"
        " (SELECT substr(message, 1, 200) FROM texts WHERE texts.rowid=i.seq)"
        " FROM items i JOIN sources s ON s.id=i.source_id"
    )

    def _item(self, row: tuple[object, ...]) -> Item:
        atts = tuple((str(a[0]), int(a[1]), str(a[2])) for a in json.loads(str(row[7])))
        tags = tuple(sorted(str(row[10]).split())) if row[10] else ()
        return Item(
            str(row[0]),
            str(row[1]),
            str(row[2]),
            str(row[3]),
            str(row[4]),
            int(str(row[5])),
            str(row[6]),
            atts,
            str(row[8]),
            bool(row[9]),
            tags,
            str(row[11] or ""),
        )

    def get(self, item_id: str) -> Item:
        """One item by its full id."""
        row = self.db.execute(self._SELECT + " WHERE i.id=?", (item_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no item {item_id}")
        return self._item(row)

    def message(self, item_id: str) -> str:
        """The stored message text of an item."""
        row = self.db.execute(
            "SELECT message FROM texts WHERE rowid=?", (self._seq(item_id),)
        ).fetchone()
        return str(row[0]) if row else ""

    def notes(self, item_id: str) -> list[str]:
        """An item's notes, oldest first."""
        rows = self.db.execute(
            "SELECT body FROM notes WHERE item_id=? ORDER BY rowid", (item_id,)
        ).fetchall()
        return [str(r[0]) for r in rows]

    def digest(self, item_id: str) -> bytes:
        """The BLAKE2b-256 digest the stored envelope must have."""
        row = self.db.execute("SELECT digest FROM items WHERE id=?", (item_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no item {item_id}")
        return bytes(row[0])

    def fingerprints(self, item_id: str) -> dict[int, bytes]:
        """An item's recorded fingerprints (empty for an item imported before they were taken)."""
        rows = self.db.execute(
            "SELECT part, sha256 FROM fingerprints WHERE item_id=? ORDER BY part", (item_id,)
        ).fetchall()
        return {int(r[0]): bytes(r[1]) for r in rows}

    def all_ids(self) -> list[str]:
        """Every item id."""
        return [str(r[0]) for r in self.db.execute("SELECT id FROM items ORDER BY seq")]

    def count(self) -> int:
        """How many items the vault holds."""
        return int(self.db.execute("SELECT count(*) FROM items").fetchone()[0])

    def query(
        self,
        *,
        text: str | None = None,
        status: str | None = None,
        tag: str | None = None,
        starred: bool = False,
        source: str | None = None,
        limit: int = 50,
    ) -> tuple[list[Thread], int]:
        """Items matching every filter, grouped into threads, newest thread first.

        Returns the threads holding at most ``limit`` items, and how many items matched.
        """
        where: list[str] = []
        args: list[object] = []
        if text:
            where.append("i.seq IN (SELECT rowid FROM texts WHERE texts MATCH ?)")
            args.append(fts_query(text))
        if status:
            if status not in STATUSES:
                raise UsageError(f"status must be one of {', '.join(STATUSES)}")
            where.append("i.status=?")
            args.append(status)
        if tag:
            where.append("i.id IN (SELECT item_id FROM tags WHERE tag=?)")
            args.append(tag.strip().lower())
        if starred:
            where.append("i.starred=1")
        if source:
            where.append("i.source_id=?")
            args.append(source)
        # Only the fixed fragments above go into the SQL text; every value is a parameter.
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        try:
            count_sql = "SELECT count(*) FROM items i" + clause  # noqa: S608
            total = int(self.db.execute(count_sql, args).fetchone()[0])
            # The newest ``limit`` first, by the items table alone, and only then their whole
            # rows: sorting whole rows would read every item's tags and message preview
            # (4 times slower at 100,000 items, where the TUI must draw within a second).
            order = " ORDER BY i.received DESC, i.seq DESC"
            newest = "SELECT i.seq FROM items i" + clause + order + " LIMIT ?"  # noqa: S608
            rows = self.db.execute(
                self._SELECT + " WHERE i.seq IN (" + newest + ")" + order,
                [*args, limit],
            ).fetchall()
        except sqlite3.OperationalError as exc:
            raise UsageError("that search could not be understood") from exc
        groups: dict[str, list[Item]] = {}
        for row in rows:
            item = self._item(row)
            groups.setdefault(item.source_id, []).append(item)
        threads = [
            Thread(sid, items[0].designation, tuple(sorted(items, key=lambda i: i.received)))
            for sid, items in groups.items()
        ]
        return threads, total


def fts_query(text: str) -> str:
    """Turn what someone typed into an FTS5 query: every word must appear, as a prefix.

    Each word is quoted, so FTS5 operators and punctuation in the input are plain text.
    """
    words = [w for w in text.split() if w][:32]
    if not words:
        raise UsageError("search for at least one word")
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)
