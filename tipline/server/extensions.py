"""Flask extensions, created unbound here and bound to an app in ``create_app``."""

from __future__ import annotations

from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
babel = Babel()
