"""Key requests (docs/SPEC.md §3.1), rule by rule, each with the message the signing desk
shows; and the proof-of-work's hashcash (SPEC §10) at its edges."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from nacl.signing import SigningKey

from tipline.crypto import keyrequest, keys, proof_of_work
from tipline.crypto.encoding import b64d, b64e, dump_json
from tipline.crypto.errors import KeyRequestError
from tipline.crypto.primitives import SIG_KEY_REQUEST

from . import mixed_order

DAY = datetime.date(2026, 11, 30)
SIGNING = SigningKey(bytes(range(32)))


def refused(data: bytes) -> str:
    with pytest.raises(KeyRequestError) as info:
        keyrequest.read_request(data)
    assert type(info.value) is KeyRequestError
    return str(info.value.detail)


def body(**changes: Any) -> dict[str, Any]:
    doc = {
        "type": "tipline-key-request-body",
        "v": 1,
        "account": "jo.doe",
        "label": "Jo",
        "public_key": b64e(bytes(SIGNING.verify_key.to_curve25519_public_key())),
        "signing_key": b64e(bytes(SIGNING.verify_key)),
        "created": "2026-11-30",
    }
    doc.update(changes)
    return doc


def request(doc: dict[str, Any] | bytes, key: SigningKey = SIGNING, **outer: Any) -> bytes:
    raw = doc if isinstance(doc, bytes) else dump_json(doc)
    return dump_json(
        {
            "type": "tipline-key-request",
            "v": 1,
            "body": b64e(raw),
            "signature": b64e(key.sign(SIG_KEY_REQUEST + raw).signature),
            **outer,
        }
    )


def test_make_and_read() -> None:
    secret, file = keyrequest.make_request("jo.doe", "Jo", DAY)
    assert secret.label == "Jo"
    got = keyrequest.read_request(file)
    assert got.public == keys.RecipientPublic(secret.public.public_key, "Jo", "jo.doe")
    assert got.created == DAY
    assert got.key_id == secret.public.key_id.hex() and len(got.key_id) == 32
    doc = json.loads(file)
    assert set(doc) == {"type", "v", "body", "signature"}
    assert doc["type"] == "tipline-key-request" and doc["v"] == 1
    inner = json.loads(b64d(doc["body"], None, KeyRequestError, "body"))
    assert inner["created"] == "2026-11-30" and inner["label"] == "Jo"
    assert b64e(secret.secret_key) not in file.decode()


def test_a_request_written_from_the_spec_is_read() -> None:
    got = keyrequest.read_request(request(body()))
    assert got.public.account == "jo.doe" and got.created == DAY


def test_make_request_checks_its_inputs() -> None:
    with pytest.raises(KeyRequestError) as info:
        keyrequest.make_request("No", "Jo", DAY)
    assert info.value.detail == "account must be 2 to 64 lowercase letters, digits, '.', '-' or '_'"
    with pytest.raises(KeyRequestError) as info:
        keyrequest.make_request("jo", "", DAY)
    assert info.value.detail == "label must be 1 to 64 characters"


SECRET = (
    "this file carries a secret key; destroy this copy and send a key request "
    "(tipline-desk keys request) instead"
)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b" " * 4097, "the file is larger than 4096 bytes"),
        (b"[]", "key request must be a JSON object"),
        (b"{,}", "key request is not valid JSON"),
        (keys.RecipientSecret(bytes(32), "x").to_json(), SECRET),
        (keys.OrgSecret(bytes(32)).to_json(), SECRET),
        (keys.lock(b"s", "p", opslimit=1, memlimit=8 << 20), SECRET),
        (json.dumps({"type": "tipline-key-request", "v": 1, "seed": "x"}).encode(), SECRET),
        (
            json.dumps({"type": "tipline-key-request", "v": 2}).encode(),
            "key request is not a version 1 tipline-key-request document",
        ),
        (
            json.dumps({"type": "tipline-key-request", "v": 1, "body": ""}).encode(),
            "key request: missing signature",
        ),
        (
            json.dumps(
                {"type": "tipline-key-request", "v": 1, "body": 1, "signature": b64e(bytes(64))}
            ).encode(),
            "body is not base64",
        ),
        (
            json.dumps(
                {"type": "tipline-key-request", "v": 1, "body": "", "signature": b64e(bytes(65))}
            ).encode(),
            "signature must be 64 bytes",
        ),
        (
            json.dumps(
                {
                    "type": "tipline-key-request",
                    "v": 1,
                    "body": b64e(b" " * 2049),
                    "signature": b64e(bytes(64)),
                }
            ).encode(),
            "the body is larger than 2048 bytes",
        ),
        (
            json.dumps(
                {
                    "type": "tipline-key-request",
                    "v": 1,
                    "body": b64e(b"[]"),
                    "signature": b64e(bytes(64)),
                }
            ).encode(),
            "request body must be a JSON object",
        ),
        (request(body(secret_key="x")), SECRET),
        (request(body(type="tipline-org-secret")), SECRET),
        (request(body(v=2)), "request body is not a version 1 tipline-key-request-body document"),
        (request(body(extra=1)), "request body: unknown extra"),
        (request(body(signing_key=b64e(bytes(31)))), "signing_key must be 32 bytes"),
        (request(body(public_key=b64e(bytes(33)))), "public_key must be 32 bytes"),
        (
            request(body(), key=SigningKey(bytes(32))),  # signed by another key
            "its signature does not verify (damaged or altered on the way)",
        ),
        (
            request(body(public_key=b64e(bytes(32)))),
            "its public key is not the one its signing key proves",
        ),
        (
            request(body(account="Jo")),
            "account must be 2 to 64 lowercase letters, digits, '.', '-' or '_'",
        ),
        (request(body(label="")), "label must be 1 to 64 characters"),
        (request(body(created="30/11/2026")), "created must be a date as YYYY-MM-DD"),
    ],
)
def test_read_request_refusals(data: bytes, message: str) -> None:
    assert refused(data) == message


def test_request_size_limits_are_inclusive() -> None:
    raw = dump_json(body())
    exact_body = raw[:-1] + b" " * (keyrequest.MAX_KEY_REQUEST_BODY - len(raw)) + b"}"
    assert len(exact_body) == keyrequest.MAX_KEY_REQUEST_BODY
    file = request(exact_body)
    assert keyrequest.read_request(file).public.label == "Jo"
    exact_file = file[:-1] + b" " * (keyrequest.MAX_KEY_REQUEST - len(file)) + b"}"
    assert len(exact_file) == keyrequest.MAX_KEY_REQUEST
    assert keyrequest.read_request(exact_file).public.label == "Jo"
    assert refused(exact_file + b" ") == "the file is larger than 4096 bytes"


def test_a_signing_key_that_is_not_a_point_is_refused() -> None:
    # An Ed25519 "key" that is not a curve point: the signature check fails on it first.
    bad = b64e(bytes([0xFF] * 32))
    assert refused(request(body(signing_key=bad))) == (
        "its signature does not verify (damaged or altered on the way)"
    )


def test_a_signing_key_that_signs_but_does_not_convert_is_refused() -> None:
    # A point outside the prime-order subgroup (tests/crypto/mixed_order.py): the signature
    # verifies, the derivation refuses it (tests/mutation/survivors.md named this message).
    def signed_body(key: bytes, n: int) -> bytes:
        return SIG_KEY_REQUEST + dump_json(body(signing_key=b64e(key), label=f"Jo {n}"))

    key, message, signature = mixed_order.signing_key_and_signature(signed_body)
    raw = message[len(SIG_KEY_REQUEST) :]
    assert keys.verify_signature(key, message, signature)  # control: it does verify
    file = dump_json(
        {"type": "tipline-key-request", "v": 1, "body": b64e(raw), "signature": b64e(signature)}
    )
    assert refused(file) == "its signing key is not a valid key"


# proof of work


def test_leading_zero_bits() -> None:
    lzb = proof_of_work.leading_zero_bits
    assert lzb(b"") == 0
    assert lzb(b"\x80") == 0
    assert lzb(b"\x01") == 7
    assert lzb(b"\x00\x40") == 9
    assert lzb(b"\x00\x00\x00\x01") == 31
    assert lzb(bytes(4)) == 32


def test_solve_and_check_at_the_edges() -> None:
    challenge = b"challenge"
    assert proof_of_work.solve(challenge, 0) == bytes(8)
    for difficulty in (1, 8, 12):
        nonce = proof_of_work.solve(challenge, difficulty)
        assert len(nonce) == 8
        proof_of_work.check(challenge, nonce, difficulty)
        hashed = proof_of_work.solution_hash(challenge, nonce)
        assert proof_of_work.leading_zero_bits(hashed) >= difficulty
        # the first nonce counting up from zero, big-endian: every smaller one fails
        first = int.from_bytes(nonce, "big")
        assert all(
            not proof_of_work.solves(challenge, n.to_bytes(8, "big"), difficulty)
            for n in range(first)
        )
        if not proof_of_work.solves(challenge, nonce, difficulty + 1):
            with pytest.raises(proof_of_work.PowError) as info:
                proof_of_work.check(challenge, nonce, difficulty + 1)
            assert info.value.detail == "its hash starts with too few zero bits"


def test_pow_refusals() -> None:
    for size in (7, 9):
        with pytest.raises(proof_of_work.PowError) as info:
            proof_of_work.check(b"c", bytes(size), 0)
        assert info.value.detail == "a nonce is 8 bytes"
        with pytest.raises(ValueError, match=r"^a nonce is 8 bytes$"):
            proof_of_work.solution_hash(b"c", bytes(size))
    for difficulty in (-1, 25):
        with pytest.raises(ValueError, match=r"^the difficulty is 0 to 24 bits$"):
            proof_of_work.solve(b"c", difficulty)
    assert str(proof_of_work.PowError("x")) == "the proof of work does not solve its challenge: x"


def test_solve_takes_the_highest_difficulty() -> None:
    # A challenge found offline whose nonce 0 already has exactly 24 leading zero bits, so the
    # top of the range is checked without 2**24 hashes.
    challenge = b"limit-1652791"
    digest = proof_of_work.solution_hash(challenge, bytes(8))
    assert proof_of_work.leading_zero_bits(digest) == proof_of_work.MAX_DIFFICULTY == 24
    assert proof_of_work.solve(challenge, 24) == bytes(8)
    proof_of_work.check(challenge, bytes(8), 24)
    with pytest.raises(proof_of_work.PowError):
        proof_of_work.check(challenge, bytes(8), 25)
