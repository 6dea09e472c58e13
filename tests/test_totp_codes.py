"""The log-in helper's TOTP codes (tests/totp_codes.py) are taken by the server's own check
(``accounts._matching_step``) when made and ``MARGIN`` seconds later, at every point of a step."""

from __future__ import annotations

import pyotp

from tipline.server import accounts

from .totp_codes import MARGIN, usable_step

SECRET = pyotp.random_base32(32)
STEP = accounts.TOTP_STEP


def taken(step: int, at: float) -> bool:
    code = pyotp.TOTP(SECRET, digits=accounts.TOTP_DIGITS, interval=STEP).generate_otp(step)
    return accounts._matching_step(SECRET, code, at) == step


def test_a_code_made_just_before_a_step_boundary_is_taken_after_it() -> None:
    current = 1_000_000
    for offset in (0.0, 10.0, 19.9, 20.1, 25.0, 29.0, 29.99):
        now = current * STEP + offset
        for last in (0, current - 2, current - 1, current):
            found = usable_step(last, now)
            assert found is not None and found > last, (offset, last)
            assert taken(found, now) and taken(found, now + MARGIN), (offset, last, found)
    # Control: the old choice (the previous step whenever unused) is refused a second later.
    now = current * STEP + 29.5
    assert taken(current - 1, now) and not taken(current - 1, now + 1)
    assert usable_step(0, now) == current  # what the helper gives there instead
    assert usable_step(0, current * STEP + 5) == current - 1  # three log-ins a step, early on


def test_none_while_every_step_the_server_takes_is_used() -> None:
    current = 1_000_000
    assert usable_step(current + 1, current * STEP + 1) is None
    assert usable_step(current, current * STEP + 1) == current + 1
