"""What the daily digest's tests run for real: an SMTP server (aiosmtpd) on 127.0.0.1, a test
CA for its STARTTLS and TLS (trustme), a small SOCKS5 relay that records every CONNECT, and
the journalists' secret keys for the real ``age`` and ``gpg`` to decrypt what arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

RELAY_NAME = "smtp.tipline.test"  # resolvable only by the test's SOCKS relay


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: apt-get install {'age' if 'age' in name else 'gpg'}")
    return found


@dataclass
class Received:
    """One message as the SMTP server took it."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    greeting: str | None
    at: float


@dataclass
class Handler:
    """Keeps what arrives; ``refuse`` makes RCPT fail (a relay that says no)."""

    received: list[Received] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    refuse: bool = False

    async def handle_RCPT(  # noqa: N802  # aiosmtpd's hook names
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        self.received.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                content,
                session.host_name,
                time.time(),
            )
        )
        return "250 Message accepted"


@dataclass
class Smtp:
    """A running SMTP server and how to reach it."""

    port: int
    handler: Handler
    ca_file: Path | None = None


class _Auth:
    def __init__(self, handler: Handler, username: str, password: str) -> None:
        self.handler, self.username, self.password = handler, username, password

    def __call__(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.handler.logins.append((data.login, data.password))
        ok = data.login == self.username.encode() and data.password == self.password.encode()
        return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


@contextlib.contextmanager
def smtp_server(
    security: str = "none",
    ca: tuple[trustme.CA, Path] | None = None,
    credentials: tuple[str, str] | None = None,
) -> Iterator[Smtp]:
    """aiosmtpd on 127.0.0.1 and a free port: plain, STARTTLS (required) or implicit TLS."""
    handler = Handler()
    kwargs: dict[str, Any] = {}
    context = None
    if security != "none":
        assert ca is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca[0].issue_cert(RELAY_NAME, "127.0.0.1").configure_cert(context)
    if security == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    if security == "tls":
        kwargs.update(ssl_context=context)
    if credentials is not None:
        # aiosmtpd counts only STARTTLS as TLS; on an implicit TLS port all of it is TLS.
        kwargs.update(
            authenticator=_Auth(handler, *credentials), auth_require_tls=security != "tls"
        )
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield Smtp(port, handler, ca[1] if ca else None)
    finally:
        controller.stop()


# --- a SOCKS5 relay (RFC 1928, CONNECT without authentication) ------------------------------


@dataclass
class Socks:
    """A SOCKS5 relay; ``connects`` records (address type, host, port) of every CONNECT."""

    url: str
    connects: list[tuple[int, str, int]] = field(default_factory=list)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def _socks_handler(record: Socks) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            version, count = await reader.readexactly(2)
            methods = await reader.readexactly(count)
            if version != 5 or 0 not in methods:
                writer.write(b"\x05\xff")
                return
            writer.write(b"\x05\x00")
            _ver, command, _rsv, kind = await reader.readexactly(4)
            if command != 1:  # CONNECT only
                writer.write(b"\x05\x07\x00\x01" + bytes(6))
                return
            if kind == 1:
                host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
            elif kind == 3:
                host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            else:
                writer.write(b"\x05\x08\x00\x01" + bytes(6))
                return
            (port,) = struct.unpack("!H", await reader.readexactly(2))
            record.connects.append((kind, host, port))
            # The relay's name is known here only (a stand-in for Tor resolving it).
            target = "127.0.0.1" if host == RELAY_NAME else host
            try:
                up_reader, up_writer = await asyncio.open_connection(target, port)
            except OSError:
                writer.write(b"\x05\x05\x00\x01" + bytes(6))
                return
            writer.write(b"\x05\x00\x00\x01" + bytes(6))
            await writer.drain()
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle


@contextlib.contextmanager
def socks_relay(unix_path: Path | None = None) -> Iterator[Socks]:
    """The relay on a free loopback port, or on a Unix socket (as Tor's /run/tor/socks)."""
    loop = asyncio.new_event_loop()
    port = free_port()
    record = Socks(f"unix:{unix_path}" if unix_path else f"socks5://127.0.0.1:{port}")
    handle = _socks_handler(record)
    if unix_path is not None:
        server = loop.run_until_complete(asyncio.start_unix_server(handle, path=str(unix_path)))
    else:
        server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:

        async def close() -> None:
            server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()
            await asyncio.sleep(0.05)  # let the closed transports go

        asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


# --- the journalists' keys ------------------------------------------------------------------


@dataclass
class AgeIdentity:
    key_file: Path
    recipient: str

    def decrypt(self, armored: bytes) -> bytes:
        return subprocess.run(
            [tool("age"), "-d", "-i", str(self.key_file)],
            input=armored,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout


@dataclass
class GpgIdentity:
    home: Path
    public_key: str
    fingerprint: str

    def gpg(self, *args: str, data: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [tool("gpg"), "--batch", "--homedir", str(self.home), *args],
            input=data,
            capture_output=True,
            timeout=60,
        )

    def decrypt(self, armored: bytes) -> bytes:
        done = self.gpg("--decrypt", data=armored)
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture
def age_identity(tmp_path: Path) -> AgeIdentity:
    key = tmp_path / "age-key.txt"
    subprocess.run([tool("age-keygen"), "-o", str(key)], capture_output=True, check=True)
    recipient = subprocess.run(
        [tool("age-keygen"), "-y", str(key)], capture_output=True, check=True, text=True
    ).stdout.strip()
    return AgeIdentity(key, recipient)


def gpg_key(
    home: Path, uid: str, algo: str = "future-default", usage: str = "default", when: str = ""
) -> GpgIdentity:
    """A new OpenPGP key in its own home folder (``when``: a faked time to make it in)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    ident = GpgIdentity(home, "", "")
    faked = ("--faked-system-time", when) if when else ()
    done = ident.gpg(*faked, "--passphrase", "", "--quick-gen-key", uid, algo, usage, "1y")
    assert done.returncode == 0, done.stderr
    listing = ident.gpg("--with-colons", "--list-keys").stdout.decode()
    ident.fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
    )
    ident.public_key = ident.gpg("--armor", "--export").stdout.decode()
    return ident


@pytest.fixture(scope="session")
def gpg_identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpgIdentity]:
    """A Curve25519 OpenPGP key (what gpg makes by default); its agent is stopped at the end."""
    home = tmp_path_factory.mktemp("gpg") / "home"
    ident = gpg_key(home, "Test Journalist <journalist@example.org>")
    try:
        yield ident
    finally:
        subprocess.run([tool("gpgconf"), "--homedir", str(home), "--kill", "all"], check=False)
