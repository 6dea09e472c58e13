"""App-wide limits on work done, counted in storage every worker shares (``LIMITS_STORAGE``).

What is counted is work the server did, never a refused request: a stored no-JS submission, a
started upload, a failed staff password. A request is refused (429) only when the work of the
same kind already done in the window reached the limit, so a client that sends a thousand
refused requests (wrong codenames, empty forms, expired CSRF tokens) spends nothing of anyone's
allowance. Nothing here is keyed on a client: the app cannot tell sources apart and must not
try; per-client limits are nginx's, per Tor circuit, in its memory (docs/THREAT-MODEL.md).

Codename logins are not counted at all. An app-wide counter of failures would refuse the source
with the right codename as soon as anyone sent enough wrong ones, and it buys nothing: a
codename has about 90 bits, so no rate of guessing finds one (at a billion guesses a second, some
10^10 years on average), and a guess costs the server one keyed hash. What costs memory and time
is Argon2id, in staff logins only: ``accounts.verify_password`` runs at most two at a time per
worker, so a flood of staff logins queues instead of exhausting memory, and nginx bounds the
rate per circuit.

The storage is picked once from configuration (``memory://`` for ``make run`` and tests,
a ``redis+unix://`` socket when deployed, docs/DEPLOY.md) and views see only ``Limits``.
"""

from __future__ import annotations

import hashlib
import logging
import time

from flask import Flask, current_app
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

log = logging.getLogger(__name__)

# The kinds of work that are counted, and the configuration key holding each one's limit.
RULES = {
    "submission": "RATELIMIT_SUBMIT",  # a stored no-JS submission or a started upload
    "staff-login": "RATELIMIT_LOGIN",  # a failed staff password or code, per account
    "reply-bundle": "RATELIMIT_SUBMIT",  # a reply bundle imported, per account
}


class Limits:
    """Counters of work done, shared by every worker through one storage."""

    def __init__(self, uri: str, rules: dict[str, str], enabled: bool = True) -> None:
        self._storage = storage_from_string(uri)
        self._limiter = FixedWindowRateLimiter(self._storage)
        self._rules: dict[str, RateLimitItem] = {name: parse(r) for name, r in rules.items()}
        self.enabled = enabled
        self._warned = -1e9

    @staticmethod
    def _key(who: str) -> str:
        # An account name is not stored as such in the limits storage: only a short hash.
        return hashlib.blake2b(who.encode("utf-8"), digest_size=8).hexdigest() if who else "all"

    def room(self, name: str, who: str = "") -> bool:
        """Whether one more unit of this work may be done now (counts nothing). If the storage
        cannot be reached the answer is yes: a tip line that refused every tip while Redis
        restarts would serve an attacker better than one that counts nothing for a while.
        """
        if not self.enabled:
            return True
        try:
            return self._limiter.test(self._rules[name], name, self._key(who))
        except Exception as exc:  # any storage's failure, the same answer
            self._unreachable(exc)
            return True

    def spend(self, name: str, who: str = "") -> None:
        """Count one unit of work that was done (nothing, if the storage cannot be reached)."""
        if not self.enabled:
            return
        try:
            self._limiter.hit(self._rules[name], name, self._key(who))
        except Exception as exc:
            self._unreachable(exc)

    def _unreachable(self, exc: Exception) -> None:
        # One line a minute at most per worker; the error's type only (no request detail).
        now = time.monotonic()
        if now - self._warned > 60:
            self._warned = now
            log.warning("app limits are not counted: the storage failed (%s)", type(exc).__name__)

    def reset(self) -> None:
        """Forget every count (tests)."""
        self._storage.reset()


def init_app(app: Flask) -> None:
    """Open the configured storage once for this app."""
    config = app.config
    rules = {name: str(config[key]) for name, key in RULES.items()}
    app.extensions["tipline.limits"] = Limits(
        str(config["LIMITS_STORAGE"]), rules, bool(config["RATELIMIT_ENABLED"])
    )


def limits() -> Limits:
    """The app's limits."""
    found: Limits = current_app.extensions["tipline.limits"]
    return found
