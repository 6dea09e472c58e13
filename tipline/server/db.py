"""The database: one engine per app, one session per request, and Alembic migrations."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import NamedTuple

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.util import CommandError
from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session

from ..crypto.errors import TiplineError

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets foreign keys, WAL and a busy timeout so two workers can share it.

    ``hide_parameters``: an error's message (and so the log) never carries the statement's
    bound values, which can be a source's id or designation.
    """
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, hide_parameters=True)
    engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # a committed row survives a power cut
        # Deleted rows are overwritten with zeros, not just unlinked from their page.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    return engine


def forget(db: Session) -> bool:
    """After deleting a source: copy the WAL into the database file and empty it, so the
    deleted row (zeroed in the database by ``secure_delete``) is not kept in an older page
    image in the WAL. True if the WAL was emptied; False while another connection still reads
    an older snapshot (the next call, or SQLite's own checkpoint, finishes it). PostgreSQL
    has no such file here: its dead rows go at the next VACUUM (docs/THREAT-MODEL.md).
    """
    bind = db.get_bind().engine
    if bind.dialect.name != "sqlite":
        return True
    with bind.connect() as conn:
        busy, _log, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    return not busy


def close_last(url: str) -> bool:
    """Be the last connection to a SQLite database, after every worker has stopped: SQLite
    removes ``-wal`` and ``-shm`` only when the connection that closes last finds no other
    open, so two workers closing at the same moment can each leave them (one stop in a hundred
    or so), as can a worker killed with its connection open. Opening and closing one here,
    once nothing else runs, checkpoints and removes them. A database that is not there is not
    made. Returns True when no write-ahead log is left (always, for PostgreSQL).
    """
    if not url.startswith("sqlite"):
        return True
    path = make_url(url).database
    if not path or path == ":memory:" or not Path(path).exists():
        return True
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return not Path(f"{path}-wal").exists()


def alembic_config(engine: Engine) -> AlembicConfig:
    """An Alembic config that runs ``migrations/`` on this engine."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


class SchemaError(TiplineError):
    """the database schema cannot be brought up to date"""


class Upgrade(NamedTuple):
    """What ``upgrade`` did: the schema version before (None: no tables yet) and after."""

    before: str | None
    after: str | None

    def describe(self) -> str:
        """One line for the admin: created, upgraded from X to Y, or already up to date."""
        if self.before is None:
            return f"created every table (schema version {self.after})"
        if self.before != self.after:
            return f"upgraded the database from schema version {self.before} to {self.after}"
        return f"the database is already up to date (schema version {self.after})"


def schema_version(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None if it has no tables of ours yet."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, data_dir: Path, revision: str = "head") -> Upgrade:
    """Bring the schema up to ``revision``; a file lock keeps two workers from racing."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "migrate.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        before = schema_version(engine)
        try:
            command.upgrade(alembic_config(engine), revision)
        except CommandError as exc:  # e.g. a schema newer than this code (a rolled-back release)
            raise SchemaError(
                f"it is at version {before}, which this release does not know ({exc}); "
                "restore the backup taken before the upgrade, or install the release that made it"
            ) from None
        return Upgrade(before, schema_version(engine))


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema down to ``revision`` (for tests and rollbacks by an admin)."""
    command.downgrade(alembic_config(engine), revision)


def init_app(app: Flask) -> None:
    """Bind an engine to the app, migrate if configured, close sessions after each request."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["tipline.engine"] = engine
    if app.config["AUTO_MIGRATE"]:
        upgrade(engine, Path(app.config["DATA_DIR"]))

    @app.teardown_appcontext
    def _close(_exc: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.close()


def engine_of(app: Flask) -> Engine:
    """The app's engine."""
    engine: Engine = app.extensions["tipline.engine"]
    return engine


def session() -> Session:
    """This request's session, made on first use."""
    if "db" not in g:
        g.db = Session(engine_of(current_app), expire_on_commit=False)
    db: Session = g.db
    return db
