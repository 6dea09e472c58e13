"""The SMTP relay the admin configures (``SMTP_*``), reached directly or through a SOCKS5 proxy
(Tor: ``socks5://127.0.0.1:9050``, or its Unix socket ``unix:/run/tor/socks``).

Nothing here logs, and no error names the password. The greeting names no host
(``[127.0.0.1]``, not this machine's name), and through a proxy the relay's name is resolved
by the proxy (Tor), never by this machine's DNS.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType
from python_socks.sync import Proxy

from ..crypto.errors import TiplineError

GREETING_NAME = "[127.0.0.1]"
TIMEOUT_SECONDS = 60
SECURITY = ("starttls", "tls", "none")


class MailError(TiplineError):
    """the mail relay did not take the message"""


@dataclass(frozen=True)
class Relay:
    """Where and how to hand mail over. ``repr`` leaves the password out."""

    host: str
    port: int
    security: str  # one of SECURITY
    sender: str
    username: str | None = None
    password: str | None = None
    proxy: str | None = None  # socks5://HOST:PORT or unix:PATH
    ca_file: str | None = None

    def __repr__(self) -> str:
        return f"Relay({self.describe()})"

    def describe(self) -> str:
        """What an admin may see: host, port, security and proxy (never the credentials)."""
        via = f" through {self.proxy}" if self.proxy else ""
        return f"{self.host}:{self.port} ({self.security}){via}"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Relay:
        """The relay the (already checked) configuration names."""
        return cls(
            host=str(config["SMTP_HOST"]),
            port=int(config["SMTP_PORT"]),
            security=str(config["SMTP_SECURITY"]),
            sender=str(config["SMTP_FROM"]),
            username=config["SMTP_USERNAME"],
            password=config["SMTP_PASSWORD"],
            proxy=config["SMTP_PROXY"],
            ca_file=config["SMTP_CA_FILE"],
        )


class _UnixSocks(Proxy):
    """Reaches the SOCKS proxy itself through a Unix socket, as python-socks's ``forward``."""

    def __init__(self, path: str) -> None:
        super().__init__(ProxyType.SOCKS5, "localhost", 0)
        self.path = path

    def connect(
        self, dest_host: str, dest_port: int, timeout: float | None = None, **kwargs: Any
    ) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise ProxyConnectionError(exc.errno, f"cannot connect to {self.path}") from None
        return sock


def proxy_for(url: str) -> Proxy:
    """A SOCKS5 client for ``socks5://HOST:PORT`` or ``unix:PATH``; the relay's name is sent
    to the proxy as a name (``rdns``), so this machine never looks it up."""
    if url.startswith("unix:"):
        return Proxy(ProxyType.SOCKS5, "localhost", 0, rdns=True, forward=_UnixSocks(url[5:]))
    return Proxy.from_url(url, rdns=True)


def _open(proxy: Proxy | None, host: str, port: int, timeout: float) -> socket.socket:
    """The TCP connection to the relay: direct, or through the proxy."""
    if proxy is None:
        return socket.create_connection((host, port), timeout)
    sock = proxy.connect(host, port, timeout=timeout)
    sock.settimeout(timeout)
    return sock


class _SMTP(smtplib.SMTP):
    """smtplib's client, connecting through ``proxy`` when there is one (``_get_socket`` is
    smtplib's own hook for making the connection)."""

    def __init__(self, proxy: Proxy | None, host: str, port: int, **kwargs: Any) -> None:
        self.proxy = proxy
        super().__init__(host, port, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return _open(self.proxy, host, port, timeout)


class _SMTPTLS(smtplib.SMTP_SSL):
    """Implicit TLS (port 465), the same way; the certificate must name ``host``."""

    def __init__(self, proxy: Proxy | None, host: str, port: int, **kwargs: Any) -> None:
        self.proxy, self.relay_host = proxy, host
        super().__init__(host, port, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = _open(self.proxy, host, port, timeout)
        try:
            return self.context.wrap_socket(sock, server_hostname=self.relay_host)
        except BaseException:
            sock.close()
            raise


def _tls(relay: Relay) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=relay.ca_file)


def _failure(relay: Relay, exc: Exception) -> MailError:
    """One line for the admin; never the password, never a whole server reply."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return MailError(f"{relay.host} refused the SMTP username or password")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return MailError(f"{relay.host} refused the recipient's address")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return MailError(f"{relay.host} does not offer what the configuration asks for ({exc})")
    if isinstance(exc, smtplib.SMTPResponseException):
        said = exc.smtp_error
        said = (said.decode("ascii", "replace") if isinstance(said, bytes) else str(said))[:120]
        return MailError(f"{relay.host} answered {exc.smtp_code} {said}".rstrip())
    if isinstance(exc, ProxyConnectionError | ProxyTimeoutError | ProxyError):
        return MailError(f"the proxy {relay.proxy} did not connect to {relay.host}: {exc}")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return MailError(f"TLS with {relay.host} failed: {exc.__class__.__name__}")
    reason = getattr(exc, "strerror", None) or exc.__class__.__name__
    return MailError(f"{relay.describe()} could not be reached: {reason}")


@contextmanager
def session(relay: Relay) -> Iterator[smtplib.SMTP]:
    """A connection to the relay, secured and logged in as configured; closed at the end."""
    client: smtplib.SMTP | None = None
    try:
        proxy = proxy_for(relay.proxy) if relay.proxy else None
        where = (proxy, relay.host, relay.port)
        kwargs: dict[str, Any] = {"local_hostname": GREETING_NAME, "timeout": TIMEOUT_SECONDS}
        if relay.security == "tls":
            client = _SMTPTLS(*where, context=_tls(relay), **kwargs)
        else:
            client = _SMTP(*where, **kwargs)
        client.ehlo()
        if relay.security == "starttls":
            client.starttls(context=_tls(relay))
            client.ehlo()
        if relay.username is not None:
            client.login(relay.username, relay.password or "")
    except (OSError, smtplib.SMTPException, ProxyError, ProxyTimeoutError) as exc:
        if client is not None:
            client.close()
        raise _failure(relay, exc) from None
    try:
        yield client
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


def send(client: smtplib.SMTP, relay: Relay, message: EmailMessage) -> None:
    """Hand one message to the relay (a ``MailError`` if it is refused)."""
    try:
        client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise _failure(relay, exc) from None
