"""Key manifests, rule by rule: the exact ``ManifestError`` each rule raises (its message is
what an admin reads), and each limit at its edge."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

import pytest

from tipline.crypto import keys, manifest
from tipline.crypto.encoding import b64d, b64e, dump_json
from tipline.crypto.errors import ManifestError
from tipline.crypto.primitives import SIG_KEY_MANIFEST

TODAY = datetime.date(2026, 11, 24)
LATER = TODAY + datetime.timedelta(days=90)


@pytest.fixture(scope="module")
def org() -> keys.OrgSecret:
    return keys.OrgSecret(bytes(range(32)))


@pytest.fixture(scope="module")
def alice() -> keys.RecipientPublic:
    return keys.RecipientSecret(bytes(range(1, 33)), "Alice").public


def refused(call: Callable[..., object], *args: object) -> str:
    with pytest.raises(ManifestError) as info:
        call(*args)
    assert type(info.value) is ManifestError
    return str(info.value.detail)


def outer(body: bytes, signature: bytes) -> dict[str, Any]:
    return {
        "type": "tipline-signed-key-manifest",
        "v": 1,
        "body": b64e(body),
        "signature": b64e(signature),
    }


def signed_body(org: keys.OrgSecret, body: dict[str, Any] | bytes) -> bytes:
    raw = body if isinstance(body, bytes) else dump_json(body)
    return dump_json(outer(raw, org.sign(SIG_KEY_MANIFEST + raw)))


def body_of(org: keys.OrgSecret, alice: keys.RecipientPublic, **kw: Any) -> dict[str, Any]:
    file = manifest.sign_manifest(org, kw.pop("version", 3), [alice], TODAY, LATER, **kw)
    doc: dict[str, Any] = json.loads(b64d(json.loads(file)["body"], None, ManifestError, "body"))
    return doc


def verify(
    org: keys.OrgSecret, file: bytes, today: datetime.date = TODAY, installed: int | None = None
) -> manifest.SignedManifest:
    return manifest.verify_manifest(file, org.public.public_key, today, installed)


def test_signed_file_is_canonical(org: keys.OrgSecret, alice: keys.RecipientPublic) -> None:
    file = manifest.sign_manifest(org, 3, [alice], TODAY, LATER)
    doc = json.loads(file)
    body = b64d(doc["body"], None, ManifestError, "body")
    assert file == dump_json(outer(body, org.sign(SIG_KEY_MANIFEST + body)))
    assert (
        body
        == (
            '{"expires":"2027-02-22","issued":"2026-11-24","org_public_key":"'
            + b64e(org.public.public_key)
            + '","recipients":[{"account":null,"key_id":"'
            + alice.key_id.hex()
            + '","label":"Alice","public_key":"'
            + b64e(alice.public_key)
            + '"}],"type":"tipline-key-manifest","v":2,"version":3}'
        ).encode()
    )
    v1 = json.loads(
        manifest.KeyManifest(3, TODAY, LATER, org.public.public_key, (alice,), 1).to_json()
    )
    assert v1["v"] == 1 and "account" not in v1["recipients"][0]


def test_version_one_and_same_day_expiry_are_accepted(
    org: keys.OrgSecret, alice: keys.RecipientPublic
) -> None:
    file = manifest.sign_manifest(org, 1, [alice], TODAY, TODAY)
    got = verify(org, file).manifest
    assert (got.version, got.issued, got.expires) == (1, TODAY, TODAY)
    assert verify(org, manifest.sign_manifest(org, 2, [alice], TODAY, LATER), TODAY, 1)


def test_most_recipients_allowed(org: keys.OrgSecret) -> None:
    many = [keys.RecipientSecret(bytes([i + 1]) * 32, f"k{i}").public for i in range(32)]
    file = manifest.sign_manifest(org, 1, many, TODAY, LATER)
    assert verify(org, file).manifest.recipients == tuple(many)
    assert (
        refused(
            manifest.sign_manifest,
            org,
            1,
            [*many, keys.RecipientSecret(bytes([99]) * 32, "x").public],
            TODAY,
            LATER,
        )
        == "it must list 1 to 32 recipients"
    )


def test_accounts_are_read(org: keys.OrgSecret) -> None:
    pub = keys.RecipientSecret(bytes([7]) * 32, "Jo").public
    with_account = keys.RecipientPublic(pub.public_key, "Jo", "jo.doe")
    got = verify(org, manifest.sign_manifest(org, 1, [with_account], TODAY, LATER))
    assert got.manifest.recipients[0].account == "jo.doe"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        if path.startswith("r."):
            body["recipients"][0][path[2:]] = value
        else:
            body[path] = value

    return change


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda body: body["recipients"][0].pop(name)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            _set("type", "tipline-other"),
            "manifest body is not a version 1 or 2 tipline-key-manifest document",
        ),
        (_set("v", 3), "manifest body is not a version 1 or 2 tipline-key-manifest document"),
        (_set("v", True), "manifest body is not a version 1 or 2 tipline-key-manifest document"),
        (_set("extra", 1), "manifest body: unknown extra"),
        (_set("version", 0), f"version must be a whole number from 1 to {(1 << 53) - 1}"),
        (_set("version", 1 << 53), f"version must be a whole number from 1 to {(1 << 53) - 1}"),
        (_set("issued", "26-11-24"), "issued must be a date as YYYY-MM-DD"),
        (_set("expires", 20270101), "expires must be a date as YYYY-MM-DD"),
        (_set("expires", "2027-02-30"), "expires is not a real date"),
        (_set("expires", "2026-11-23"), "it expires before it is issued"),
        (_set("org_public_key", b64e(bytes(31))), "org_public_key must be 32 bytes"),
        (_set("recipients", {}), "it must list 1 to 32 recipients"),
        (_set("recipients", []), "it must list 1 to 32 recipients"),
        (_set("recipients", [1]), "a recipient must be a JSON object"),
        (_drop("account"), "recipient: missing account"),
        (_set("r.extra", 1), "recipient: unknown extra"),
        (_set("r.public_key", b64e(bytes(33))), "public_key must be 32 bytes"),
        (_set("r.key_id", "AB" * 16), "key_id must be 32 lowercase hex digits"),
        (_set("r.key_id", "ab" * 15), "key_id must be 32 lowercase hex digits"),
        (_set("r.key_id", "00" * 16), "a recipient's key id does not match its public key"),
        (_set("r.label", "x" * 65), "label must be 1 to 64 characters"),
        (
            _set("r.account", "No"),
            "account must be 2 to 64 lowercase letters, digits, '.', '-' or '_'",
        ),
    ],
)
def test_body_rules(
    org: keys.OrgSecret,
    alice: keys.RecipientPublic,
    change: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    body = body_of(org, alice)
    change(body)
    assert refused(verify, org, signed_body(org, body)) == message


def test_v1_body_has_no_account(org: keys.OrgSecret, alice: keys.RecipientPublic) -> None:
    body = body_of(org, alice, body_v=1)
    assert verify(org, signed_body(org, body)).manifest.body_v == 1
    body["recipients"][0]["account"] = "jo"
    assert refused(verify, org, signed_body(org, body)) == "recipient: unknown account"


def test_listed_twice(org: keys.OrgSecret, alice: keys.RecipientPublic) -> None:
    body = body_of(org, alice)
    body["recipients"] *= 2
    assert refused(verify, org, signed_body(org, body)) == "a recipient key is listed twice"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b"[]", "signed manifest must be a JSON object"),
        (b"{", "signed manifest is not valid JSON"),
        (b" " * (96 * 1024 + 1), f"signed manifest is larger than {96 * 1024} bytes"),
        (
            json.dumps({"type": "tipline-signed-key-manifest", "v": 2}).encode(),
            "signed manifest is not a version 1 tipline-signed-key-manifest document",
        ),
        (
            json.dumps({"type": "tipline-signed-key-manifest", "v": 1, "body": ""}).encode(),
            "signed manifest: missing signature",
        ),
        (
            json.dumps(
                {
                    "type": "tipline-signed-key-manifest",
                    "v": 1,
                    "body": 5,
                    "signature": b64e(bytes(64)),
                }
            ).encode(),
            "body is not base64",
        ),
        (
            json.dumps(
                {
                    "type": "tipline-signed-key-manifest",
                    "v": 1,
                    "body": "",
                    "signature": b64e(bytes(63)),
                }
            ).encode(),
            "signature must be 64 bytes",
        ),
        (
            json.dumps(
                {"type": "tipline-signed-key-manifest", "v": 1, "body": "", "signature": "x"}
            ).encode(),
            "signature is not canonical base64",
        ),
    ],
)
def test_outer_rules(org: keys.OrgSecret, doc: bytes, message: str) -> None:
    assert refused(verify, org, doc) == message


def test_body_size_limit_is_inclusive(org: keys.OrgSecret, alice: keys.RecipientPublic) -> None:
    raw = dump_json(body_of(org, alice))
    exact = raw[:-1] + b" " * (manifest.MAX_KEY_MANIFEST - len(raw)) + b"}"
    assert len(exact) == manifest.MAX_KEY_MANIFEST
    assert verify(org, signed_body(org, exact)).manifest.recipients == (alice,)
    over = exact[:-1] + b" }"
    # refused on its size, before the signature is even looked at
    assert refused(verify, org, dump_json(outer(over, bytes(64)))) == (
        "the body is larger than 65536 bytes"
    )


def test_order_and_messages_of_the_acceptance_rules(
    org: keys.OrgSecret, alice: keys.RecipientPublic
) -> None:
    file = manifest.sign_manifest(org, 5, [alice], TODAY, LATER)
    other = keys.OrgSecret(bytes(32))
    assert refused(manifest.verify_manifest, file, other.public.public_key, TODAY) == (
        "the signature does not verify against this tip line's org key"
    )
    body = body_of(org, alice)
    body["org_public_key"] = b64e(other.public.public_key)
    assert refused(verify, org, signed_body(org, body)) == "it names a different org key"
    assert refused(verify, org, file, LATER + datetime.timedelta(days=1)) == (
        "it expired on 2027-02-22"
    )
    assert refused(verify, org, file, TODAY - datetime.timedelta(days=2)) == (
        "it is dated in the future (2026-11-24)"
    )
    assert refused(verify, org, file, TODAY, 5) == (
        "its version 5 is not newer than the installed version 5"
    )
    assert verify(org, file, TODAY, 4).manifest.version == 5
    assert verify(org, file, TODAY, 0).manifest.version == 5


def test_a_signed_body_that_is_not_json_is_refused(org: keys.OrgSecret) -> None:
    for body, message in [
        (b"{", "manifest body is not valid JSON"),
        (b"[]", "manifest body must be a JSON object"),
    ]:
        assert refused(verify, org, signed_body(org, body)) == message
