"""A proof-of-work the page does before an upload may start, for when Tor's own is not there
(behind Onionbalance) or the tip line is under load (docs/SPEC.md §10, docs/THREAT-MODEL.md).

The server keeps no state for a challenge it issued: a challenge carries its difficulty and
expiry and is authenticated with a key derived from ``SECRET_KEY``, so any worker of any app
server that shares the key checks it. Only a *spent* challenge is remembered, in the limits
storage every worker shares, until it expires: a solution is good for one upload.

The solution is a BLAKE2b hashcash (``tipline/crypto/proof_of_work.py``).
"""

from __future__ import annotations

import secrets
import struct
import time
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _

from ..crypto import proof_of_work as hashcash
from ..crypto.encoding import b64d, b64e
from ..crypto.primitives import ds, equal, mac
from . import settings
from .limits import limits

VERSION = 1
DS_POW_KEY = b"tipline/v1/pow-key"
BODY = struct.Struct(">BBQ16s")  # version, difficulty, expires (Unix seconds), random
TAG_SIZE = 32
CHALLENGE_SIZE = BODY.size + TAG_SIZE  # 58
TTL_SECONDS = 120
AUTO_MIN = 8  # auto mode's difficulty with no load
SLACK = 2  # a challenge this many bits under today's difficulty is still accepted (auto)


class PowError(hashcash.PowError):
    """the browser check failed: reload the page and send again"""


class PowMissingError(PowError):
    """this tip line asks the browser for a small check before a tip is sent: reload the page"""


class PowExpiredError(PowError):
    """the browser check took too long and expired: send again"""


class PowReplayedError(PowError):
    """that browser check was already used: send again"""


class PowTooEasyError(PowError):
    """the tip line is busier now: send again, the check will take a little longer"""


@dataclass(frozen=True)
class Challenge:
    """An issued challenge, as the page receives it."""

    text: str  # standard base64 of the 58 bytes
    difficulty: int
    expires: int


def _key() -> bytes:
    secret = str(current_app.config["SECRET_KEY"]).encode("utf-8")
    return ds(DS_POW_KEY, secret, 32)


def mode() -> str:
    """off, on or auto: the admin's setting."""
    chosen = settings.current().pow
    return chosen if chosen in settings.POW_MODES else "off"


def form_gated() -> bool:
    """Whether the server-side form must carry a solution too (the admin's separate switch,
    in force only while the proof-of-work is on or auto)."""
    return mode() != "off" and settings.current().pow_form


def difficulty() -> int:
    """The difficulty asked now. ``on``: ``POW_DIFFICULTY``. ``auto``: from ``AUTO_MIN`` with
    no load up to ``POW_MAX_DIFFICULTY`` when the uploads started in the current window reach
    ``RATELIMIT_SUBMIT``, linearly: AUTO_MIN + floor((max - AUTO_MIN) * used / limit).
    """
    config = current_app.config
    top = min(int(config["POW_MAX_DIFFICULTY"]), hashcash.MAX_DIFFICULTY)
    if mode() == "on":
        return min(int(config["POW_DIFFICULTY"]), top)
    used, limit = limits().usage("submission")
    if limit <= 0:
        return min(AUTO_MIN, top)
    return min(top, AUTO_MIN + (max(top - AUTO_MIN, 0) * min(used, limit)) // limit)


def issue(now: float | None = None) -> Challenge:
    """A new challenge at today's difficulty."""
    level = difficulty()
    expires = int(now if now is not None else time.time()) + TTL_SECONDS
    body = BODY.pack(VERSION, level, expires, secrets.token_bytes(16))
    return Challenge(b64e(body + mac(_key(), body)), level, expires)


def check(challenge_text: object, nonce_text: object, now: float | None = None) -> None:
    """Accept a solution once, or raise the ``PowError`` that says why not."""
    if challenge_text is None or nonce_text is None:
        raise PowMissingError()
    challenge = b64d(challenge_text, CHALLENGE_SIZE, PowError, "the check")
    nonce = b64d(nonce_text, hashcash.NONCE_SIZE, PowError, "the check's answer")
    body, tag = challenge[: BODY.size], challenge[BODY.size :]
    if not equal(mac(_key(), body), tag):
        raise PowError()
    version, level, expires, random = BODY.unpack(body)
    if version != VERSION:
        raise PowError()
    clock = int(now if now is not None else time.time())
    if expires <= clock or expires > clock + TTL_SECONDS:
        raise PowExpiredError()
    if level < difficulty() - SLACK:
        raise PowTooEasyError()
    if not hashcash.solves(challenge, nonce, level):
        raise PowError()
    if not limits().first_use("pow:" + random.hex(), expires - clock):
        raise PowReplayedError()


def message(error: PowError) -> str:
    """The translated text a source sees for ``error``."""
    texts: dict[type[PowError], str] = {
        PowMissingError: _(
            "This tip line asks the browser for a small check before a tip is sent. Reload the"
            " page and send again."
        ),
        PowExpiredError: _("The browser check took too long and expired. Send again."),
        PowReplayedError: _("That browser check was already used. Send again."),
        PowTooEasyError: _(
            "The tip line is busier now. Send again: the check will take a little longer."
        ),
    }
    found = texts.get(type(error))
    return (
        found
        if found is not None
        else _("The browser check failed. Reload the page and send again.")
    )
