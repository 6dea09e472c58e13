"""gunicorn settings for the source interface: no access log, nothing below warnings.

gunicorn's access log would write every client address and User-Agent; its debug and info
levels mention addresses of bad requests. Neither may exist on a tip line's server.
"""

from __future__ import annotations

accesslog = None
disable_redirect_access_to_syslog = True
errorlog = "-"
loglevel = "warning"
# Large uploads stream through the no-JS form: let a slow Tor circuit finish its request.
timeout = 600
forwarded_allow_ips = ""  # never believe X-Forwarded-For; nothing reads it anyway
proxy_allow_ips = ""
