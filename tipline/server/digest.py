"""The daily digest: once a day, at one fixed time, whether or not anything arrived, each
journalist who asked for it gets one mail of one fixed size, encrypted to their own key, that
says only how many new tips and new replies wait on the server.

Nothing about it may tell the mail relay (or anyone watching the mail) when a tip arrived:
- *when*: ``tipline-server digest`` is run by a systemd timer at a fixed time, and sends to
  every subscriber every day;
- *how big*: the plaintext is padded to ``PLAINTEXT_SIZE`` before it is encrypted (and never
  compressed), and the armored ciphertext is padded to the size fixed for that key when it was
  set (``body_size``), so the mail is the same size every day;
- *what*: the subject is fixed, the counts are inside the encryption.

A run sends each subscriber at most one digest a day: before sending, it *claims* the day with
one conditional update (``last_sent`` from an earlier day, or none, to today), which only one
run can win, even two at once; a failed send gives the claim back so a later run that day may
try again. See docs/THREAT-MODEL.md "The daily digest".
"""

from __future__ import annotations

import datetime
import email.policy
import secrets
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from ..crypto.errors import TiplineError
from . import digest_keys, mailer
from .config import EMAIL
from .digest_keys import DigestKey
from .i18n import _
from .models import Account, DigestSubscription, Download, Reply, Submission

PLAINTEXT_SIZE = 1024
# Room over the ciphertext's size as measured when the key was set: the encrypted session key
# of an RSA OpenPGP key can come out a byte or two shorter at random (a leading zero), never
# longer; age and Curve25519 OpenPGP keys do not vary at all.
BODY_SLACK = 64
PAD_LINE = 64


class DigestError(TiplineError):
    """the daily digest cannot be set up"""


@dataclass(frozen=True)
class Counts:
    """What waits for one journalist: submissions that account has not downloaded yet, from
    sources it has not read before (tips) and from sources it has read or the newsroom has
    answered (replies). "New" is per account, as on the sources page's "new for me": what a
    colleague took to their desk still waits for this one."""

    tips: int
    replies: int


@dataclass
class RunResult:
    """What one run did, for the command's one line (no counts of tips: they stay private)."""

    sent: int = 0
    already: int = 0
    failed: list[str] = field(default_factory=list)


_new = aliased(Submission, name="new")
_earlier = aliased(Submission, name="earlier")


def counts(session: Session, account_id: str) -> Counts:
    """Count what waits for ``account_id`` (the same query whatever the numbers, so it takes
    the same time)."""

    def downloaded(submission: type[Submission]) -> Any:
        return exists().where(
            Download.submission_id == submission.id, Download.account_id == account_id
        )

    read_before = select(_earlier.id).where(
        _earlier.source_id == _new.source_id, downloaded(_earlier)
    )
    answered = select(Reply.id).where(Reply.source_id == _new.source_id)
    waiting = select(func.count()).select_from(_new).where(~downloaded(_new))
    total = session.scalar(waiting) or 0
    replies = session.scalar(waiting.where(or_(exists(read_before), exists(answered)))) or 0
    return Counts(tips=total - replies, replies=replies)


def plaintext(day: datetime.date, org_name: str, waiting: Counts) -> bytes:
    """The digest's text, padded with spaces to exactly ``PLAINTEXT_SIZE`` bytes."""
    text = (
        f"{org_name or 'Tipline'}: daily digest for {day.isoformat()} (UTC)\n"
        "\n"
        f"New tips waiting:    {waiting.tips}\n"
        f"New replies waiting: {waiting.replies}\n"
        "\n"
        "They wait on the server, not yet downloaded: log in to the journalist interface\n"
        "to take them to the desk.\n"
        "\n"
        "This message comes every day at the same time and is always the same size,\n"
        "whether or not anything arrived.\n"
    ).encode()
    if len(text) > PLAINTEXT_SIZE:  # an org name is at most 100 characters: never here
        raise DigestError("the digest text is too long")
    return text + b" " * (PLAINTEXT_SIZE - len(text))


def nominal_body_size(key: DigestKey) -> int:
    """The size every digest body to ``key`` is padded to: what it encrypts to, plus slack."""
    return len(digest_keys.encrypt(key, b" " * PLAINTEXT_SIZE)) + BODY_SLACK


def body(key: DigestKey, size: int, text: bytes) -> str:
    """``text`` encrypted to ``key`` and armored, then padded with lines of spaces (which
    ``age -d`` and OpenPGP readers skip) to exactly ``size`` characters."""
    armored = digest_keys.encrypt(key, text).decode("ascii")
    if not armored.endswith("\n"):
        armored += "\n"
    missing = size - len(armored)
    if missing < 0:
        raise DigestError("the encrypted digest is larger than its fixed size: set the key again")
    lines = [" " * (PAD_LINE - 1) + "\n"] * (missing // PAD_LINE)
    if missing % PAD_LINE:
        lines.append(" " * (missing % PAD_LINE - 1) + "\n")
    return armored + "".join(lines)


def message(relay: mailer.Relay, subject: str, to: str, text: str) -> EmailMessage:
    """The mail: fixed headers (Date and a random Message-ID of fixed length) and the body."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = relay.sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    # Python's default Message-ID names this machine; this one names only the sender's domain.
    msg["Message-ID"] = f"<{secrets.token_hex(16)}@{relay.sender.rsplit('@', 1)[1]}>"
    msg.set_content(text, charset="us-ascii", cte="7bit")
    return msg


def key_of(sub: DigestSubscription) -> DigestKey:
    """The stored key as ``digest_keys`` uses it."""
    return DigestKey(sub.key_kind, sub.public_key, sub.fingerprint)


def subscription_of(session: Session, account: Account) -> DigestSubscription | None:
    """The account's digest, if it has one."""
    return session.get(DigestSubscription, account.id)


def subscribe(session: Session, account: Account, address: str, key_text: str) -> DigestKey:
    """Switch the digest on (or change it): the address is checked, the key is checked by
    encrypting to it with the real tool, and its fixed body size is measured."""
    address = address.strip()
    if len(address) > 254 or not EMAIL.fullmatch(address):
        raise DigestError(_("give one plain e-mail address, like name@example.org"))
    key = digest_keys.check(key_text)
    size = nominal_body_size(key)
    found = subscription_of(session, account)
    if found is None:
        found = DigestSubscription(account_id=account.id)
        session.add(found)
    found.email, found.key_kind, found.public_key = address, key.kind, key.text
    found.fingerprint, found.body_size = key.fingerprint, size
    session.commit()
    return key


def unsubscribe(session: Session, account: Account) -> bool:
    """Switch the digest off; False if it was not on."""
    found = subscription_of(session, account)
    if found is None:
        return False
    session.delete(found)
    session.commit()
    return True


def overview(session: Session) -> list[tuple[str, DigestSubscription]]:
    """Who has the digest on, for the admin page: usernames and their subscriptions."""
    rows = session.execute(
        select(Account.username, DigestSubscription)
        .join(DigestSubscription, DigestSubscription.account_id == Account.id)
        .order_by(Account.username)
    )
    return [(name, sub) for name, sub in rows]


def _claim(session: Session, account_id: str, day: datetime.date) -> bool:
    """Mark today's digest as sent before sending it; only one run wins the update."""
    claimed = session.execute(
        update(DigestSubscription)
        .where(
            DigestSubscription.account_id == account_id,
            or_(DigestSubscription.last_sent.is_(None), DigestSubscription.last_sent < day),
        )
        .values(last_sent=day)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(getattr(claimed, "rowcount", 0) == 1)


def _unclaim(
    session: Session, account_id: str, day: datetime.date, before: datetime.date | None
) -> None:
    session.execute(
        update(DigestSubscription)
        .where(DigestSubscription.account_id == account_id, DigestSubscription.last_sent == day)
        .values(last_sent=before)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def run(
    session: Session,
    relay: mailer.Relay,
    subject: str,
    org_name: str,
    day: datetime.date,
) -> RunResult:
    """Send ``day``'s digest to every subscriber who has not had it yet (active accounts)."""
    result = RunResult()
    due = session.execute(
        select(Account.username, DigestSubscription)
        .join(DigestSubscription, DigestSubscription.account_id == Account.id)
        .where(Account.disabled.is_(False))
        .order_by(DigestSubscription.account_id)
    ).all()
    pending: list[tuple[str, str, datetime.date | None, EmailMessage]] = []
    for username, sub in due:
        if sub.last_sent is not None and sub.last_sent >= day:
            result.already += 1
            continue
        text = plaintext(day, org_name, counts(session, sub.account_id))
        try:
            mail = message(relay, subject, sub.email, body(key_of(sub), sub.body_size, text))
        except TiplineError as exc:
            result.failed.append(f"{username}: {exc.message}")
            continue
        pending.append((username, sub.account_id, sub.last_sent, mail))
    if not pending:
        return result
    with mailer.session(relay) as client:
        for username, account_id, before, mail in pending:
            if not _claim(session, account_id, day):
                result.already += 1  # another run sent it meanwhile
                continue
            try:
                mailer.send(client, relay, mail)
            except mailer.MailError as exc:
                _unclaim(session, account_id, day, before)
                result.failed.append(f"{username}: {exc.message}")
            else:
                result.sent += 1
    return result
