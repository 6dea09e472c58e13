"""Key manifests: signing and the acceptance rules, in order (docs/SPEC.md §3)."""

from __future__ import annotations

import datetime
import json

import pytest

from tipline.crypto import keys, manifest
from tipline.crypto.encoding import b64d, b64e, dump_json
from tipline.crypto.errors import ManifestError
from tipline.crypto.primitives import SIG_KEY_MANIFEST

TODAY = datetime.date(2026, 11, 24)
LATER = TODAY + datetime.timedelta(days=90)


@pytest.fixture
def org() -> keys.OrgSecret:
    return keys.OrgSecret.generate()


def signed(org: keys.OrgSecret, recipients: list[keys.RecipientPublic], version: int = 3) -> bytes:
    return manifest.sign_manifest(org, version, recipients, TODAY, LATER)


def resign(org: keys.OrgSecret, body: dict[str, object]) -> bytes:
    raw = dump_json(body)
    return dump_json(
        {
            "type": "tipline-signed-key-manifest",
            "v": 1,
            "body": b64e(raw),
            "signature": b64e(org.sign(SIG_KEY_MANIFEST + raw)),
        }
    )


def body_of(file: bytes) -> dict[str, object]:
    return json.loads(b64d(json.loads(file)["body"], None, ManifestError, "body"))


def test_accepts_and_reports(org: keys.OrgSecret, alice: keys.RecipientSecret) -> None:
    file = signed(org, [alice.public])
    result = manifest.verify_manifest(file, org.public.public_key, TODAY, 2)
    assert result.file == file
    assert result.manifest.version == 3
    assert result.manifest.key_ids() == {alice.public.key_id}
    assert result.manifest.recipients == (alice.public,)


@pytest.mark.parametrize(
    "today, installed, message",
    [
        (LATER + datetime.timedelta(days=1), None, "expired"),
        (TODAY - datetime.timedelta(days=2), None, "future"),
        (TODAY, 3, "not newer"),
        (TODAY, 4, "not newer"),
    ],
)
def test_refusals(
    org: keys.OrgSecret,
    alice: keys.RecipientSecret,
    today: datetime.date,
    installed: int | None,
    message: str,
) -> None:
    with pytest.raises(ManifestError, match=message):
        manifest.verify_manifest(
            signed(org, [alice.public]), org.public.public_key, today, installed
        )


def test_edges_accepted(org: keys.OrgSecret, alice: keys.RecipientSecret) -> None:
    file = signed(org, [alice.public])
    manifest.verify_manifest(file, org.public.public_key, LATER)  # the last valid day
    manifest.verify_manifest(file, org.public.public_key, TODAY - datetime.timedelta(days=1))


def test_signature_is_checked_against_the_configured_key(
    org: keys.OrgSecret, alice: keys.RecipientSecret
) -> None:
    other = keys.OrgSecret.generate()
    with pytest.raises(ManifestError, match="signature"):
        manifest.verify_manifest(signed(other, [alice.public]), org.public.public_key, TODAY)
    # Signed by the configured key but naming another org key in the body.
    body = body_of(signed(org, [alice.public]))
    body["org_public_key"] = b64e(other.public.public_key)
    with pytest.raises(ManifestError, match="different org key"):
        manifest.verify_manifest(resign(org, body), org.public.public_key, TODAY)


def test_signature_covers_the_domain_string(
    org: keys.OrgSecret, alice: keys.RecipientSecret
) -> None:
    raw = signed(org, [alice.public])
    outer = json.loads(raw)
    body = b64d(outer["body"], None, ManifestError, "body")
    bare = dump_json({**outer, "signature": b64e(org.sign(body))})
    with pytest.raises(ManifestError, match="signature"):
        manifest.verify_manifest(bare, org.public.public_key, TODAY)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda b: b.update(version=0), "version"),
        (lambda b: b.update(version=True), "version"),
        (lambda b: b.update(issued="2026-13-01"), "real date"),
        (lambda b: b.update(expires="2026-01-01"), "expires before"),
        (lambda b: b.update(recipients=[]), "1 to 32"),
        (lambda b: b.update(recipients=b["recipients"] * 2), "twice"),
        (lambda b: b.update(extra=1), "unknown extra"),
        (lambda b: b["recipients"][0].update(label=""), "label"),
        (lambda b: b["recipients"][0].update(key_id="00" * 16), "key id"),
    ],
)
def test_body_rules(
    org: keys.OrgSecret,
    alice: keys.RecipientSecret,
    change,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    body = body_of(signed(org, [alice.public]))
    change(body)
    with pytest.raises(ManifestError, match=message):
        manifest.verify_manifest(resign(org, body), org.public.public_key, TODAY)


def test_size_bounds(org: keys.OrgSecret, alice: keys.RecipientSecret) -> None:
    with pytest.raises(ManifestError, match="larger than"):
        manifest.verify_manifest(
            b" " * (manifest.MAX_SIGNED_MANIFEST + 1), org.public.public_key, TODAY
        )
    body = body_of(signed(org, [alice.public]))
    body["recipients"][0]["label"] = "x"  # type: ignore[index]
    raw = dump_json(body) + b" " * manifest.MAX_KEY_MANIFEST
    outer = dump_json(
        {
            "type": "tipline-signed-key-manifest",
            "v": 1,
            "body": b64e(raw),
            "signature": b64e(bytes(64)),
        }
    )
    with pytest.raises(ManifestError):
        manifest.verify_manifest(outer, org.public.public_key, TODAY)


def test_cannot_sign_what_readers_refuse(org: keys.OrgSecret) -> None:
    with pytest.raises(ManifestError):
        manifest.sign_manifest(org, 1, [], TODAY, LATER)
    many = [keys.RecipientSecret.generate(f"k{i}").public for i in range(33)]
    with pytest.raises(ManifestError):
        manifest.sign_manifest(org, 1, many, TODAY, LATER)
