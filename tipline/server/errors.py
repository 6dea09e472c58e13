"""Error pages and JSON errors: a plain message for the source, never a stack trace."""

from __future__ import annotations

import logging
import traceback

from flask import Flask, jsonify, make_response, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..crypto.errors import CodenameError, TiplineError
from .blobs import LowDiskSpaceError, StoreUnavailableError
from .uploads import StaleKeysError, WrongOffsetError

log = logging.getLogger(__name__)


def _messages() -> dict[int, str]:
    # Built per request so each message is in the source's language.
    return {
        400: _("The request was not valid. Nothing was stored."),
        401: _("Please log in with your codename first."),
        403: _("That is not allowed."),
        404: _("There is nothing here."),
        405: _("That is not allowed."),
        409: _("That conflicts with what the server has. Reload the page and try again."),
        413: _("That is larger than this tip line accepts. Nothing was stored."),
        429: _("Too many attempts just now. Wait a minute, then try again."),
        500: _("Something went wrong on the server. Nothing you sent before was lost."),
        503: _("The tip line cannot take submissions right now. Please try again later."),
    }


def message_for(status: int) -> str:
    """The plain message for an HTTP status, in the request's language."""
    return _messages().get(status, _messages()[500])


def respond(status: int, message: str) -> ResponseReturnValue:
    """A JSON error for the API, an HTML page for everything else."""
    if request.path.startswith("/api/"):
        return jsonify(error=message), status
    if request.path.startswith(("/journalist", "/admin")):
        return render_template("journalist/error.html", message=message, status=status), status
    return render_template("source/error.html", message=message, status=status), status


def _tipline_error(exc: TiplineError) -> ResponseReturnValue:
    if isinstance(exc, LowDiskSpaceError):
        return respond(
            503,
            _(
                "The tip line is short of disk space right now. Nothing you "
                "already sent was lost. Please try again later."
            ),
        )
    if isinstance(exc, StoreUnavailableError):
        log.error("the blob store does not answer")
        return respond(
            503,
            _(
                "The tip line's storage does not answer right now. Nothing you "
                "already sent was lost. Please try again later."
            ),
        )
    if isinstance(exc, StaleKeysError):
        return respond(
            409,
            _(
                "This page was loaded before the newsroom changed its keys. "
                "Reload the page and send your tip again. Nothing was stored."
            ),
        )
    if isinstance(exc, WrongOffsetError):
        return respond(409, _messages()[409])
    if isinstance(exc, CodenameError):
        return respond(400, _("That is not a valid codename."))
    # Other refusals (a malformed header, a bad size) explain themselves, in English for now.
    return respond(400, _("The request was refused: %(reason)s", reason=exc.message))


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    response = make_response(
        respond(status, _messages().get(status, _messages()[400 if status < 500 else 500]))
    )
    # The exception's own headers stay (a 405's Allow), not its plain-text body's type.
    for name, value in exc.get_headers():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value
    return response


def _csrf_error(_exc: CSRFError) -> ResponseReturnValue:
    return respond(400, _("The page expired. Reload it and try again. Nothing was stored."))


def _unexpected(exc: Exception) -> ResponseReturnValue:
    # The trace goes to the server's error log (no request details in it), never to the page.
    if isinstance(exc, OSError):
        # An OSError's message names its file, and an upload's or blob's name is its id:
        # log where it happened and the error number, not the path.
        frames = "".join(traceback.format_tb(exc.__traceback__))
        log.error("unexpected error: %s (errno %s)\n%s", type(exc).__name__, exc.errno, frames)
    else:
        log.error("unexpected error", exc_info=exc)
    return respond(500, _messages()[500])


def init_app(app: Flask) -> None:
    """Register the handlers."""
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(TiplineError, _tipline_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
