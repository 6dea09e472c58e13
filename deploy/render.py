"""Render deploy/nginx/tipline.conf's body-size limits from the app's configuration, and the
Onionbalance files for a source onion served by several app servers.

nginx must refuse exactly what the app refuses, no sooner and no later: the app bounds each
request body per endpoint (``tipline.server.security._limit_body``), so each nginx
``client_max_body_size`` line carries a ``# tipline:NAME`` marker saying which app limit it
is, and this script writes the value from the installed configuration. The file in the
repository holds the values for the app's defaults (a test checks that).

    TIPLINE_CONFIG_FILE=/etc/tipline/tipline.toml python deploy/render.py nginx SRC > DEST

Onionbalance (docs/DEPLOY.md "Several app servers behind Onionbalance"); these need only the
standard library and openssl, so they also run on a frontend host without Tipline's venv:

    render.py onion-address KEY.pem              the onion address of an ed25519 key
    render.py onionbalance KEY MASTER BACKEND... the frontend's /etc/onionbalance/config.yaml
    render.py torrc SRC MASTER [--no-journalist] a backend's torrc (source onion balanced)
    render.py ob-config MASTER                   a backend's HiddenServiceDir/ob_config
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MIB = 1 << 20
MARKED = re.compile(r"^(\s*client_max_body_size )(\d+)(;\s*# tipline:)(\S+)$", re.MULTILINE)


def limits(config: Mapping[str, Any]) -> dict[str, int]:
    """The app's body limits by marker name (the form limit includes the app's 2 MiB for the
    multipart framing and the message field, as in ``create_app``)."""
    from tipline.server.security import SMALL_BODY

    return {
        "SMALL_BODY": SMALL_BODY,
        "MAX_SUBMISSION_SIZE+2MiB": int(config["MAX_SUBMISSION_SIZE"]) + 2 * MIB,
        "MAX_CHUNK_SIZE": int(config["MAX_CHUNK_SIZE"]),
        "MAX_REPLY_BUNDLE+2MiB": int(config["MAX_REPLY_BUNDLE"]) + 2 * MIB,
    }


def render_nginx(text: str, config: Mapping[str, Any]) -> str:
    """``text`` with every marked ``client_max_body_size`` set from ``config``."""
    values = limits(config)

    def replace(match: re.Match[str]) -> str:
        name = match.group(4)
        if name not in values:
            raise SystemExit(f"render: unknown limit {name!r} in the nginx configuration")
        return f"{match.group(1)}{values[name]}{match.group(3)}{name}"

    return MARKED.sub(replace, text)


# --- Onionbalance -------------------------------------------------------------------------

# DER prefix of an ed25519 SubjectPublicKeyInfo (RFC 8410): the raw 32-byte key follows.
ED25519_SPKI = bytes.fromhex("302a300506032b6570032100")
SOURCE_DIR = "HiddenServiceDir /var/lib/tor/tipline-source/\n"
SOURCE_PORT = "HiddenServicePort 80 127.0.0.1:8080\n"
JOURNALIST_START = "## Journalists and admins:"
# A v3 descriptor holds at most 20 introduction points; Onionbalance's own config generator
# allows 1 to 8 backends.
MAX_BACKENDS = 8


def onion_address(public_key: bytes) -> str:
    """The v3 onion address (with ``.onion``) of an ed25519 public key (rend-spec-v3 6)."""
    if len(public_key) != 32:
        raise ValueError("an ed25519 public key is 32 bytes")
    version = b"\x03"
    checksum = hashlib.sha3_256(b".onion checksum" + public_key + version).digest()[:2]
    return base64.b32encode(public_key + checksum + version).decode().lower() + ".onion"


def check_onion(address: str) -> str:
    """``address`` as ``NAME.onion`` if it is a well-formed v3 onion address, else exit."""
    name = address.strip().lower().removesuffix(".onion")
    try:
        raw = base64.b32decode(name.upper(), casefold=False) if len(name) == 56 else b""
    except ValueError:
        raw = b""
    if len(raw) != 35 or onion_address(raw[:32]) != name + ".onion":
        raise SystemExit(f"render: {address!r} is not a v3 onion address")
    return name + ".onion"


def key_address(key_file: str) -> str:
    """The onion address of the ed25519 private key in ``key_file`` (PEM, as made by
    ``openssl genpkey -algorithm ed25519``, which Onionbalance reads)."""
    der = subprocess.run(  # noqa: S603  # fixed arguments, no shell
        ["openssl", "pkey", "-in", key_file, "-pubout", "-outform", "DER"],  # noqa: S607
        capture_output=True,
        check=False,
    )
    if der.returncode != 0 or not der.stdout.startswith(ED25519_SPKI) or len(der.stdout) != 44:
        raise SystemExit(f"render: {key_file} is not an ed25519 private key")
    return onion_address(der.stdout[len(ED25519_SPKI) :])


def render_onionbalance(key_file: str, master: str, backends: list[str]) -> str:
    """The frontend's config.yaml: one service, the source onion ``master`` (whose key
    Onionbalance reads from ``key_file``), published with the introduction points of every
    backend."""
    master = check_onion(master)
    seen = [check_onion(b) for b in backends]
    if not seen:
        raise SystemExit("render: Onionbalance needs at least one backend")
    if len(set(seen)) != len(seen):
        raise SystemExit("render: a backend is named twice")
    if len(seen) > MAX_BACKENDS:
        raise SystemExit(f"render: at most {MAX_BACKENDS} backends (onionbalance-config's limit)")
    if master in seen:
        raise SystemExit(f"render: the frontend's own address {master} is not a backend")
    if not re.fullmatch(r"/[A-Za-z0-9/._-]+", key_file):
        raise SystemExit(f"render: {key_file!r}: an absolute path of plain characters, please")
    lines = [
        "# Onionbalance (v3), made by deploy/install.sh --onionbalance-frontend: the source",
        f"# onion {master} is published with the introduction points of",
        "# these backends (each an app server's own source onion). docs/DEPLOY.md",
        '# "Several app servers behind Onionbalance".',
        "services:",
        f"  - key: {key_file}",
        "    instances:",
        *(f"      - address: {b}" for b in seen),
    ]
    return "\n".join(lines) + "\n"


def render_backend_torrc(text: str, master: str, journalist: bool = True) -> str:
    """The shipped torrc with its source onion made an Onionbalance instance of ``master``;
    without ``journalist`` the journalist onion is left out (it stays on one host)."""
    master = check_onion(master)
    if (
        text.count(SOURCE_DIR) != 1
        or text.count(SOURCE_DIR + "HiddenServiceVersion 3\n" + SOURCE_PORT) != 1
    ):
        raise SystemExit("render: the torrc's source onion block is not where it was")
    where = (
        text.index(SOURCE_DIR)
        + len(SOURCE_DIR)
        + len("HiddenServiceVersion 3\n")
        + len(SOURCE_PORT)
    )
    insert = (
        "## Onionbalance: this onion is one backend of the source onion the frontend publishes,\n"
        f"## {master} (named in this folder's ob_config). docs/DEPLOY.md\n"
        '## "Several app servers behind Onionbalance".\n'
        "HiddenServiceOnionbalanceInstance 1\n"
    )
    text = text[:where] + insert + text[where:]
    if not journalist:
        if text.count(JOURNALIST_START) != 1:
            raise SystemExit("render: the torrc's journalist onion block is not where it was")
        text = text[: text.index(JOURNALIST_START)].rstrip("\n") + "\n"
        text += (
            "\n## The journalist onion is not on this host: it stays on one app server, never\n"
            "## behind Onionbalance (docs/DEPLOY.md).\n"
        )
    return text


def render_ob_config(master: str) -> str:
    """A backend's ``ob_config`` (in the source onion's HiddenServiceDir): the frontend's
    address, so Tor accepts introductions made for it."""
    return f"MasterOnionAddress {check_onion(master)}\n"


def main(argv: list[str]) -> int:
    """``render.py nginx FILE``: print FILE rendered with the configuration in effect (and the
    Onionbalance subcommands in the module's docstring)."""
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "onion-address" and len(args) == 1:
        print(key_address(args[0]))
        return 0
    if command == "onionbalance" and len(args) >= 2:
        sys.stdout.write(render_onionbalance(args[0], args[1], args[2:]))
        return 0
    if command == "torrc" and len(args) in (2, 3) and args[2:] in ([], ["--no-journalist"]):
        text = Path(args[0]).read_text("utf-8")
        sys.stdout.write(render_backend_torrc(text, args[1], journalist=len(args) == 2))
        return 0
    if command == "ob-config" and len(args) == 1:
        sys.stdout.write(render_ob_config(args[0]))
        return 0
    if command != "nginx" or len(args) != 1:
        print(
            "usage: render.py nginx FILE | onion-address KEY | onionbalance KEY MASTER BACKEND...\n"
            "       | torrc FILE MASTER [--no-journalist] | ob-config MASTER",
            file=sys.stderr,
        )
        return 2
    from tipline.crypto.errors import TiplineError
    from tipline.server.config import load_config

    try:
        config = load_config()
    except TiplineError as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(render_nginx(Path(args[0]).read_text("utf-8"), config))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
