"""Journalist and admin accounts: Argon2id passwords, TOTP, throttling, API tokens.

Everything here works on a database session and plain values, so the web pages, the JSON API
and the ``tipline-server`` commands share it. Throttling lives in the database (not in a worker's
memory), so it holds across every gunicorn worker.
"""

from __future__ import annotations

import datetime
import hmac
import re
import secrets
import threading
import time
import unicodedata

import nacl.exceptions
import nacl.hashlib
import nacl.pwhash
import pyotp
import segno
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ..crypto.errors import TiplineError
from ..crypto.primitives import random_below
from ..wordlist import load_wordlist
from .i18n import _
from .models import Account, ApiToken, DigestSubscription, new_id

USERNAME = re.compile(r"\A[a-z0-9][a-z0-9._-]{1,63}\Z")
MIN_PASSWORD_CHARS = 14
MIN_DISTINCT_CHARS = 6
MAX_PASSWORD_CHARS = 256
PASSPHRASE_WORDS = 7  # as many as a codename: about 90 bits
MAX_FAILURES = 5  # consecutive wrong logins before the account is locked
LOCK_SECONDS = 300
TOTP_STEP = 30
TOTP_DIGITS = 6
TOKEN_BYTES = 32
ISSUER = "Tipline"
# Argon2id at libsodium's "interactive" cost: about 64 MiB and a fraction of a second.
OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
# At most this many Argon2id runs at once in a worker: a flood of logins (each 64 MiB) waits
# its turn rather than take every thread's worth of memory. Nobody is refused for it.
ARGON2_SLOTS = threading.BoundedSemaphore(2)


class AccountError(TiplineError):
    """the account change was refused"""


class WeakPasswordError(AccountError):
    """that password is too weak"""


class LoginError(TiplineError):
    """the username, password or two-factor code is wrong, or the account is locked for a few
    minutes after too many attempts"""


def now() -> datetime.datetime:
    """UTC now, naive (as the database keeps it)."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def generate_passphrase() -> str:
    """A passphrase of random words from the codename word list (about 90 bits)."""
    words = load_wordlist().words
    return " ".join(words[random_below(len(words))] for _ in range(PASSPHRASE_WORDS))


def check_username(username: str) -> str:
    """A username: 2 to 64 lowercase letters, digits, dots, dashes or underscores."""
    if not USERNAME.match(username):
        raise AccountError(
            _("a username is 2 to 64 lowercase letters, digits, dots, dashes or underscores")
        )
    return username


def check_strength(password: str, username: str) -> str:
    """Refuse a password that is short, repetitive, or built on the username."""
    password = unicodedata.normalize("NFC", password)
    if len(password) > MAX_PASSWORD_CHARS:
        raise WeakPasswordError(_("use at most %(num)d characters", num=MAX_PASSWORD_CHARS))
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPasswordError(
            _(
                "use at least %(num)d characters (the offered passphrase is best)",
                num=MIN_PASSWORD_CHARS,
            )
        )
    if len(set(password)) < MIN_DISTINCT_CHARS:
        raise WeakPasswordError(_("it repeats too few different characters"))
    if username and len(password.lower().replace(username.lower(), "")) < MIN_PASSWORD_CHARS:
        raise WeakPasswordError(_("it is mostly the username"))
    return password


def hash_password(password: str) -> str:
    """The Argon2id string for a password (salt and cost parameters included)."""
    with ARGON2_SLOTS:
        hashed: bytes = nacl.pwhash.argon2id.str(
            unicodedata.normalize("NFC", password).encode("utf-8"), OPSLIMIT, MEMLIMIT
        )
    return hashed.decode("ascii")


_DUMMY_HASH: str | None = None


def verify_password(account: Account | None, password: str) -> bool:
    """Whether ``password`` is the account's; an unknown account costs the same time."""
    global _DUMMY_HASH
    if account is None:
        _DUMMY_HASH = _DUMMY_HASH or hash_password(secrets.token_hex(16))
    stored = account.password_hash if account is not None else _DUMMY_HASH
    assert stored is not None
    candidate = unicodedata.normalize("NFC", password[:MAX_PASSWORD_CHARS]).encode("utf-8")
    try:
        with ARGON2_SLOTS:
            ok = bool(nacl.pwhash.verify(stored.encode("ascii"), candidate))
    except nacl.exceptions.InvalidkeyError:
        ok = False
    return ok and account is not None


def create(db: Session, username: str, password: str, *, is_admin: bool = False) -> Account:
    """A new account (no TOTP yet: it is enrolled at the first login)."""
    check_username(username)
    check_strength(password, username)
    if db.scalar(select(Account.id).where(Account.username == username)) is not None:
        raise AccountError(_("the username %(name)s is taken", name=username))
    account = Account(
        id=new_id(),
        username=username,
        password_hash=hash_password(password),
        is_admin=is_admin,
        disabled=False,
        totp_last_step=0,
        failed_logins=0,
        session_epoch=0,
    )
    db.add(account)
    db.commit()
    return account


def by_username(db: Session, username: str) -> Account | None:
    """The account with this username, if any."""
    return db.scalars(select(Account).where(Account.username == username[:64])).first()


def count_admins(db: Session) -> int:
    """How many enabled admin accounts exist."""
    query = select(func.count()).select_from(Account).where(Account.is_admin, ~Account.disabled)
    return int(db.scalar(query) or 0)


def _revoke_tokens(db: Session, account: Account) -> None:
    """Delete every API token of the account (in the caller's commit): whoever had the old
    password, the phone or the account may have made one, and it must not outlive the reset."""
    db.execute(delete(ApiToken).where(ApiToken.account_id == account.id))


def set_password(db: Session, account: Account, password: str) -> None:
    """Replace the password; every session and API token of the account ends."""
    check_strength(password, account.username)
    account.password_hash = hash_password(password)
    account.session_epoch += 1
    _revoke_tokens(db, account)
    account.failed_logins = 0
    account.locked_until = None
    db.commit()


def reset_totp(db: Session, account: Account) -> None:
    """Forget the TOTP secret (and the API tokens): the account enrols again at its next
    login."""
    _revoke_tokens(db, account)
    account.totp_secret = None
    account.totp_pending = None
    account.totp_last_step = 0
    account.session_epoch += 1
    db.commit()


def end_sessions(db: Session, account: Account) -> None:
    """Log the account out everywhere: every copy of every session cookie stops working."""
    account.session_epoch += 1
    db.commit()


def set_disabled(db: Session, account: Account, disabled: bool) -> None:
    """Disable (every session ends and every API token is deleted, so enabling the account
    again brings none back) or enable an account."""
    if disabled:
        _revoke_tokens(db, account)
    account.disabled = disabled
    account.session_epoch += 1
    db.commit()


# -- TOTP ---------------------------------------------------------------------------------------


def begin_enrolment(db: Session, account: Account) -> str:
    """A new pending TOTP secret (kept until the first code proves the phone has it)."""
    account.totp_pending = pyotp.random_base32(32)
    db.commit()
    return account.totp_pending


def provisioning_uri(account: Account, secret: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP).provisioning_uri(
        name=account.username, issuer_name=ISSUER
    )


def qr_svg(uri: str) -> str:
    """The QR code as inline SVG, drawn on the server (no script, no outside image)."""
    svg: str = segno.make(uri, error="m").svg_inline(scale=4, title="TOTP QR code")
    return svg


def _matching_step(secret: str, code: str, at: float) -> int | None:
    """The time step (now, or one either side for clock drift) whose code is ``code``."""
    code = code.strip().replace(" ", "")
    if not (len(code) == TOTP_DIGITS and code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP)
    current = int(at) // TOTP_STEP
    found = None
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def use_code(
    db: Session, account: Account, secret: str, code: str, at: float | None = None
) -> bool:
    """Check a code and spend it: a code (its time step, or any earlier one) works once.

    The update is conditional on the last step, so two workers racing with one code cannot
    both win.
    """
    step = _matching_step(secret, code, time.time() if at is None else at)
    if step is None or step <= account.totp_last_step:
        return False
    result = db.execute(
        update(Account)
        .where(Account.id == account.id, Account.totp_last_step < step)
        .values(totp_last_step=step)
    )
    db.commit()
    db.refresh(account)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish_enrolment(db: Session, account: Account, code: str) -> bool:
    """Make the pending secret the account's once a first code from it checks out."""
    pending = account.totp_pending
    if pending is None or not use_code(db, account, pending, code):
        return False
    account.totp_secret, account.totp_pending = pending, None
    account.session_epoch += 1
    db.commit()
    return True


# -- Throttling ---------------------------------------------------------------------------------


def locked(account: Account) -> bool:
    """Whether the account is locked after too many failures."""
    return account.locked_until is not None and account.locked_until > now()


def record_failure(db: Session, account: Account) -> None:
    """Count a failed attempt in the database; lock the account after ``MAX_FAILURES``."""
    db.execute(
        update(Account)
        .where(Account.id == account.id)
        .values(failed_logins=Account.failed_logins + 1)
    )
    db.commit()
    db.refresh(account)
    if account.failed_logins >= MAX_FAILURES:
        account.locked_until = now() + datetime.timedelta(seconds=LOCK_SECONDS)
        account.failed_logins = 0
        db.commit()


def record_success(db: Session, account: Account) -> None:
    """A full login worked: the failure count starts again."""
    account.failed_logins = 0
    account.locked_until = None
    db.commit()


def check_password_step(db: Session, username: str, password: str) -> Account:
    """The first login step: the password of an enabled, unlocked account, or ``LoginError``."""
    account = by_username(db, username)
    ok = verify_password(account, password)
    if account is None or account.disabled:
        raise LoginError()
    if locked(account):
        raise LoginError()
    if not ok:
        record_failure(db, account)
        raise LoginError()
    return account


def check_code_step(db: Session, account: Account, code: str) -> None:
    """The second step: a fresh TOTP code (enrolled accounts only), or ``LoginError``."""
    if account.disabled or locked(account) or account.totp_secret is None:
        raise LoginError()
    if not use_code(db, account, account.totp_secret, code):
        record_failure(db, account)
        raise LoginError()
    record_success(db, account)


# -- API tokens ---------------------------------------------------------------------------------


def _token_hash(token: str) -> bytes:
    digest: bytes = nacl.hashlib.blake2b(
        token.encode("utf-8"), digest_size=32, person=b"tipline-api-tok"
    ).digest()
    return digest


def new_token(db: Session, account: Account, label: str) -> str:
    """A bearer token for the account; shown once, only its hash is stored."""
    token = "tl_" + secrets.token_urlsafe(TOKEN_BYTES)
    db.add(ApiToken(id=new_id(), account_id=account.id, token_hash=_token_hash(token), label=label))
    db.commit()
    return token


def account_for_token(db: Session, token: str) -> Account | None:
    """The enabled account a bearer token belongs to, if any."""
    if not token.startswith("tl_") or len(token) > 100:
        return None
    row = db.scalars(select(ApiToken).where(ApiToken.token_hash == _token_hash(token))).first()
    if row is None:
        return None
    account = db.get(Account, row.account_id)
    if account is None or account.disabled or account.totp_secret is None:
        return None
    return account


def tokens_of(db: Session, account: Account) -> list[ApiToken]:
    """The account's tokens (hashes and labels)."""
    query = select(ApiToken).where(ApiToken.account_id == account.id).order_by(ApiToken.created)
    return list(db.scalars(query).all())


def revoke_token(db: Session, account: Account, token_id: str) -> bool:
    """Delete one of the account's tokens."""
    row = db.get(ApiToken, token_id)
    if row is None or row.account_id != account.id:
        return False
    db.delete(row)
    db.commit()
    return True


def remove(db: Session, account: Account) -> None:
    """Delete an account with its API tokens and digest subscription (the audit log, which
    names accounts by username, keeps its entries)."""
    db.execute(delete(ApiToken).where(ApiToken.account_id == account.id))
    db.execute(delete(DigestSubscription).where(DigestSubscription.account_id == account.id))
    db.delete(account)
    db.commit()
