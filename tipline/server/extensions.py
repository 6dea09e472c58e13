"""Flask extensions, created unbound here and bound to an app in ``create_app``."""

from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_wtf.csrf import CSRFProtect


def _one_bucket() -> str:
    """Every client shares one bucket: the server must not tell sources apart by address (and
    behind Tor every request comes from the same local address anyway).
    """
    return "everyone"


csrf = CSRFProtect()
babel = Babel()
# In memory, so the limits are per worker process: they bound load, they identify nobody.
limiter = Limiter(key_func=_one_bucket, storage_uri="memory://", default_limits=[])
