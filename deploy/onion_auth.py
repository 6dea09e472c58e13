"""Give a journalist access to the journalist onion (Tor v3 client authorisation).

    onion_auth.py add NAME [--hs-dir /var/lib/tor/tipline-journalist]

makes an x25519 keypair (PyNaCl, libsodium), writes the public half where Tor looks for it,
``HS_DIR/authorized_clients/NAME.auth``, and prints the private half once, for the journalist
only: the key Tor Browser asks for when it opens the address, and the line a system tor keeps
in its ``ClientOnionAuthDir`` as ``NAME.auth_private``. The server keeps no copy of it.
Reload Tor afterwards (``systemctl reload tor``). To take access away, delete the ``.auth``
file and reload Tor.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import sys
from pathlib import Path

from nacl.public import PrivateKey

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
ONION = re.compile(r"[a-z2-7]{56}\.onion")


def b32(key: bytes) -> str:
    """Tor's encoding of a client-authorisation key: base32, no padding."""
    return base64.b32encode(key).decode("ascii").rstrip("=")


def add(name: str, hs_dir: Path) -> tuple[str, str]:
    """Authorise a new client ``name``; return (onion address, private key in base32)."""
    if not NAME.fullmatch(name):
        raise SystemExit("onion_auth: a name is 1 to 32 of a-z, 0-9, - and _")
    try:
        onion = (hs_dir / "hostname").read_text("ascii").strip()
    except (OSError, UnicodeDecodeError):
        raise SystemExit(
            f"onion_auth: {hs_dir}/hostname is missing: start Tor once so it makes the onion"
        ) from None
    if not ONION.fullmatch(onion):
        raise SystemExit(f"onion_auth: {hs_dir}/hostname does not hold a v3 onion address")
    folder = hs_dir / "authorized_clients"
    folder.mkdir(mode=0o700, exist_ok=True)
    key = PrivateKey.generate()
    path = folder / f"{name}.auth"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SystemExit(
            f"onion_auth: {path} exists: remove it first to replace that journalist's key"
        ) from None
    with os.fdopen(fd, "w") as out:
        out.write(f"descriptor:x25519:{b32(bytes(key.public_key))}\n")
    # Tor reads the folder as its own user; keep the owner of the folder.
    stat = folder.stat()
    os.chown(path, stat.st_uid, stat.st_gid)
    return onion, b32(bytes(key))


def main(argv: list[str]) -> int:
    """Command line: ``add NAME [--hs-dir DIR]``."""
    parser = argparse.ArgumentParser(prog="onion_auth.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    adding = sub.add_parser("add", help="authorise one more journalist")
    adding.add_argument("name")
    adding.add_argument("--hs-dir", type=Path, default=Path("/var/lib/tor/tipline-journalist"))
    args = parser.parse_args(argv)
    onion, private = add(args.name, args.hs_dir)
    print(
        f"Journalist onion: http://{onion}/\n"
        f"Private key for {args.name} (Tor Browser asks for it; give it only to them):\n"
        f"  {private}\n"
        f"For a system tor, as {args.name}.auth_private in its ClientOnionAuthDir:\n"
        f"  {onion.removesuffix('.onion')}:descriptor:x25519:{private}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
