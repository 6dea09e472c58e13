"""Configuration, read in one place: defaults, then an optional TOML file named by
``TIPLINE_CONFIG_FILE``, then ``TIPLINE_*`` environment variables, then the dict a caller (a test)
passes.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..crypto.encoding import b64d
from ..crypto.errors import TiplineError

GIB = 1 << 30
MIB = 1 << 20


class ConfigError(TiplineError):
    """the tip line's configuration is not valid"""


DEFAULTS: dict[str, Any] = {
    "DATA_DIR": "instance",
    "ORG_PUBLIC_KEY": None,  # base64 of the org's Ed25519 public key, set at install
    "DATABASE_URL": None,  # default: SQLite in DATA_DIR
    "SECRET_KEY": None,  # default: a random key kept in DATA_DIR, shared by every worker
    "AUTO_MIGRATE": None,  # default: on for SQLite (the demo), off for PostgreSQL
    "MAX_SUBMISSION_SIZE": 2 * GIB,  # what a source may send in one submission
    "MAX_CHUNK_SIZE": 8 * MIB,  # one resumable-upload request body
    "MIN_FREE_BYTES": 512 * MIB,  # below this much free disk, refuse new data with a 503
    "UPLOAD_TTL_HOURS": 48,  # unfinished uploads idle (no chunk) this long are removed
    "SESSION_MINUTES": 120,
    "HTTPS": False,  # onion services are plain HTTP; set when served over TLS (Secure cookies)
    "RATELIMIT_LOGIN": "10 per minute",  # failed staff logins, per account (codenames: none)
    "RATELIMIT_SUBMIT": "120 per minute",  # stored submissions and started uploads, in all
    "RATELIMIT_ENABLED": True,
    # Where blobs live (docs/ADMIN.md "Blob store"): "local" (DATA_DIR/blobs) or "s3".
    "BLOB_STORE": "local",
    "S3_ENDPOINT": None,  # e.g. http://127.0.0.1:8333 (SeaweedFS, Garage, Ceph RGW)
    "S3_BUCKET": None,
    "S3_REGION": "us-east-1",
    "S3_ACCESS_KEY": None,
    "S3_SECRET_KEY": None,  # never logged nor shown
    "LIMITS_STORAGE": "memory://",  # where app limits are counted (redis+unix://... when deployed)
    "POW_DIFFICULTY": 16,  # zero bits asked when the proof-of-work is on (proof_of_work.py)
    "POW_MAX_DIFFICULTY": 20,  # the most "auto" asks under load; at most 24
    # Journalist and admin side (docs/ADMIN.md)
    "STAFF_IDLE_MINUTES": 30,  # a staff session ends after this long without a request
    "STAFF_SESSION_HOURS": 12,  # and after this long in all
    "SECRET_KEY_FALLBACKS": [],  # old session keys still accepted while they are rotated out
    "MAX_REPLY_BUNDLE": 512 * MIB,  # the largest reply bundle a journalist may upload
    "TRIAGE_MAX_DAYS": 90,  # sealed triage updates (SPEC §8.5) are deleted this long after upload
    # The daily digest (docs/ADMIN.md "Daily digest"): off unless switched on, through this relay.
    "DIGEST_ENABLED": False,
    "DIGEST_SUBJECT": "Daily digest",  # the same every day; need not say "tip line"
    "SMTP_HOST": None,
    "SMTP_PORT": 587,
    "SMTP_SECURITY": "starttls",  # starttls, tls (implicit, port 465), or none (a local relay)
    "SMTP_USERNAME": None,
    "SMTP_PASSWORD": None,  # never logged nor shown
    "SMTP_FROM": None,
    "SMTP_PROXY": None,  # SOCKS5, e.g. Tor: socks5://127.0.0.1:9050 or unix:/run/tor/socks
    "SMTP_CA_FILE": None,  # the CA of a relay whose certificate is not from a public CA
}

# An address as it may stand in a header: ASCII, no spaces, quotes or line breaks.
EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_SOCKS = re.compile(r"socks5h?://[A-Za-z0-9.:\[\]-]{1,255}:\d{1,5}")


def _coerce(key: str, value: Any) -> Any:
    """Give a value from the environment or a file the type of its default."""
    default = DEFAULTS[key]
    if not isinstance(value, str) or default is None or isinstance(default, str):
        return value
    if isinstance(default, list):  # a comma-separated list
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(default, bool):
        if value.lower() in {"1", "true", "yes", "on"}:
            return True
        if value.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"TIPLINE_{key} must be true or false")
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"TIPLINE_{key} must be a whole number") from exc


def _secret_key(data_dir: Path) -> str:
    """A key made once and kept in the data folder, so that every worker signs alike."""
    path = data_dir / "secret-key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another worker made it first
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
    key = path.read_text().strip()
    if len(key) < 32:
        raise ConfigError(f"{path} is too short to be a secret key")
    return key


def load_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Merge defaults, the file, the environment and ``overrides``; check what the app needs."""
    config = dict(DEFAULTS)
    file = os.environ.get("TIPLINE_CONFIG_FILE")
    if file:
        try:
            loaded = tomllib.loads(Path(file).read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read the config file {file}") from exc
        unknown = sorted(set(loaded) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown settings in {file}: {', '.join(unknown)}")
        config.update(loaded)
    for key in DEFAULTS:
        value = os.environ.get(f"TIPLINE_{key}")
        if value is not None:
            config[key] = _coerce(key, value)
    config.update(overrides or {})
    data_dir = Path(config["DATA_DIR"]).resolve()
    config["DATA_DIR"] = str(data_dir)
    if config["ORG_PUBLIC_KEY"] is None:
        raise ConfigError("TIPLINE_ORG_PUBLIC_KEY is not set (the org key made on the desk)")
    config["ORG_PUBLIC_KEY_BYTES"] = b64d(
        config["ORG_PUBLIC_KEY"], 32, ConfigError, "TIPLINE_ORG_PUBLIC_KEY"
    )
    if config["DATABASE_URL"] is None:
        config["DATABASE_URL"] = f"sqlite:///{data_dir / 'tipline.db'}"
    if config["AUTO_MIGRATE"] is None:
        config["AUTO_MIGRATE"] = str(config["DATABASE_URL"]).startswith("sqlite")
    if config["SECRET_KEY"] is None:
        config["SECRET_KEY"] = _secret_key(data_dir)
    fallbacks = config["SECRET_KEY_FALLBACKS"]
    if not isinstance(fallbacks, list) or any(
        not isinstance(k, str) or len(k) < 32 for k in fallbacks
    ):
        raise ConfigError("TIPLINE_SECRET_KEY_FALLBACKS must be keys of 32 characters or more")
    for key in (
        "MAX_SUBMISSION_SIZE",
        "MAX_CHUNK_SIZE",
        "MIN_FREE_BYTES",
        "SESSION_MINUTES",
        "STAFF_IDLE_MINUTES",
        "STAFF_SESSION_HOURS",
        "MAX_REPLY_BUNDLE",
        "TRIAGE_MAX_DAYS",
    ):
        if isinstance(config[key], bool) or not isinstance(config[key], int) or config[key] < 0:
            raise ConfigError(f"TIPLINE_{key} must be a whole number, 0 or more")
    storage = config["LIMITS_STORAGE"]
    if not isinstance(storage, str) or not storage.startswith(
        ("memory://", "redis://", "rediss://", "redis+unix:///")
    ):
        raise ConfigError(
            "TIPLINE_LIMITS_STORAGE must be memory:// or a Redis URI (redis+unix:///PATH)"
        )
    for key in ("POW_DIFFICULTY", "POW_MAX_DIFFICULTY"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 24:
            raise ConfigError(f"TIPLINE_{key} must be a whole number from 0 to 24")
    if config["MAX_CHUNK_SIZE"] < 64 * 1024:
        raise ConfigError("TIPLINE_MAX_CHUNK_SIZE must be at least 65536")
    if config["DIGEST_ENABLED"]:
        _check_mail(config)
    _check_blob_store(config)
    return config


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_mail(config: dict[str, Any]) -> None:
    """The relay settings the digest needs, each bounded (checked only when it is on)."""
    if not isinstance(config["DIGEST_ENABLED"], bool):
        raise ConfigError("TIPLINE_DIGEST_ENABLED must be true or false")
    for key in ("SMTP_HOST", "SMTP_FROM"):
        if not isinstance(config[key], str) or not config[key]:
            raise ConfigError(f"TIPLINE_{key} must be set when the daily digest is on")
    host, port = config["SMTP_HOST"], config["SMTP_PORT"]
    if not re.fullmatch(r"[A-Za-z0-9.:\[\]-]{1,253}", host):
        raise ConfigError("TIPLINE_SMTP_HOST must be a host name or an address")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError("TIPLINE_SMTP_PORT must be a port number")
    if not EMAIL.fullmatch(config["SMTP_FROM"]):
        raise ConfigError("TIPLINE_SMTP_FROM must be one plain address, like tips@example.org")
    subject = config["DIGEST_SUBJECT"]
    if not isinstance(subject, str) or not 0 < len(subject) <= 100 or not subject.isprintable():
        raise ConfigError("TIPLINE_DIGEST_SUBJECT must be 1 to 100 printable characters")
    if config["SMTP_SECURITY"] not in ("starttls", "tls", "none"):
        raise ConfigError("TIPLINE_SMTP_SECURITY must be starttls, tls or none")
    if config["SMTP_SECURITY"] == "none" and not (_is_loopback(host) and not config["SMTP_PROXY"]):
        raise ConfigError("TIPLINE_SMTP_SECURITY may be none only for a relay on this machine")
    for key in ("SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_PROXY", "SMTP_CA_FILE"):
        if config[key] is not None and (
            not isinstance(config[key], str) or len(config[key]) > 1024
        ):
            raise ConfigError(f"TIPLINE_{key} must be a string")
    if (config["SMTP_PASSWORD"] is None) != (config["SMTP_USERNAME"] is None):
        raise ConfigError("TIPLINE_SMTP_USERNAME and TIPLINE_SMTP_PASSWORD go together")
    proxy = config["SMTP_PROXY"]
    if proxy is not None and not (
        _SOCKS.fullmatch(proxy) or (proxy.startswith("unix:/") and "\0" not in proxy)
    ):
        raise ConfigError(
            "TIPLINE_SMTP_PROXY must be socks5://HOST:PORT or unix:/PATH (Tor's SOCKS port)"
        )
    if config["SMTP_CA_FILE"] is not None and not Path(config["SMTP_CA_FILE"]).is_file():
        raise ConfigError("TIPLINE_SMTP_CA_FILE must name a file of CA certificates")


def _check_blob_store(config: dict[str, Any]) -> None:
    """The blob store's settings (values are never put in the messages: one is a secret)."""
    if config["BLOB_STORE"] not in ("local", "s3"):
        raise ConfigError("TIPLINE_BLOB_STORE must be local or s3")
    if config["BLOB_STORE"] != "s3":
        return
    for key in ("S3_ENDPOINT", "S3_BUCKET", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_REGION"):
        if not isinstance(config[key], str) or not config[key] or len(config[key]) > 1024:
            raise ConfigError(f"TIPLINE_{key} must be set when TIPLINE_BLOB_STORE is s3")
    if not re.fullmatch(r"https?://[A-Za-z0-9.:\[\]-]{1,255}(/[^\s]*)?", config["S3_ENDPOINT"]):
        raise ConfigError("TIPLINE_S3_ENDPOINT must be an http:// or https:// URL")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", config["S3_BUCKET"]):
        raise ConfigError("TIPLINE_S3_BUCKET must be a bucket name (a-z, 0-9, dots, dashes)")
    # Each chunk is one multipart part (s3store.py), and the page's Worker seals at most 8 MiB.
    if not 5 * MIB <= config["MAX_CHUNK_SIZE"] <= 8 * MIB:
        raise ConfigError("TIPLINE_MAX_CHUNK_SIZE must be 5242880 to 8388608 with the S3 store")
