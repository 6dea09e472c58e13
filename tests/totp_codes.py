"""TOTP codes for tests that log staff in: one the server takes when the request reaches it.

The server takes the previous, current and next 30-second step, each once per account
(``accounts.use_code``). The earliest step not yet used lets a test log one account in three
times within a step, but the previous step leaves the window at the next boundary: a code for it
made just before a boundary and checked just after is refused (CI failed once so, on PostgreSQL
under load). So the previous step is used only while more than ``MARGIN`` seconds remain.
"""

from __future__ import annotations

import time

import pyotp

from tipline.server import accounts

MARGIN = 10.0  # seconds a code must stay in the server's window after it is made


def usable_step(last_step: int, now: float) -> int | None:
    """The earliest step after ``last_step`` that the server takes at ``now`` and still takes
    ``MARGIN`` seconds later; None while every such step is used."""
    step = accounts.TOTP_STEP
    current = int(now) // step
    earliest = current - 1 if (current + 1) * step - now > MARGIN else current
    found = max(earliest, last_step + 1)
    return found if found <= current + 1 else None


def code_after(secret: str, last_step: int) -> str:
    """A code for ``usable_step`` now, for an account whose last used step is ``last_step``;
    when none is left (a fourth log-in within a step), it waits for the next step."""
    totp = pyotp.TOTP(secret, digits=accounts.TOTP_DIGITS, interval=accounts.TOTP_STEP)
    while (found := usable_step(last_step, time.time())) is None:
        time.sleep(accounts.TOTP_STEP - time.time() % accounts.TOTP_STEP + 0.01)
    return str(totp.generate_otp(found))
