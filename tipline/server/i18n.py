"""Languages: English, plus every catalogue under ``translations/`` (adding one adds a language,
no code). Chosen from ``?lang=``, then the session, then Accept-Language.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from babel import Locale
from flask import Flask, current_app, request, session
from flask_babel import get_locale
from sqlalchemy.exc import SQLAlchemyError

from .extensions import babel

TRANSLATIONS = Path(__file__).resolve().parents[2] / "translations"


def available() -> list[str]:
    """English and every language with a compiled catalogue."""
    found = sorted(p.parent.parent.name for p in TRANSLATIONS.glob("*/LC_MESSAGES/messages.mo"))
    return ["en", *found]


def select_locale() -> str:
    """The language for this request."""
    languages = offered()
    asked = request.args.get("lang")
    if asked in languages:
        session["lang"] = asked
        return asked
    kept = session.get("lang")
    if kept in languages:
        return str(kept)
    return request.accept_languages.best_match(languages) or "en"


def offered() -> list[str]:
    """The languages the admin offers (all of them if the settings cannot be read)."""
    from . import settings

    try:
        return settings.languages()
    except SQLAlchemyError:
        everything: list[str] = current_app.config["LANGUAGES"]
        return everything


def _context() -> dict[str, Any]:
    """The language switch shows only the offered languages; pages show the org's name."""
    from . import settings

    try:
        org_name = settings.current().org_name
    except SQLAlchemyError:
        org_name = ""
    return {"language_names": language_names(offered()), "org_name": org_name}


def language_names(codes: list[str]) -> list[tuple[str, str]]:
    """Each language's name in that language, for the switch."""
    return list(_names(tuple(codes)))


@functools.lru_cache(maxsize=64)
def _names(codes: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Babel's names for ``codes``: every page shows them, and they never change."""
    names = [(code, Locale.parse(code).get_display_name(code) or code) for code in codes]
    return tuple((code, name[:1].upper() + name[1:]) for code, name in names)


def init_app(app: Flask) -> None:
    """Bind Flask-Babel to the catalogues folder."""
    app.config["LANGUAGES"] = available()
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.globals["language_names"] = language_names(app.config["LANGUAGES"])
    app.jinja_env.globals["get_locale"] = get_locale
    app.context_processor(_context)
