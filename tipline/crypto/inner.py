"""The inner manifest at the start of every envelope's plaintext (docs/SPEC.md §4.4).

It is authenticated before it is parsed, so only a holder of the file key can send a bad one;
it is still parsed strictly, because a key holder can be an attacker too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .encoding import b64d, b64e, dump_json, expect_header, expect_int, expect_members, load_json
from .errors import EnvelopeContentError

MAX_INNER_MANIFEST = 1 << 20
MAX_MESSAGE = 1 << 19
MAX_ATTACHMENTS = 64
MAX_NAME_BYTES = 255
MAX_TYPE_CHARS = 127
MAX_PLAINTEXT = 1 << 40
KINDS = ("submission", "reply", "triage")  # triage: a desk-to-desk update (SPEC §4.4)
SEALERS = ("browser", "server", "desk")


@dataclass(frozen=True)
class Attachment:
    """An attachment's display name, size and claimed type. The name is never a path."""

    name: str
    size: int
    type: str = "application/octet-stream"

    def __post_init__(self) -> None:
        _check_attachment(self.name, self.size, self.type)


@dataclass(frozen=True)
class Inner:
    """What an envelope says about itself."""

    kind: str
    sealed_by: str
    message: str = ""
    reply_public_key: bytes | None = None
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise EnvelopeContentError("kind must be submission, reply or triage")
        if self.sealed_by not in SEALERS:
            raise EnvelopeContentError("sealed_by must be browser, server or desk")
        if not isinstance(self.message, str) or len(_utf8(self.message, "message")) > MAX_MESSAGE:
            raise EnvelopeContentError(f"the message is longer than {MAX_MESSAGE} bytes")
        if self.reply_public_key is not None and len(self.reply_public_key) != 32:
            raise EnvelopeContentError("the reply key must be 32 bytes")
        if (self.kind == "submission") != (self.reply_public_key is not None):
            raise EnvelopeContentError("a submission has a reply key and a reply has none")
        if self.kind == "triage" and (self.sealed_by != "desk" or self.attachments):
            raise EnvelopeContentError("a triage update is sealed by a desk and has no attachments")
        if len(self.attachments) > MAX_ATTACHMENTS:
            raise EnvelopeContentError(f"more than {MAX_ATTACHMENTS} attachments")

    def encode(self) -> bytes:
        """The inner manifest's JSON bytes."""
        data = dump_json(
            {
                "type": "tipline-inner",
                "v": 1,
                "kind": self.kind,
                "sealed_by": self.sealed_by,
                "message": self.message,
                "reply_public_key": (
                    b64e(self.reply_public_key) if self.reply_public_key is not None else None
                ),
                "attachments": [
                    {"name": a.name, "size": a.size, "type": a.type} for a in self.attachments
                ],
            }
        )
        if len(data) > MAX_INNER_MANIFEST:
            raise EnvelopeContentError("the inner manifest is too large")
        return data

    def content_length(self) -> int:
        """``L`` of docs/SPEC.md §4.4: length prefix, manifest and attachments, unpadded."""
        return 4 + len(self.encode()) + sum(a.size for a in self.attachments)


def _utf8(text: str, what: str) -> bytes:
    """UTF-8 bytes of ``text``; JSON can carry lone surrogates, which UTF-8 cannot."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EnvelopeContentError(f"the {what} is not valid Unicode") from exc


def _check_attachment(name: object, size: object, type_: object) -> None:
    if not isinstance(name, str) or not 1 <= len(_utf8(name, "attachment name")) <= (
        MAX_NAME_BYTES
    ):
        raise EnvelopeContentError(f"an attachment name must be 1 to {MAX_NAME_BYTES} bytes")
    expect_int(size, 0, MAX_PLAINTEXT, EnvelopeContentError, "attachment size")
    if (
        not isinstance(type_, str)
        or len(type_) > MAX_TYPE_CHARS
        or not type_.isascii()
        or not type_.isprintable()
    ):
        raise EnvelopeContentError(
            f"an attachment type must be at most {MAX_TYPE_CHARS} printable ASCII characters"
        )


def parse_inner(data: bytes) -> Inner:
    """Parse and check an inner manifest."""
    obj = load_json(data, MAX_INNER_MANIFEST, EnvelopeContentError, "inner manifest")
    expect_header(obj, "tipline-inner", EnvelopeContentError, "inner manifest")
    expect_members(
        obj,
        {"type", "v", "kind", "sealed_by", "message", "reply_public_key", "attachments"},
        EnvelopeContentError,
        "inner manifest",
    )
    raw = obj["attachments"]
    if not isinstance(raw, list) or len(raw) > MAX_ATTACHMENTS:
        raise EnvelopeContentError(f"attachments must be a list of at most {MAX_ATTACHMENTS}")
    attachments = tuple(_parse_attachment(a) for a in raw)
    reply = obj["reply_public_key"]
    reply_pk = None if reply is None else b64d(reply, 32, EnvelopeContentError, "reply key")
    if not isinstance(obj["message"], str):
        raise EnvelopeContentError("the message must be text")
    return Inner(obj["kind"], obj["sealed_by"], obj["message"], reply_pk, attachments)


def _parse_attachment(value: Any) -> Attachment:
    if not isinstance(value, dict):
        raise EnvelopeContentError("an attachment must be a JSON object")
    expect_members(value, {"name", "size", "type"}, EnvelopeContentError, "attachment")
    return Attachment(value["name"], value["size"], value["type"])
