"""Response headers, cookies and logging: what keeps a source's browser and identity out of
reach of third parties, of other sites, and of the server's own logs.
"""

from __future__ import annotations

import datetime
import io
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, abort, current_app, g, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.serving import WSGIRequestHandler

from . import assets

F = TypeVar("F", bound=Callable[..., Any])

# Pages without scripts may load only our own CSS and images, and post forms only to us.
CSP_PLAIN = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# Pages that seal in the browser add our own scripts, libsodium's WebAssembly (which needs
# 'wasm-unsafe-eval' and nothing looser), our own Worker, and fetch() to us.
CSP_CRYPTO = (
    CSP_PLAIN + "; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'"
)


def crypto_page(view: F) -> F:
    """Mark a view whose page runs the browser crypto, so it gets the wider CSP."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.csp = CSP_CRYPTO
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _headers(response: Response) -> Response:
    headers = response.headers
    # A Worker runs under the CSP of its own script's response, and the crypto Worker imports
    # modules and compiles libsodium's WebAssembly: our scripts get the crypto policy.
    is_static = request.endpoint == "static"
    is_script = is_static and request.path.endswith((".js", ".mjs"))
    headers["Content-Security-Policy"] = CSP_CRYPTO if is_script else g.get("csp", CSP_PLAIN)
    headers["Referrer-Policy"] = "no-referrer"
    if is_static and request.path.startswith(assets.FOLDER) and response.status_code == 200:
        # Content-addressed (assets.py): a new build is a new name, so it may be kept.
        headers["Cache-Control"] = assets.IMMUTABLE
        headers.pop("Pragma", None)
    else:
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
    headers.pop("Server", None)
    _relative_location(response)
    # Last-Modified on static files is a precise time: drop it (ETags are content hashes).
    headers.pop("Last-Modified", None)
    return response


def _relative_location(response: Response) -> None:
    """Every redirect stays on this site, so its Location is a path: werkzeug's slash redirects
    (``/admin`` to ``/admin/``) would otherwise be absolute, built from the request's Host
    header, and send a browser wherever a forged Host names."""
    location = response.headers.get("Location")
    if location:
        parts = urlsplit(location)
        if parts.scheme or parts.netloc:
            path = parts.path if parts.path.startswith("/") else "/" + parts.path
            response.headers["Location"] = urlunsplit(("", "", path, parts.query, parts.fragment))


class BoundedJSON(DefaultJSONProvider):
    """Flask's JSON with nesting too deep for the parser refused as invalid JSON (a 400 where
    the body is read), not a RecursionError (a 500)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse, or raise ``ValueError``."""
        try:
            return super().loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc


SMALL_BODY = 64 * 1024  # a login form, a JSON call: far more than they need
FORM_OVERHEAD = 2 << 20  # the multipart framing and the message field, on top of the files
CSRF_HEAD = 4096  # the no-JS form sends its CSRF token first: it is within these bytes


def _limit_body() -> None:
    """Bound every request body before anything parses it: a whole submission only for the
    no-JS form (streamed through the sealing spool), a chunk for a chunk, little elsewhere.
    URL-encoded forms are read into memory whole, so they never get the large limit.
    """
    config = current_app.config
    if request.endpoint == "source.submit" and request.mimetype == "multipart/form-data":
        from . import settings

        # The admin's limit (at most the configured ceiling), not the ceiling itself.
        request.max_content_length = settings.max_submission_size() + FORM_OVERHEAD
    elif request.endpoint == "api.upload_chunk":
        request.max_content_length = config["MAX_CHUNK_SIZE"]
    elif request.endpoint in ("journalist.replies", "journalist_api.upload_replies"):
        request.max_content_length = config["MAX_REPLY_BUNDLE"] + (1 << 20)
    elif request.endpoint in ("admin.manifest_upload", "admin.manifest_confirm"):
        request.max_content_length = 512 * 1024  # a signed manifest is at most 96 KiB
    else:
        request.max_content_length = SMALL_BODY
    if request.content_length is None and request.max_content_length <= SMALL_READ:
        _read_small_chunked(request.max_content_length)


SMALL_READ = 1 << 20  # bodies bounded to this much are small enough to read ahead in memory


def read_up_to(stream: Any, most: int) -> bytes:
    """The first ``most`` bytes of ``stream``, or all of it if it ends sooner, in reads of at
    most 64 KiB: one read may give less than asked (a spooled upload gives a chunk a read)."""
    data = bytearray()
    while len(data) < most:
        chunk = stream.read(min(64 * 1024, most - len(data)))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _read_small_chunked(limit: int) -> None:
    """A chunked body (no Content-Length) for a small-bodied endpoint, read ahead whole and
    refused with a 413 if it is over the limit. Werkzeug's stream would stop at the limit
    without saying so, and a form or JSON body would be parsed cut short.
    """
    if "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        return
    data = read_up_to(request.environ["wsgi.input"], limit + 1)
    if len(data) > limit:
        abort(413)
    # From here on it is an ordinary body of known length.
    request.environ["wsgi.input"] = io.BytesIO(data)
    request.environ["CONTENT_LENGTH"] = str(len(data))
    request.environ.pop("HTTP_TRANSFER_ENCODING", None)


def _refuse_oversize_early() -> Any:
    """Refuse a no-JS submission whose declared size is over the admin's limit before reading
    its body: over Tor, a source would otherwise upload for hours to be refused at the end.
    The 413 page is the app's own, in the source's language, with the typed message kept
    (read from the head of the body, where the form puts it before the files).
    """
    if request.endpoint != "source.submit" or request.method != "POST":
        return None
    from . import settings, source

    length = request.content_length
    if length is None or length <= settings.max_submission_size() + FORM_OVERHEAD:
        return None
    return source.too_large(length)


class _Replay:
    """The request body with its already-read head put back in front of the rest."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self._head, self._rest = head, rest

    def read(self, size: int = -1, /) -> bytes:
        """The head first, then the rest of the body."""
        if not self._head:
            rest: bytes = self._rest.read(size)
            return rest
        if size is None or size < 0:
            head, self._head = self._head, b""
            tail: bytes = self._rest.read()
            return head + tail
        data, self._head = self._head[:size], self._head[size:]
        return data

    def readline(self, size: int = -1, /) -> bytes:
        """Werkzeug reads bodies with ``read``; a line is read the same way for completeness."""
        if self._head:
            end = self._head.find(b"\n")
            cut = len(self._head) if end < 0 else end + 1
            if size is not None and size >= 0:
                cut = min(cut, size)
            data, self._head = self._head[:cut], self._head[cut:]
            return data
        line: bytes = self._rest.readline(size)
        return line


class _Recording:
    """A stream that keeps what was read from it."""

    def __init__(self, stream: Any, limit: int) -> None:
        self._stream, self._left, self.read_so_far = stream, limit, b""

    def read(self, size: int = -1, /) -> bytes:
        size = self._left if size < 0 else min(size, self._left)
        data: bytes = self._stream.read(size) if size else b""
        self._left -= len(data)
        self.read_so_far += data
        return data


def _check_csrf_early() -> Any:
    """Check a no-JS submission's CSRF token (the form's first field, or the X-CSRFToken
    header) and the app's capacity before a byte of its files is read: a forged or expired
    post is refused after at most ``CSRF_HEAD`` bytes, never spooled to disk.
    """
    if request.endpoint != "source.submit" or request.method != "POST":
        return None
    from flask_wtf.csrf import validate_csrf
    from wtforms import ValidationError

    from . import source
    from .formhead import leading_fields
    from .limits import limits

    if not limits().room("submission"):
        return source.refused(429)
    token = request.headers.get("X-CSRFToken")
    boundary = request.mimetype_params.get("boundary")
    if token is None and request.mimetype == "multipart/form-data" and boundary:
        length = request.content_length
        head = CSRF_HEAD if length is None else min(length, CSRF_HEAD)
        recording = _Recording(request.environ["wsgi.input"], head)
        token = leading_fields(recording, boundary, CSRF_HEAD).get("csrf_token")
        request.environ["wsgi.input"] = _Replay(
            recording.read_so_far, request.environ["wsgi.input"]
        )
    if token is None and request.mimetype != "multipart/form-data":
        return None  # a small URL-encoded form: CSRFProtect reads it within SMALL_BODY
    try:
        validate_csrf(token)
    except ValidationError:
        return source.refused(400)
    return None


def init_app(app: Flask) -> None:
    """Headers on every response, cookie flags, and logs that name no one."""
    app.config.update(
        SESSION_COOKIE_NAME="tipline",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=bool(app.config["HTTPS"]),
        SESSION_REFRESH_EACH_REQUEST=False,
        PERMANENT_SESSION_LIFETIME=datetime.timedelta(minutes=app.config["SESSION_MINUTES"]),
        WTF_CSRF_TIME_LIMIT=None,  # a frightened source may take hours over a message
        WTF_CSRF_SSL_STRICT=False,  # the check reads Referer, which Tor Browser and we strip
        SEND_FILE_MAX_AGE_DEFAULT=None,
        MAX_FORM_MEMORY_SIZE=1 << 20,  # the message field, in memory: never spooled to disk
        MAX_FORM_PARTS=200,
    )
    # Registered before CSRFProtect, which parses forms (and so reads whole bodies).
    app.before_request(_limit_body)
    app.before_request(_refuse_oversize_early)
    app.before_request(_check_csrf_early)
    app.after_request(_headers)
    app.json = BoundedJSON(app)
    quiet_logging()


def quiet_logging() -> None:
    """Keep request lines (with addresses) out of every log; warnings and errors stay."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("gunicorn.access").disabled = True


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's development server handler without the request log, which prints the client
    address, the time to the second and the path of every request.
    """

    def address_string(self) -> str:
        """Never the client address, even in an error line."""
        return "-"

    def log_date_time_string(self) -> str:
        """Never the time to the second either: an error line (a malformed request) keeps
        werkzeug's layout with ``[-]`` where the time was."""
        return "-"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log."""
