"""The daily digest, end to end: a real SMTP server on 127.0.0.1 takes what
``digest.run`` and ``tipline-server digest`` send, and the real ``age`` and ``gpg`` decrypt it
with the journalist's secret key. Same size on a day with tips and a day without; once a day
even when run twice (or twice at once); through a SOCKS5 relay; over STARTTLS and TLS with a
login whose password appears in no log or message.
"""

from __future__ import annotations

import datetime
import email
import email.policy
import logging
import re
import secrets
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from tipline.server import db, digest, mailer
from tipline.server.models import (
    Account,
    DigestSubscription,
    Download,
    Reply,
    Source,
    Submission,
)

from .conftest import CliResult
from .mail_fixtures import (
    RELAY_NAME,
    AgeIdentity,
    GpgIdentity,
    Received,
    age_identity,
    gpg_identity,
    smtp_server,
    socks_relay,
    test_ca,
)

__all__ = ["age_identity", "gpg_identity", "test_ca"]  # fixtures, used by name below

TODAY = datetime.datetime.now(datetime.UTC).date()
ARMOR = re.compile(rb"-----BEGIN (AGE ENCRYPTED FILE|PGP MESSAGE)-----.*?-----END \1-----\n", re.S)


def mail_config(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "DIGEST_ENABLED": True,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": port,
        "SMTP_SECURITY": "none",
        "SMTP_FROM": "digest@newsroom.example",
        **extra,
    }


def journalist(app: Flask, name: str = "alice") -> Account:
    from tipline.server import accounts

    with app.app_context():
        return accounts.create(db.session(), name, secrets.token_urlsafe(20), is_admin=False)


def subscribe(app: Flask, who: Account, address: str, key: str) -> None:
    with app.app_context():
        digest.subscribe(db.session(), db.session().get(Account, who.id), address, key)  # type: ignore[arg-type]


def add_source(
    session: Session,
    submissions: int,
    downloaded: int = 0,
    replied: bool = False,
    reader: Account | None = None,
) -> None:
    """A source with ``submissions``, the first ``downloaded`` of them taken to the desk by
    ``reader`` (the newsroom's flag is set too, as an export sets it)."""
    source = Source(
        designation=secrets.token_hex(4),
        token_hash=secrets.token_bytes(32),
        reply_public_key=secrets.token_bytes(32),
    )
    session.add(source)
    session.flush()
    for i in range(submissions):
        item = Submission(source_id=source.id, size=1000, downloaded=i < downloaded)
        session.add(item)
        session.flush()
        if i < downloaded:
            assert reader is not None
            session.add(Download(account_id=reader.id, submission_id=item.id))
    if replied:
        session.add(Reply(source_id=source.id, size=1000))
    session.commit()


def run(app: Flask, day: datetime.date = TODAY) -> digest.RunResult:
    with app.app_context():
        relay = mailer.Relay.from_config(app.config)
        return digest.run(db.session(), relay, app.config["DIGEST_SUBJECT"], "Newsroom", day)


def armored(mail: Received) -> bytes:
    found = ARMOR.search(mail.content.replace(b"\r\n", b"\n"))
    assert found, mail.content[:500]
    return found.group(0)


def counts_in(text: bytes) -> tuple[int, int]:
    tips = re.search(rb"New tips waiting: +(\d+)\n", text)
    replies = re.search(rb"New replies waiting: +(\d+)\n", text)
    assert tips and replies, text
    return int(tips.group(1)), int(replies.group(1))


# --- size and content ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["age", "openpgp"])
def test_same_size_on_a_day_with_tips_and_a_day_without(
    app_factory: Callable[..., Flask],
    kind: str,
    age_identity: AgeIdentity,
    gpg_identity: GpgIdentity,
) -> None:
    ident: AgeIdentity | GpgIdentity = age_identity if kind == "age" else gpg_identity
    key = age_identity.recipient if kind == "age" else gpg_identity.public_key
    with smtp_server() as smtp:
        app = app_factory(**mail_config(smtp.port))
        who = journalist(app)
        subscribe(app, who, "alice@example.org", key)
        quiet = run(app, TODAY)  # nothing arrived
        with app.app_context():
            add_source(db.session(), 3)  # a new source: 3 tips
            add_source(db.session(), 2, downloaded=1, reader=who)  # read before: 1 reply
            add_source(db.session(), 1, replied=True)  # was answered: 1 reply
        busy = run(app, TODAY + datetime.timedelta(days=1))
    assert (quiet.sent, busy.sent) == (1, 1) and not quiet.failed and not busy.failed
    first, second = smtp.handler.received
    # The positive control: what the two say differs...
    plain = [ident.decrypt(armored(m)) for m in (first, second)]
    assert counts_in(plain[0]) == (0, 0) and counts_in(plain[1]) == (3, 2)
    assert len(plain[0]) == len(plain[1]) == digest.PLAINTEXT_SIZE
    # ...while nothing anyone carrying the mail sees does: sizes, subject, sender, recipient.
    assert len(armored(first)) == len(armored(second))
    assert len(first.content) == len(second.content)
    for mail in (first, second):
        parsed = email.message_from_bytes(mail.content, policy=email.policy.SMTP)
        assert parsed["Subject"] == "Daily digest" and parsed["To"] == "alice@example.org"
        assert mail.rcpt_tos == ["alice@example.org"]
        assert mail.mail_from == "digest@newsroom.example"
        # Nothing names this machine: not the greeting, not the Message-ID.
        assert mail.greeting == "[127.0.0.1]"
        headers = mail.content.split(b"\r\n\r\n", 1)[0]
        assert socket.gethostname().encode() not in headers
        assert re.fullmatch(r"<[0-9a-f]{32}@newsroom\.example>", parsed["Message-ID"])
        assert b"tip" not in headers.lower()
        assert b"New tips" not in mail.content  # only inside the encryption


def test_each_journalist_counts_what_they_have_not_taken(
    app_factory: Callable[..., Flask], age_identity: AgeIdentity
) -> None:
    """ "New" is per account, as on the sources page: what Bob took to his desk still waits
    for Alice, and Bob's own digest no longer counts it."""
    with smtp_server() as smtp:
        app = app_factory(**mail_config(smtp.port))
        alice, bob = journalist(app, "alice"), journalist(app, "bob")
        subscribe(app, alice, "alice@example.org", age_identity.recipient)
        subscribe(app, bob, "bob@example.org", age_identity.recipient)
        with app.app_context():
            add_source(db.session(), 3, downloaded=3, reader=bob)  # Bob read it all
            add_source(db.session(), 2, downloaded=1, reader=bob)  # one follow-up since
        result = run(app)
    assert result.sent == 2 and not result.failed
    got = {
        m.rcpt_tos[0]: counts_in(age_identity.decrypt(armored(m))) for m in smtp.handler.received
    }
    # Bob: only the follow-up, a reply from a source he has read. Alice: all five, as tips (she
    # has read none of these sources and nobody answered them).
    assert got == {"bob@example.org": (0, 1), "alice@example.org": (5, 0)}


def test_a_disabled_account_gets_nothing(
    app_factory: Callable[..., Flask], age_identity: AgeIdentity
) -> None:
    from tipline.server import accounts

    with smtp_server() as smtp:
        app = app_factory(**mail_config(smtp.port))
        who = journalist(app)
        subscribe(app, who, "alice@example.org", age_identity.recipient)
        with app.app_context():
            accounts.set_disabled(db.session(), db.session().get(Account, who.id), True)  # type: ignore[arg-type]
        assert run(app).sent == 0
    assert smtp.handler.received == []


# --- once a day -----------------------------------------------------------------------------


def test_a_second_run_the_same_day_sends_nothing_twice(
    app_factory: Callable[..., Flask], age_identity: AgeIdentity
) -> None:
    with smtp_server() as smtp:
        app = app_factory(**mail_config(smtp.port))
        for name in ("alice", "bob"):
            subscribe(app, journalist(app, name), f"{name}@example.org", age_identity.recipient)
        first, second = run(app), run(app)
        tomorrow = run(app, TODAY + datetime.timedelta(days=1))
    assert (first.sent, first.already) == (2, 0)
    assert (second.sent, second.already) == (0, 2)
    assert (tomorrow.sent, tomorrow.already) == (2, 0)
    assert len(smtp.handler.received) == 4


def test_two_runs_at_once_send_each_digest_once(
    app_factory: Callable[..., Flask], age_identity: AgeIdentity
) -> None:
    """Two runs racing (a timer and a hand-started one): the conditional claim lets one win."""
    with smtp_server() as smtp:
        app = app_factory(**mail_config(smtp.port))
        for name in ("alice", "bob", "carol"):
            subscribe(app, journalist(app, name), f"{name}@example.org", age_identity.recipient)
        start = threading.Barrier(2)
        results: list[digest.RunResult] = []

        def one() -> None:
            with app.app_context():
                relay = mailer.Relay.from_config(app.config)
                start.wait()
                results.append(digest.run(db.session(), relay, "Daily digest", "", TODAY))

        threads = [threading.Thread(target=one) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert sum(r.sent for r in results) == 3
    assert sum(r.sent + r.already for r in results) == 6
    assert sorted(m.rcpt_tos[0] for m in smtp.handler.received) == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
    ]


def test_a_refused_send_gives_the_day_back(
    app_factory: Callable[..., Flask], age_identity: AgeIdentity
) -> None:
    with smtp_server() as smtp:
        app = app_factory(**mail_config(smtp.port))
        who = journalist(app)
        subscribe(app, who, "alice@example.org", age_identity.recipient)
        smtp.handler.refuse = True
        refused = run(app)
        assert refused.sent == 0 and refused.failed == [
            "alice: the mail relay did not take the message: "
            "127.0.0.1 refused the recipient's address"
        ]
        with app.app_context():
            assert db.session().get(DigestSubscription, who.id).last_sent is None  # type: ignore[union-attr]
        smtp.handler.refuse = False
        assert run(app).sent == 1  # a later run the same day may try again
    assert len(smtp.handler.received) == 1


def test_an_unreachable_relay_claims_nothing(
    app_factory: Callable[..., Flask], age_identity: AgeIdentity
) -> None:
    from .mail_fixtures import free_port

    app = app_factory(**mail_config(free_port()))  # nobody listens there
    who = journalist(app)
    subscribe(app, who, "alice@example.org", age_identity.recipient)
    with pytest.raises(mailer.MailError, match="could not be reached"):
        run(app)
    with app.app_context():
        assert db.session().get(DigestSubscription, who.id).last_sent is None  # type: ignore[union-attr]


# --- through a SOCKS5 proxy (Tor) ----------------------------------------------------------


@pytest.mark.parametrize("where", ["tcp", "unix"])
def test_through_a_socks5_proxy(
    app_factory: Callable[..., Flask],
    age_identity: AgeIdentity,
    test_ca: Any,
    tmp_path: Path,
    where: str,
) -> None:
    """STARTTLS to the relay by its name, through the proxy (TCP, or a Unix socket as Tor's
    /run/tor/socks): the name goes to the proxy unresolved, and resolves nowhere else."""
    sock = tmp_path / "socks" if where == "unix" else None
    with smtp_server("starttls", test_ca) as smtp, socks_relay(sock) as proxy:
        config = mail_config(
            smtp.port,
            SMTP_HOST=RELAY_NAME,
            SMTP_SECURITY="starttls",
            SMTP_CA_FILE=str(smtp.ca_file),
        )
        app = app_factory(**config)
        who = journalist(app)
        subscribe(app, who, "alice@example.org", age_identity.recipient)
        # The control: without the proxy this machine cannot even find the relay.
        with pytest.raises(mailer.MailError, match="could not be reached"):
            run(app)
        assert proxy.connects == [] and smtp.handler.received == []
        app.config["SMTP_PROXY"] = proxy.url
        assert run(app).sent == 1
        assert proxy.connects == [(3, RELAY_NAME, smtp.port)]  # a name (type 3), not an address
    assert counts_in(age_identity.decrypt(armored(smtp.handler.received[0]))) == (0, 0)


# --- STARTTLS, TLS and the login ------------------------------------------------------------


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_and_login_keep_the_password_out_of_every_log(
    app_factory: Callable[..., Flask],
    age_identity: AgeIdentity,
    test_ca: Any,
    security: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    password = f"relay-password-{secrets.token_hex(8)}"
    caplog.set_level(logging.DEBUG)
    with smtp_server(security, test_ca, ("digest-user", password)) as smtp:
        app = app_factory(
            **mail_config(
                smtp.port,
                SMTP_SECURITY=security,
                SMTP_USERNAME="digest-user",
                SMTP_PASSWORD=password,
                SMTP_CA_FILE=str(smtp.ca_file),
            )
        )
        who = journalist(app)
        subscribe(app, who, "alice@example.org", age_identity.recipient)
        assert run(app).sent == 1
        # A wrong password: refused, in words that do not repeat it.
        app.config["SMTP_PASSWORD"] = wrong = f"wrong-{secrets.token_hex(8)}"
        with pytest.raises(mailer.MailError) as refused:
            run(app, TODAY + datetime.timedelta(days=1))
        assert "refused the SMTP username or password" in refused.value.message
        # A relay whose certificate is not from the configured CA: TLS fails, nothing sent.
        app.config.update(SMTP_PASSWORD=password, SMTP_CA_FILE=None)
        with pytest.raises(mailer.MailError, match=re.escape("TLS with 127.0.0.1 failed")):
            run(app, TODAY + datetime.timedelta(days=1))
    # The positive control: the relay did receive both passwords...
    assert (b"digest-user", password.encode()) in smtp.handler.logins
    assert (b"digest-user", wrong.encode()) in smtp.handler.logins
    # ...and no log record, output or message ever held either.
    out = capsys.readouterr()
    seen = "\n".join(r.getMessage() for r in caplog.records) + out.out + out.err
    seen += str(refused.value) + repr(mailer.Relay.from_config(app.config))
    assert password not in seen and wrong not in seen
    assert len(smtp.handler.received) == 1


# --- the command ----------------------------------------------------------------------------


def test_the_command_sends_once_a_day_and_says_so(
    run_cli: Callable[..., CliResult],
    age_identity: AgeIdentity,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    off = run_cli("digest")
    assert off.returncode == 0
    assert (
        off.stderr == "tipline-server: the daily digest is off (DIGEST_ENABLED); nothing was sent\n"
    )
    with smtp_server() as smtp:
        for key, value in mail_config(smtp.port).items():
            monkeypatch.setenv(
                f"TIPLINE_{key}", str(value).lower() if value is True else str(value)
            )
        assert run_cli("db", "upgrade").returncode == 0
        assert run_cli("add-journalist", "alice").returncode == 0
        from tipline.server import create_app

        app = create_app()
        try:
            with app.app_context():
                who = db.session().query(Account).filter_by(username="alice").one()
            subscribe(app, who, "alice@example.org", age_identity.recipient)
        finally:
            db.engine_of(app).dispose()
        checked = run_cli("digest", "--check")
        assert checked.returncode == 0, checked.stderr
        assert (
            f"127.0.0.1:{smtp.port} (none) took the connection; nothing was sent" in checked.stderr
        )
        assert smtp.handler.received == []
        first = run_cli("digest")
        second = run_cli("digest")
    assert first.returncode == 0, first.stderr
    assert (
        first.stderr
        == "tipline-server: daily digest sent to 1 journalists (0 had today's already)\n"
    )
    assert (
        second.stderr
        == "tipline-server: daily digest sent to 0 journalists (1 had today's already)\n"
    )
    assert len(smtp.handler.received) == 1


def test_the_command_fails_when_the_relay_is_down(
    run_cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-zero exit, so systemd's Restart=on-failure tries again later that day."""
    from .mail_fixtures import free_port

    for key, value in mail_config(free_port()).items():
        monkeypatch.setenv(f"TIPLINE_{key}", str(value).lower() if value is True else str(value))
    assert run_cli("db", "upgrade").returncode == 0
    checked = run_cli("digest", "--check")
    assert checked.returncode == 1
    assert checked.stderr.startswith("tipline-server: the mail relay did not take the message: ")
    assert "could not be reached" in checked.stderr and "Traceback" not in checked.stderr


def test_smtp_settings_are_checked_when_the_digest_is_on(tmp_path: Path) -> None:
    from tipline.server.config import ConfigError, load_config

    base = {"DATA_DIR": str(tmp_path), "ORG_PUBLIC_KEY": "A" * 43 + "=", **mail_config(25)}
    assert load_config(base)["SMTP_HOST"] == "127.0.0.1"
    for change, message in [
        ({"SMTP_HOST": None}, "SMTP_HOST must be set"),
        ({"SMTP_FROM": "Alice <a@example.org>"}, "SMTP_FROM must be one plain address"),
        ({"SMTP_FROM": "a@example.org\r\nBcc: x@example.org"}, "SMTP_FROM must be one plain"),
        ({"SMTP_HOST": "relay.example.org"}, "may be none only for a relay on this machine"),
        ({"SMTP_SECURITY": "ssl"}, "SMTP_SECURITY must be starttls, tls or none"),
        ({"SMTP_PORT": 0}, "SMTP_PORT must be a port number"),
        ({"SMTP_USERNAME": "u"}, "go together"),
        (
            {"SMTP_PROXY": "http://127.0.0.1:8080", "SMTP_SECURITY": "tls"},
            "SMTP_PROXY must be socks5://",
        ),
        ({"DIGEST_SUBJECT": "x\ny"}, "DIGEST_SUBJECT must be 1 to 100 printable"),
        ({"SMTP_CA_FILE": str(tmp_path / "none.pem")}, "SMTP_CA_FILE must name a file"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config({**base, **change})
    # Off (the default): nothing is asked for.
    assert (
        load_config({"DATA_DIR": str(tmp_path), "ORG_PUBLIC_KEY": "A" * 43 + "="})["DIGEST_ENABLED"]
        is False
    )


def test_smtp_connection_failures_reach_the_admin_as_one_line() -> None:
    relay = mailer.Relay("127.0.0.1", 9, "none", "a@example.org", proxy="unix:/nonexistent/socks")
    with (
        pytest.raises(mailer.MailError, match="the proxy unix:/nonexistent/socks did not connect"),
        mailer.session(relay),
    ):
        pass


def test_the_admin_guide_shows_a_configuration_that_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TOML in docs/ADMIN.md "Daily digest" passes every check, and the commands that
    section shows are the ones the tests above run."""
    from tipline.server import ROOT
    from tipline.server.config import load_config

    section = (ROOT / "docs" / "ADMIN.md").read_text().split("## Daily digest\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    found = re.search(r"```toml\n(.*?)```", section, re.S)
    assert found
    config_file = tmp_path / "tipline.toml"
    config_file.write_text(
        found.group(1) + f'DATA_DIR = "{tmp_path}"\nORG_PUBLIC_KEY = "{"A" * 43}="\n'
    )
    for key in ("DATA_DIR", "ORG_PUBLIC_KEY", "DATABASE_URL"):
        monkeypatch.delenv(f"TIPLINE_{key}", raising=False)
    monkeypatch.setenv("TIPLINE_CONFIG_FILE", str(config_file))
    config = load_config()
    assert config["DIGEST_ENABLED"] is True and config["SMTP_SECURITY"] == "tls"
    assert config["SMTP_PROXY"] == "unix:/run/tor/socks"
    relay = mailer.Relay.from_config(config)
    assert "password" not in repr(relay) and relay.describe() == (
        "smtp.example.org:465 (tls) through unix:/run/tor/socks"
    )
    shown = set(re.findall(r"tipline-server digest[a-z -]*", section))
    assert shown == {"tipline-server digest --check", "tipline-server digest"}
