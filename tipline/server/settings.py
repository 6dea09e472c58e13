"""Instance settings an admin changes in the browser, kept in the database so that every
worker (and the source side) reads the same values.

A missing row means the default; the configuration file's ``MAX_SUBMISSION_SIZE`` stays the
ceiling an admin cannot raise from the web.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from flask import current_app, g
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..crypto.errors import TiplineError
from . import cache, db
from .i18n import _
from .models import Setting

MAX_ORG_NAME = 100
MAX_RETENTION_DAYS = 36500


class SettingsError(TiplineError):
    """that setting is not valid"""


@dataclass(frozen=True)
class Settings:
    """What an admin can change. Days of 0 mean "keep until a journalist deletes it"."""

    org_name: str = ""
    submissions_open: bool = True
    max_submission_size: int = 0  # 0: the configured MAX_SUBMISSION_SIZE
    retention_days_after_download: int = 0
    retention_max_days: int = 0
    languages: tuple[str, ...] = ()  # empty: every language with a catalogue


def check(value: Settings, available: list[str], ceiling: int) -> Settings:
    """Bound every field; ``SettingsError`` names the first one that is wrong."""
    if len(value.org_name) > MAX_ORG_NAME or any(not c.isprintable() for c in value.org_name):
        raise SettingsError(
            _("the organisation name is at most %(num)d printable characters", num=MAX_ORG_NAME)
        )
    if not 0 <= value.max_submission_size <= ceiling:
        raise SettingsError(
            _("the size limit is 0 to %(num)d bytes (0 means %(num)d)", num=ceiling)
        )
    for days in (value.retention_days_after_download, value.retention_max_days):
        if not 0 <= days <= MAX_RETENTION_DAYS:
            raise SettingsError(_("retention is 0 to %(num)d days", num=MAX_RETENTION_DAYS))
    unknown = [code for code in value.languages if code not in available]
    if unknown:
        raise SettingsError(_("no translation for %(codes)s", codes=", ".join(unknown)))
    if value.languages and "en" not in value.languages:
        raise SettingsError(_("English must stay offered"))
    return value


def load(session: Session) -> Settings:
    """The stored settings over the defaults (unknown or damaged rows are ignored)."""
    known = {f.name for f in fields(Settings)}
    stored: dict[str, Any] = {}
    for row in session.scalars(select(Setting)).all():
        if row.name in known:
            try:
                stored[row.name] = json.loads(row.value)
            except ValueError:
                continue
    if isinstance(stored.get("languages"), list):
        stored["languages"] = tuple(stored["languages"])
    try:
        return replace(Settings(), **stored)
    except TypeError:
        return Settings()


def save(session: Session, value: Settings) -> list[str]:
    """Store every field; returns the names that changed."""
    before = asdict(load(session))
    changed = []
    for name, new in asdict(value).items():
        if before[name] != new:
            changed.append(name)
            encoded = json.dumps(list(new) if isinstance(new, tuple) else new)
            row = session.get(Setting, name)
            if row is None:
                session.add(Setting(name=name, value=encoded))
            else:
                row.value = encoded
    session.commit()
    if changed:
        cache.of().changed()  # every worker reads the new values from its next request on
        g.pop("tipline_settings", None)
    return changed


def current() -> Settings:
    """This request's settings (read once per request, from the worker's cache: see cache.py)."""
    if "tipline_settings" not in g:
        g.tipline_settings = cache.of().get("settings", lambda: load(db.session()))
    found: Settings = g.tipline_settings
    return found


def max_submission_size() -> int:
    """The size limit for one submission now: the admin's, under the configured ceiling."""
    ceiling = int(current_app.config["MAX_SUBMISSION_SIZE"])
    chosen = current().max_submission_size
    return min(chosen, ceiling) if chosen else ceiling


def languages() -> list[str]:
    """The languages offered to sources."""
    available: list[str] = current_app.config["LANGUAGES"]
    chosen = current().languages
    return [code for code in available if code in chosen] if chosen else available
