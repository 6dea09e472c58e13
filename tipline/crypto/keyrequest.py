"""Key requests: a journalist's desk asks the signing desk to add a new recipient key
(docs/SPEC.md §3.1).

The request carries the X25519 public key, a label and the staff account, signed with an
Ed25519 key from which the X25519 key is derived (libsodium's ``crypto_sign_ed25519_*_to_
curve25519``). Only the holder of that signing key's secret could have made the X25519 key it
names, so a valid request proves possession without any secret leaving the journalist's desk.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from nacl.signing import SigningKey

from . import keys
from .encoding import (
    b64d,
    b64e,
    dump_json,
    expect_date,
    expect_header,
    expect_label,
    expect_members,
    load_json,
)
from .errors import KeyRequestError
from .primitives import SIG_KEY_REQUEST

MAX_KEY_REQUEST = 4096
MAX_KEY_REQUEST_BODY = 2048
# Members that only secret key files have: a file carrying one must never leave a desk.
SECRET_MEMBERS = frozenset({"secret_key", "seed", "org_seed", "signing_seed"})
SECRET_TYPES = frozenset({"tipline-recipient-secret", "tipline-org-secret", "tipline-locked"})


@dataclass(frozen=True)
class KeyRequest:
    """A verified key request."""

    public: keys.RecipientPublic
    created: datetime.date

    @property
    def key_id(self) -> str:
        """The full key id as hex (the short id is its first 8 digits)."""
        return self.public.key_id.hex()


def make_request(
    account: str, label: str, created: datetime.date, signing: SigningKey | None = None
) -> tuple[keys.RecipientSecret, bytes]:
    """A recipient key derived from ``signing`` (a fresh Ed25519 key by default) and the signed
    request for it. A desk that passes its own ``signing`` keeps it to sign triage updates
    (SPEC §8.5); otherwise it is used once and dropped."""
    keys.expect_account(account, KeyRequestError)
    expect_label(label, keys.MAX_LABEL, KeyRequestError, "label")
    if signing is None:
        signing = SigningKey.generate()
    secret = keys.RecipientSecret(bytes(signing.to_curve25519_private_key()), label)
    body = dump_json(
        {
            "type": "tipline-key-request-body",
            "v": 1,
            "account": account,
            "label": label,
            "public_key": b64e(secret.public.public_key),
            "signing_key": b64e(bytes(signing.verify_key)),
            "created": created.isoformat(),
        }
    )
    signature = signing.sign(SIG_KEY_REQUEST + body).signature
    file = dump_json(
        {
            "type": "tipline-key-request",
            "v": 1,
            "body": b64e(body),
            "signature": b64e(signature),
        }
    )
    return secret, file


def read_request(data: bytes) -> KeyRequest:
    """Check a key request file in the order of docs/SPEC.md §3.1; ``KeyRequestError`` says
    which rule failed."""
    if len(data) > MAX_KEY_REQUEST:
        raise KeyRequestError(f"the file is larger than {MAX_KEY_REQUEST} bytes")
    outer = load_json(data, MAX_KEY_REQUEST, KeyRequestError, "key request")
    _refuse_secrets(outer)
    expect_header(outer, "tipline-key-request", KeyRequestError, "key request")
    expect_members(outer, {"type", "v", "body", "signature"}, KeyRequestError, "key request")
    body_bytes = b64d(outer["body"], None, KeyRequestError, "body")
    signature = b64d(outer["signature"], 64, KeyRequestError, "signature")
    if len(body_bytes) > MAX_KEY_REQUEST_BODY:
        raise KeyRequestError(f"the body is larger than {MAX_KEY_REQUEST_BODY} bytes")
    body = load_json(body_bytes, MAX_KEY_REQUEST_BODY, KeyRequestError, "request body")
    _refuse_secrets(body)
    expect_header(body, "tipline-key-request-body", KeyRequestError, "request body")
    expect_members(
        body,
        {"type", "v", "account", "label", "public_key", "signing_key", "created"},
        KeyRequestError,
        "request body",
    )
    signing_key = b64d(body["signing_key"], 32, KeyRequestError, "signing_key")
    public_key = b64d(body["public_key"], 32, KeyRequestError, "public_key")
    derived = keys.verify_derived(
        signing_key,
        SIG_KEY_REQUEST,
        body_bytes,
        signature,
        KeyRequestError,
        "its signature does not verify (damaged or altered on the way)",
    )
    if derived != public_key:
        raise KeyRequestError("its public key is not the one its signing key proves")
    account = keys.expect_account(body["account"], KeyRequestError)
    label = expect_label(body["label"], keys.MAX_LABEL, KeyRequestError, "label")
    created = expect_date(body["created"], KeyRequestError, "created")
    return KeyRequest(keys.RecipientPublic(public_key, label, account), created)


def _refuse_secrets(obj: dict[str, Any]) -> None:
    if obj.get("type") in SECRET_TYPES or SECRET_MEMBERS & set(obj):
        raise KeyRequestError(
            "this file carries a secret key; destroy this copy and send a key request "
            "(tipline-desk keys request) instead"
        )
