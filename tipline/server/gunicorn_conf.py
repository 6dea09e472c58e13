"""gunicorn settings for the source interface: no access log, nothing below warnings.

gunicorn's access log would write every client address and User-Agent; its debug and info
levels mention addresses of bad requests. Neither may exist on a tip line's server.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger


class QuietLogger(Logger):  # type: ignore[misc]  # gunicorn has no type hints
    """gunicorn's logger without its warning about each malformed request ("Invalid request
    from ip=...: ..."): that line, with the time gunicorn and the journal put on it, says when
    someone sent what, and a client may send as many as it likes. The client gets its 400."""

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(msg, str) and msg.startswith("Invalid request from"):
            return
        super().warning(msg, *args, **kwargs)


logger_class = QuietLogger
accesslog = None
disable_redirect_access_to_syslog = True
errorlog = "-"
loglevel = "warning"
# Large uploads stream through the no-JS form: let a slow Tor circuit finish its request.
timeout = 600
forwarded_allow_ips = ""  # never believe X-Forwarded-For; nothing reads it anyway
proxy_allow_ips = ""
