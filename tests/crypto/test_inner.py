"""The inner manifest (docs/SPEC.md §4.4): each limit exactly, one past it, and the message."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tipline.crypto import inner as inner_mod
from tipline.crypto.encoding import b64e
from tipline.crypto.errors import EnvelopeContentError
from tipline.crypto.inner import (
    MAX_ATTACHMENTS,
    MAX_INNER_MANIFEST,
    MAX_MESSAGE,
    Attachment,
    Inner,
    parse_inner,
)

PK = bytes(range(32))


def content_error(call: Callable[..., object], *args: object) -> str:
    with pytest.raises(EnvelopeContentError) as info:
        call(*args)
    assert type(info.value) is EnvelopeContentError
    return str(info.value.detail)


def doc(**changes: Any) -> bytes:
    base: dict[str, Any] = {
        "type": "tipline-inner",
        "v": 1,
        "kind": "submission",
        "sealed_by": "browser",
        "message": "hi",
        "reply_public_key": b64e(PK),
        "attachments": [{"name": "a", "size": 1, "type": "text/plain"}],
    }
    base.update(changes)
    return json.dumps(base).encode()


def test_parse_inner_round_trip() -> None:
    got = parse_inner(doc())
    assert got == Inner("submission", "browser", "hi", PK, (Attachment("a", 1, "text/plain"),))
    assert parse_inner(got.encode()) == got


def test_encode_is_canonical() -> None:
    got = Inner("reply", "desk", "h\u00e9", None, (Attachment("n", 2),)).encode()
    assert (
        got
        == (
            '{"attachments":[{"name":"n","size":2,"type":"application/octet-stream"}],'
            '"kind":"reply","message":"hé","reply_public_key":null,"sealed_by":"desk",'
            '"type":"tipline-inner","v":1}'
        ).encode()
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "inner manifest is not valid JSON"),
        (b"[]", "inner manifest must be a JSON object"),
        (b"{" + b" " * MAX_INNER_MANIFEST + b"}", f"inner manifest is larger than {1 << 20} bytes"),
        (doc(type="tipline-outer"), "inner manifest is not a version 1 tipline-inner document"),
        (doc(v=2), "inner manifest is not a version 1 tipline-inner document"),
        (doc(extra=1), "inner manifest: unknown extra"),
        (doc(attachments="abc"), "attachments must be a list of at most 64"),
        (doc(attachments={"name": "a"}), "attachments must be a list of at most 64"),
        (
            doc(attachments=[{"name": "a", "size": 1}] * 65),
            "attachments must be a list of at most 64",
        ),
        (doc(attachments=["a"]), "an attachment must be a JSON object"),
        (doc(attachments=[{"name": "a", "size": 1}]), "attachment: missing type"),
        (
            doc(attachments=[{"name": "a", "size": 1, "type": "t", "path": "/"}]),
            "attachment: unknown path",
        ),
        (
            doc(attachments=[{"name": "a", "size": 1.0, "type": "t"}]),
            "inner manifest is not valid JSON",
        ),
        (
            doc(attachments=[{"name": "a", "size": "1", "type": "t"}]),
            f"attachment size must be a whole number from 0 to {1 << 40}",
        ),
        (doc(reply_public_key=b64e(bytes(31))), "reply key must be 32 bytes"),
        (doc(reply_public_key=b64e(bytes(33))), "reply key must be 32 bytes"),
        (doc(reply_public_key="AAAA="), "reply key is not canonical base64"),
        (doc(reply_public_key=5), "reply key is not base64"),
        (doc(message=5), "the message must be text"),
        (doc(message=None), "the message must be text"),
        (doc(kind="other"), "kind must be submission, reply or triage"),
        (doc(sealed_by="other"), "sealed_by must be browser, server or desk"),
        (doc(reply_public_key=None), "a submission has a reply key and a reply has none"),
    ],
)
def test_parse_inner_refusals(data: bytes, message: str) -> None:
    assert content_error(parse_inner, data) == message


def test_attachment_limits() -> None:
    assert Attachment("a", 0).name == "a"
    assert Attachment("\u00e9" * 127 + "a", 1).name.endswith("a")  # 255 bytes
    assert Attachment("a", inner_mod.MAX_PLAINTEXT).size == 1 << 40
    assert Attachment("a", 1, "t" * 127).type == "t" * 127
    name_message = "an attachment name must be 1 to 255 bytes"
    for name in ("", "\u00e9" * 128, "a" * 256, 5, None):
        assert content_error(Attachment, name, 1) == name_message, name
    assert content_error(Attachment, "\ud800", 1) == "the attachment name is not valid Unicode"
    for size in (-1, (1 << 40) + 1, True, "1"):
        assert content_error(Attachment, "a", size) == (
            "attachment size must be a whole number from 0 to 1099511627776"
        )
    type_message = "an attachment type must be at most 127 printable ASCII characters"
    for type_ in ("t" * 128, "text/\u00e9", "text/\x1b", "a\nb", 5, None):
        assert content_error(Attachment, "a", 1, type_) == type_message, type_


def test_inner_limits() -> None:
    assert len(Inner("reply", "desk", "m" * MAX_MESSAGE).message) == MAX_MESSAGE
    assert content_error(Inner, "reply", "desk", "m" * (MAX_MESSAGE + 1)) == (
        "the message is longer than 524288 bytes"
    )
    two_byte = "\u00e9" * (MAX_MESSAGE // 2)  # the limit is in UTF-8 bytes, not characters
    assert Inner("reply", "desk", two_byte).message == two_byte
    assert content_error(Inner, "reply", "desk", two_byte + "x") == (
        "the message is longer than 524288 bytes"
    )
    assert content_error(Inner, "reply", "desk", 5) == "the message is longer than 524288 bytes"
    assert content_error(Inner, "reply", "desk", "\udc00") == "the message is not valid Unicode"
    many = tuple(Attachment(f"f{i}", 0) for i in range(MAX_ATTACHMENTS))
    assert len(Inner("reply", "desk", "", None, many).attachments) == MAX_ATTACHMENTS
    assert (
        content_error(Inner, "reply", "desk", "", None, (*many, Attachment("x", 0)))
        == "more than 64 attachments"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("note", "desk"), "kind must be submission, reply or triage"),
        (("reply", "browser2"), "sealed_by must be browser, server or desk"),
        (("reply", "desk", "", bytes(31)), "the reply key must be 32 bytes"),
        (("submission", "desk", "", bytes(33)), "the reply key must be 32 bytes"),
        (("reply", "desk", "", PK), "a submission has a reply key and a reply has none"),
        (("submission", "browser", "", None), "a submission has a reply key and a reply has none"),
        (("triage", "server"), "a triage update is sealed by a desk and has no attachments"),
        (
            ("triage", "desk", "", None, (Attachment("a", 1),)),
            "a triage update is sealed by a desk and has no attachments",
        ),
    ],
)
def test_inner_refusals(args: tuple[Any, ...], message: str) -> None:
    assert content_error(Inner, *args) == message


def test_triage_and_every_sealer() -> None:
    assert Inner("triage", "desk", "{}").kind == "triage"
    for sealer in ("browser", "server", "desk"):
        assert Inner("submission", sealer, "", PK).sealed_by == sealer


def test_encoded_manifest_limit_is_inclusive() -> None:
    # Control characters take six bytes each in JSON, so a message under MAX_MESSAGE can make
    # a manifest of exactly MAX_INNER_MANIFEST bytes, or one more.
    base = len(Inner("reply", "desk", "").encode())
    room = MAX_INNER_MANIFEST - base
    message = "\x01" * (room // 6) + "a" * (room % 6)
    exact = Inner("reply", "desk", message)
    assert len(exact.encode()) == MAX_INNER_MANIFEST
    assert exact.content_length() == 4 + MAX_INNER_MANIFEST
    assert parse_inner(exact.encode()) == exact
    over = Inner("reply", "desk", message + "a")
    assert content_error(over.encode) == "the inner manifest is too large"


def test_parse_inner_takes_the_most_attachments_allowed() -> None:
    raw = [{"name": f"f{i}", "size": 0, "type": "t"} for i in range(MAX_ATTACHMENTS)]
    assert len(parse_inner(doc(attachments=raw)).attachments) == MAX_ATTACHMENTS
