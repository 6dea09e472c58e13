"""The server's tables. They hold ciphertext sizes, random ids, hashes and public keys; never an
IP address, a User-Agent, a codename, or a time finer than the hour (docs/THREAT-MODEL.md).
"""

from __future__ import annotations

import datetime
import secrets

from sqlalchemy import BigInteger, Boolean, Date, DateTime, ForeignKey, LargeBinary, String
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


class Submission(Base):
    """A stored envelope; the blob store holds its bytes under the same id."""

    __tablename__ = "submissions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    received: Mapped[datetime.date] = mapped_column(Date, default=today)


class Reply(Base):
    """A journalist's reply envelope, sealed to the source's reply key on the desk."""

    __tablename__ = "replies"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created: Mapped[datetime.date] = mapped_column(Date, default=today)
    read: Mapped[bool] = mapped_column(Boolean, default=False)


class Upload(Base):
    """A resumable upload in progress; its bytes so far are in the blob store's upload folder."""

    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    manifest_version: Mapped[int] = mapped_column(BigInteger)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=this_hour)


class InstalledManifest(Base):
    """Every signed key manifest ever installed; the highest version is the current one."""

    __tablename__ = "manifests"
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    file: Mapped[bytes] = mapped_column(LargeBinary)
    installed: Mapped[datetime.date] = mapped_column(Date, default=today)
