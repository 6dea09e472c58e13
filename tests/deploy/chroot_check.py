"""The host side of deploy/test-in-chroot.sh: makes the desk's files for an install, then
submits a tip through the installed server (nginx on 127.0.0.1:8080, then the gunicorn socket
the unit's ExecStart serves) and opens what the server stored with the journalist's key.

    .venv/bin/python -m tests.deploy.chroot_check keys DIR
    .venv/bin/python -m tests.deploy.chroot_check submit DIR CHROOT MESSAGE

Run by the script, not by pytest (it needs the installed chroot). Every check prints one line;
a failed one exits non-zero with what it saw.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

from tipline.crypto import keys, manifest
from tipline.crypto.envelope import open_envelope

from .conftest import csrf_token, multipart, source_client

SOURCE_PORT = 8080  # deploy/nginx/tipline.conf


def check(ok: bool, what: str, seen: object = "") -> None:
    if not ok:
        sys.exit(f"chroot-check: FAILED: {what}: {str(seen)[:800]}")
    print(f"chroot-check: ok: {what}")


def make_keys(out: Path) -> None:
    """An org key, one journalist key and a manifest signed for it, as the desk would make."""
    out.mkdir(parents=True, exist_ok=True)
    org = keys.OrgSecret.generate()
    journalist = keys.RecipientSecret.generate("Chroot journalist")
    today = datetime.datetime.now(datetime.UTC).date()
    signed = manifest.sign_manifest(
        org, 1, [journalist.public], today, today + datetime.timedelta(days=30)
    )
    (out / "org.pub.json").write_bytes(org.public.to_json())
    (out / "manifest.signed.json").write_bytes(signed)
    secret = out / "journalist.secret"
    secret.touch(mode=0o600)
    secret.write_bytes(journalist.secret_key)
    (out / "fingerprint").write_text(org.public.fingerprint + "\n")


def submit(keydir: Path, chroot: Path, message: str) -> None:
    """A no-JS submission with an attachment through nginx, then the stored envelope opened."""
    client = source_client(SOURCE_PORT)  # nginx expects Tor's PROXY line
    home = client.request("GET", "/")
    check(home.status == 200, "GET / through nginx answers 200", home.status)
    page = client.request("GET", "/submit")
    check(page.status == 200, "GET /submit answers 200", page.status)
    attachment = b"chroot attachment " * 3000
    body, content_type = multipart(
        {"csrf_token": csrf_token(page), "message": message}, {"notes.txt": attachment}
    )
    reply = client.request("POST", "/submit", body, {"Content-Type": content_type})
    check(reply.status == 200, "the no-JS submission is accepted", reply.text[:500])
    secret = keydir.joinpath("journalist.secret").read_bytes()
    blobs = sorted((chroot / "var/lib/tipline").rglob("submissions/*"))
    check(bool(blobs), "the server stored a submission under /var/lib/tipline", blobs)
    found = []
    for blob in blobs:
        check(blob.stat().st_mode & 0o077 == 0, f"{blob.name} is for the service user only")
        with blob.open("rb") as f:
            inner = open_envelope(f, [secret])
        found.append(inner.message)
        if inner.message == message:
            names = [(a.name, a.size) for a in inner.attachments]
            check(names == [("notes.txt", len(attachment))], "the attachment is in it", names)
    check(message in found, "the journalist's key opens the stored tip", found)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "keys":
        make_keys(Path(argv[1]))
        return 0
    if len(argv) == 4 and argv[0] == "submit":
        submit(Path(argv[1]), Path(argv[2]), argv[3])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
