"""Roles and enrolment by key request (docs/DESK.md §1, docs/SPEC.md §3.1): every bad request
gets one clear line and changes nothing; a key is found by account, key id or label prefix."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tipline.crypto import keys
from tipline.crypto.encoding import dump_json
from tipline.desk.cli import cli
from tipline.desk.vault import Vault

from .conftest import PASS


def make(path: Path, role: str) -> Path:
    Vault.create(path, PASS, kdf="test", role=role).close()
    return path


def run(vault: Path, *args: str, stdin: str = PASS + "\n", code: int = 0) -> Result:
    result = CliRunner().invoke(cli, ["--vault", str(vault), *args], input=stdin)
    assert result.exit_code == code, (args, result.output)
    return result


def keyring(vault: Path) -> bytes:
    return (vault / "keyring.sealed").read_bytes()


@pytest.fixture
def desks(tmp_path: Path) -> tuple[Path, Path, Path]:
    signer = make(tmp_path / "signer", "signer")
    run(signer, "keys", "org-create")
    alice = make(tmp_path / "alice", "journalist")
    request = tmp_path / "alice.request"
    out = str(request)
    run(alice, "keys", "request", "--account", "alice", "--label", "Alice Reporter", "--out", out)
    return signer, alice, request


def _signed_request(account: str) -> bytes:
    """A validly signed request whose account breaks the rules (make_request refuses one)."""
    from nacl.signing import SigningKey

    from tipline.crypto.primitives import SIG_KEY_REQUEST

    signing = SigningKey.generate()
    body = dump_json(
        {
            "type": "tipline-key-request-body",
            "v": 1,
            "account": account,
            "label": "A",
            "public_key": base64.b64encode(
                bytes(signing.verify_key.to_curve25519_public_key())
            ).decode(),
            "signing_key": base64.b64encode(bytes(signing.verify_key)).decode(),
            "created": "2026-11-24",
        }
    )
    sig = signing.sign(SIG_KEY_REQUEST + body).signature
    return dump_json(
        {
            "type": "tipline-key-request",
            "v": 1,
            "body": base64.b64encode(body).decode(),
            "signature": base64.b64encode(sig).decode(),
        }
    )


def _rewrite(request: Path, out: Path, **changes: object) -> Path:
    outer = json.loads(request.read_text())
    body = json.loads(base64.b64decode(outer["body"]))
    body.update(changes)
    outer["body"] = base64.b64encode(dump_json(body)).decode()
    out.write_text(json.dumps(outer))
    return out


def test_bad_requests_get_one_line_and_change_nothing(
    tmp_path: Path, desks: tuple[Path, Path, Path]
) -> None:
    signer, _, request = desks
    data = request.read_bytes()
    secret = keys.RecipientSecret.generate("Alice Reporter")
    cases = {
        "truncated": (data[: len(data) // 2], "not valid JSON"),
        "tampered": (
            _rewrite(request, tmp_path / "t", account="mallory").read_bytes(),
            "signature does not verify",
        ),
        "bad self-signature": (
            json.dumps(
                {**json.loads(data), "signature": base64.b64encode(bytes(64)).decode()}
            ).encode(),
            "signature does not verify",
        ),
        "not an account name": (_signed_request("Alice Smith"), "account must be 2 to 64"),
        "carrying a secret key": (secret.to_json(), "carries a secret key"),
        "oversize": (data + b" " * 5000, "larger than 4096 bytes"),
    }
    before = keyring(signer)
    for name, (content, words) in cases.items():
        bad = tmp_path / f"bad-{name.replace(' ', '-')}"
        bad.write_bytes(content)
        got = run(signer, "keys", "accept", str(bad), "--yes", code=1)
        assert got.stderr.startswith("tipline-desk: the key request was refused: "), name
        assert got.stderr.count("\n") == 1 and words in got.stderr, (name, got.stderr)
        assert keyring(signer) == before, name  # not even re-sealed
    # the good one is accepted once; the same again is a duplicate
    run(signer, "keys", "accept", str(request), "--yes")
    after = keyring(signer)
    dup = run(signer, "keys", "accept", str(request), "--yes", code=1)
    assert "already in this vault" in dup.stderr and dup.stderr.count("\n") == 1
    assert keyring(signer) == after


def test_accept_shows_who_and_asks(tmp_path: Path, desks: tuple[Path, Path, Path]) -> None:
    signer, alice, request = desks
    said_no = run(signer, "keys", "accept", str(request), stdin=f"{PASS}\nn\n", code=2)
    assert "account     alice" in said_no.stdout and "Alice Reporter" in said_no.stdout
    (own,) = [line for line in run(alice, "keys", "list").stdout.splitlines() if "alice" in line]
    short_id = own.split()[0]
    assert f"key id      {short_id}" in said_no.stdout  # the same id as on Alice's screen
    assert "no recipient keys" in run(signer, "keys", "list").stderr
    run(signer, "keys", "accept", str(request), stdin=f"{PASS}\ny\n")
    listed = run(signer, "keys", "list").stdout
    assert short_id in listed and "public only" in listed


def test_roles_refuse_what_belongs_elsewhere(
    tmp_path: Path, desks: tuple[Path, Path, Path]
) -> None:
    signer, alice, request = desks
    for args in (("manifest", "--out", str(tmp_path / "m.json")), ("keys", "org-create")):
        got = run(alice, *args, code=1)
        assert "this is a journalist desk" in got.stderr and got.stderr.count("\n") == 1
    assert not (tmp_path / "m.json").exists()
    got = run(
        signer,
        "keys",
        "request",
        "--account",
        "sam",
        "--label",
        "Sam",
        "--out",
        str(tmp_path / "s.request"),
        code=1,
    )
    assert "this is a signing desk" in got.stderr and not (tmp_path / "s.request").exists()
    assert "signing desk" in run(signer, "keys", "add", "Sam", code=1).stderr
    assert "journalist desk" in run(alice, "keys", "accept", str(request), "--yes", code=1).stderr
    assert (
        "send a key request instead"
        in run(alice, "keys", "rotate", "alice", "--yes", code=1).stderr
    )
    # a one-person desk may do both, because it said so
    both = make(tmp_path / "both", "both")
    run(both, "keys", "org-create")
    run(both, "keys", "add", "Solo", "--account", "solo")
    run(both, "manifest", "--out", str(tmp_path / "solo.json"))


def test_keys_are_found_by_account_id_or_label_prefix(
    tmp_path: Path, desks: tuple[Path, Path, Path]
) -> None:
    signer, alice, request = desks
    run(signer, "keys", "accept", str(request), "--yes")
    second = tmp_path / "alice2.request"
    out = str(second)
    run(alice, "keys", "request", "--account", "alice", "--label", "Alice Reporter", "--out", out)
    run(signer, "keys", "accept", str(second), "--yes")
    ids = [line.split()[0] for line in run(signer, "keys", "list").stdout.splitlines()[2:]]
    assert len(ids) == 2
    for name in ("alice", "alice rep", "Alice"):
        many = run(signer, "keys", "retire", name, "--yes", code=1).stderr
        assert "matches 2 keys" in many and ids[0] in many and ids[1] in many
        assert many.count("\n") == 1
    assert "no key 'nobody'" in run(signer, "keys", "retire", "nobody", "--yes", code=1).stderr
    run(signer, "keys", "retire", ids[0][:5], "--yes")
    # now only one active key matches the account: the retired one no longer competes
    assert "last active key" in run(signer, "keys", "retire", "alice", "--yes", code=1).stderr
    out = run(signer, "keys", "export", "alice", "--out", str(tmp_path / "a.pub")).stdout
    assert ids[1] in out


def test_renew_signs_the_same_keys_with_a_new_expiry(
    tmp_path: Path, desks: tuple[Path, Path, Path]
) -> None:
    from tipline.crypto.manifest import verify_manifest
    from tipline.desk.vault import today

    signer, alice, request = desks
    assert (
        "signed no manifest"
        in run(signer, "manifest", "renew", "--out", str(tmp_path / "r0.json"), code=1).stderr
    )
    run(signer, "keys", "accept", str(request), "--yes")
    run(signer, "manifest", "--out", str(tmp_path / "m1.json"), "--days", "10")
    run(signer, "manifest", "renew", "--out", str(tmp_path / "m2.json"), "--days", "200")
    with Vault.open(signer, PASS) as vault:
        assert vault.keyring.org is not None
        org = vault.keyring.org.public.public_key
    m1 = verify_manifest((tmp_path / "m1.json").read_bytes(), org, today()).manifest
    m2 = verify_manifest((tmp_path / "m2.json").read_bytes(), org, today(), 1).manifest
    assert m2.version == 2 and m2.recipients == m1.recipients
    assert (m2.expires - today()).days == 200 and (m1.expires - today()).days == 10
    # the control: once the keys change, renew refuses (that is a new manifest, said so)
    second = tmp_path / "alice2.request"
    run(alice, "keys", "request", "--account", "alice", "--label", "Alice 2", "--out", str(second))
    run(signer, "keys", "accept", str(second), "--yes")
    changed = run(signer, "manifest", "renew", "--out", str(tmp_path / "m3.json"), code=1)
    assert "active keys changed since manifest version 2" in changed.stderr
    assert not (tmp_path / "m3.json").exists()


def test_a_vault_from_before_roles_opens_as_both(tmp_path: Path) -> None:
    """Keyrings written before roles have no role, org_public or accounts: they are "both"."""
    import nacl.utils

    from tipline.crypto.encoding import b64e
    from tipline.desk.keyring import Keyring

    secret = nacl.utils.random(32)
    old = dump_json(
        {
            "type": "tipline-desk-keyring",
            "v": 1,
            "org_seed": None,
            "manifest_version": 3,
            "recipients": [
                {
                    "label": "Alice",
                    "secret_key": b64e(secret),
                    "state": "active",
                    "created": "2026-01-01",
                    "retired": None,
                }
            ],
        }
    )
    ring = Keyring.from_json(old)
    assert ring.role == "both" and ring.manifest_version == 3
    (entry,) = ring.recipients
    assert entry.secret is not None and entry.secret.secret_key == secret
    assert entry.account is None and entry.public == entry.secret.public
    again = Keyring.from_json(ring.to_json())
    assert again.recipients == ring.recipients
