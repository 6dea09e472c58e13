"""The server's tables. They hold ciphertext sizes, random ids, hashes and public keys; never an
IP address, a User-Agent, a codename, or a time finer than the hour (docs/THREAT-MODEL.md).
"""

from __future__ import annotations

import datetime
import secrets

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The declarative base every model shares (Alembic compares against its metadata)."""


def new_id() -> str:
    """A random 16-byte id as hex: it says nothing about when or in what order rows were made."""
    return secrets.token_hex(16)


def today() -> datetime.date:
    """The UTC date: the finest time a submission or reply row keeps."""
    return datetime.datetime.now(datetime.UTC).date()


def this_hour() -> datetime.datetime:
    """The current UTC hour, for rows that need to expire (unfinished uploads)."""
    now = datetime.datetime.now(datetime.UTC)
    return now.replace(minute=0, second=0, microsecond=0, tzinfo=None)


class Source(Base):
    """A source: only derivations of the codename, never the codename itself."""

    __tablename__ = "sources"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    designation: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    reply_public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    created: Mapped[datetime.date] = mapped_column(Date, default=today)
    starred: Mapped[bool] = mapped_column(Boolean, default=False)  # by a journalist
    # Advanced at logout, so a copy of the session cookie dies with it.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    # True once a submission was stored: a source whose submissions journalists have deleted
    # still awaits replies and is kept; one that never sent anything is swept (retention.py).
    submitted: Mapped[bool] = mapped_column(Boolean, default=True)

    # The journalist list pages walk this index by key (no OFFSET scans).
    __table_args__ = (Index("ix_sources_created_id", "created", "id"),)


class Submission(Base):
    """A stored envelope; the blob store holds its bytes under the same id."""

    __tablename__ = "submissions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    received: Mapped[datetime.date] = mapped_column(Date, default=today)
    # The first download by anyone: the retention clock (retention.py). Whether an item is new
    # *for a journalist* is in ``downloads``, per account.
    downloaded: Mapped[bool] = mapped_column(Boolean, default=False)
    downloaded_on: Mapped[datetime.date | None] = mapped_column(Date, default=None)

    __table_args__ = (
        Index("ix_submissions_source_received_id", "source_id", "received", "id"),
        Index("ix_submissions_downloaded_received_id", "downloaded", "received", "id"),
        Index("ix_submissions_downloaded_on", "downloaded_on"),
    )


class Download(Base):
    """One journalist account downloaded (exported or marked) one submission, on a day (dates
    only). An item is "new" for an account while it has no row here for that account."""

    __tablename__ = "downloads"
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    submission_id: Mapped[str] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    day: Mapped[datetime.date] = mapped_column(Date, default=today)


class Assignment(Base):
    """A source assigned to a journalist account (a source may have several)."""

    __tablename__ = "assignments"
    source_id: Mapped[str] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class TriageUpdate(Base):
    """A sealed triage update between desks (SPEC §8.5); the blob store holds its bytes under
    the same id. The server cannot read it: it knows its size and the day it arrived."""

    __tablename__ = "triage_updates"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    stored: Mapped[datetime.date] = mapped_column(Date, default=today, index=True)


class TriageDelivery(Base):
    """A triage update went out, whole, in an export that marked what it carried, to one
    account: that account's next exports leave it out."""

    __tablename__ = "triage_deliveries"
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    update_id: Mapped[str] = mapped_column(
        ForeignKey("triage_updates.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Reply(Base):
    """A journalist's reply envelope, sealed to the source's reply key on the desk."""

    __tablename__ = "replies"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created: Mapped[datetime.date] = mapped_column(Date, default=today)
    read: Mapped[bool] = mapped_column(Boolean, default=False)


class Upload(Base):
    """A resumable upload in progress; its bytes so far are in the blob store's upload folder.

    A first-time source's upload has no ``source_id`` yet: it carries the new source's token
    hash and reply key, and the source is stored only with the finished submission.
    """

    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    source_id: Mapped[str | None] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), index=True, nullable=True
    )
    token_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), default=None)
    reply_public_key: Mapped[bytes | None] = mapped_column(LargeBinary(32), default=None)
    size: Mapped[int] = mapped_column(BigInteger)
    manifest_version: Mapped[int] = mapped_column(BigInteger)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=this_hour)


class InstalledManifest(Base):
    """Every signed key manifest ever installed; the highest version is the current one."""

    __tablename__ = "manifests"
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    file: Mapped[bytes] = mapped_column(LargeBinary)
    installed: Mapped[datetime.date] = mapped_column(Date, default=today)


class Account(Base):
    """A journalist or admin: an Argon2id password hash and a TOTP secret (staff, not sources,
    so the throttling time is kept to the second).
    """

    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    totp_pending: Mapped[str | None] = mapped_column(String(64), default=None)
    totp_last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime.datetime | None] = mapped_column(DateTime, default=None)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime.date] = mapped_column(Date, default=today)


class ApiToken(Base):
    """A bearer token for the journalist API; only its BLAKE2b hash is kept."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    label: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime.date] = mapped_column(Date, default=today)


class AuditEntry(Base):
    """One admin action: who, what, when. Never a source's data (counts at most)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime.datetime] = mapped_column(DateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(String(500), default="")


class Setting(Base):
    """One instance setting an admin changed (JSON); missing means the default."""

    __tablename__ = "settings"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class DigestSubscription(Base):
    """A journalist's daily digest: the address it goes to and the public key (age or OpenPGP)
    it is encrypted to. No row: no digest. ``last_sent`` (a day) makes a run once a day."""

    __tablename__ = "digest_subscriptions"
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str] = mapped_column(String(254))
    key_kind: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    # Every digest's body is padded to exactly this many characters (see digest.py).
    body_size: Mapped[int] = mapped_column(Integer)
    last_sent: Mapped[datetime.date | None] = mapped_column(Date, default=None)
