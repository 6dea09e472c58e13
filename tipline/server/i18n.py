"""Languages: English, plus every catalogue under ``translations/`` (adding one adds a language,
no code). Chosen from ``?lang=``, then the session, then Accept-Language.

Sources get the languages the admin offers; staff pages (journalist, admin, login, digest) get
every language there is a catalogue for, whatever the admin offers sources.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import flask_babel
from babel import Locale
from flask import Flask, current_app, has_request_context, request, session
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import SQLAlchemyError

from ..crypto.errors import TiplineError
from .extensions import babel

TRANSLATIONS = Path(__file__).resolve().parents[2] / "translations"


def available() -> list[str]:
    """English and every language with a compiled catalogue."""
    found = sorted(p.parent.parent.name for p in TRANSLATIONS.glob("*/LC_MESSAGES/messages.mo"))
    return ["en", *found]


STAFF_BLUEPRINTS = frozenset({"journalist", "admin", "auth", "digest"})


def _(message: str, **values: Any) -> str:
    """``gettext`` that also works outside a request (the CLI prints English): modules that the
    staff pages and ``tipline-server`` share build their sentences with it."""
    if has_request_context():
        return str(flask_babel.gettext(message, **values))
    return message % values if values else message


def ngettext(singular: str, plural: str, num: int, **values: Any) -> str:
    """``ngettext`` that also works outside a request (see ``_``)."""
    if has_request_context():
        return str(flask_babel.ngettext(singular, plural, num, **values))
    return (singular if num == 1 else plural) % {"num": num, **values}


# The sentence each refusal a staff page shows begins with (its class docstring, see
# ``TiplineError.message``): listed so that extraction puts them in the catalogues.
REFUSALS = (
    _l("the account change was refused"),
    _l("that password is too weak"),
    _l(
        "the username, password or two-factor code is wrong, or the account is locked for a few "
        "minutes after too many attempts"
    ),
    _l("the request was refused"),
    _l("that setting is not valid"),
    _l("the key manifest was refused"),
    _l("this bundle cannot be read"),
    _l("that key cannot be used for the daily digest"),
)


def refusal(exc: TiplineError) -> str:
    """``exc.message`` in the page's language: the class's sentence from the catalogue, and
    the detail, which was translated where it was raised (see ``_``)."""
    base = " ".join((type(exc).__doc__ or "").split())
    if not has_request_context():
        return exc.message
    said = str(flask_babel.gettext(base)) if base else base
    if not exc.detail:
        return said
    return str(flask_babel.gettext("%(sentence)s: %(detail)s", sentence=said, detail=exc.detail))


def staff_page() -> bool:
    """Whether this request is for a staff page (they offer every catalogue's language)."""
    return request.blueprint in STAFF_BLUEPRINTS


def select_locale() -> str:
    """The language for this request."""
    languages: list[str] = current_app.config["LANGUAGES"] if staff_page() else offered()
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
    return {
        "language_names": language_names(offered()),
        "staff_language_names": language_names(current_app.config["LANGUAGES"]),
        "org_name": org_name,
    }


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
