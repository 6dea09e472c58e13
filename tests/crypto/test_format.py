"""The header's byte layout (docs/SPEC.md §4.1): every refusal with its message, and the
stanza count at its limits."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from tipline.crypto import envelope, keys
from tipline.crypto import format as fmt
from tipline.crypto.errors import EnvelopeFormatError
from tipline.crypto.inner import Inner


def _stanza(i: int) -> fmt.Stanza:
    return fmt.Stanza(bytes([i]) * fmt.KEY_ID_SIZE, bytes([i]) * fmt.SEALED_KEY_SIZE)


def _header(count: int) -> bytes:
    stanzas = tuple(_stanza(i) for i in range(count))
    return fmt.encode_header_without_mac(stanzas, bytes(fmt.SS_HEADER_SIZE)) + bytes(32)


def format_error(call: Callable[..., object], *args: object) -> str:
    with pytest.raises(EnvelopeFormatError) as info:
        call(*args)
    return str(info.value.detail)


def test_preamble_bytes() -> None:
    assert fmt.PREAMBLE == b"TIPLINE\x01\x00\x10" and fmt.PREAMBLE_SIZE == 10
    assert fmt.header_size(1) == 10 + 1 + 96 + 24 + 32
    assert fmt.header_size(fmt.MAX_STANZAS) == fmt.MAX_HEADER_SIZE


@pytest.mark.parametrize("count", [1, 2, fmt.MAX_STANZAS])
def test_stanza_counts_within_limits(count: int) -> None:
    data = _header(count)
    assert len(data) == fmt.header_size(count)
    assert fmt.header_size_from_prefix(data[:11]) == len(data)
    header = fmt.parse_header(data + b"payload")
    assert header.stanzas == tuple(_stanza(i) for i in range(count))
    assert header.encode() == data
    assert header.mac == bytes(32) and header.ss_header == bytes(fmt.SS_HEADER_SIZE)


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        (b"", "it ends before its header does"),
        (b"TIPLINE\x01\x00\x10", "it ends before its header does"),  # 10 of 11 bytes
        (b"TIPLINE\x01\x00", "it ends before its header does"),
        (b"TIPLINX\x01\x00\x10\x01", "it does not start with the Tipline magic bytes"),
        (b"TIPLINE\x02\x00\x10\x01", "its version 2 is not supported (only 1 is)"),
        (b"TIPLINE\x00\x00\x10\x01", "its version 0 is not supported (only 1 is)"),
        (b"TIPLINE\x01\x01\x10\x01", "its reserved flags are not zero"),
        (b"TIPLINE\x01\x00\x11\x01", "its chunk size is not the one version 1 uses"),
        (b"TIPLINE\x01\x00\x10\x00", "it has 0 recipients; 1 to 32 are allowed"),
        (b"TIPLINE\x01\x00\x10\x21", "it has 33 recipients; 1 to 32 are allowed"),
        (b"TIPLINE\x01\x00\x10\xff", "it has 255 recipients; 1 to 32 are allowed"),
    ],
)
def test_preamble_refusals(prefix: bytes, message: str) -> None:
    assert format_error(fmt.header_size_from_prefix, prefix) == message
    if len(prefix) == 11:  # parse_header meets the same check first
        assert format_error(fmt.parse_header, prefix + bytes(4000)) == message


def test_parse_header_refusals() -> None:
    data = _header(2)
    assert format_error(fmt.parse_header, data[:-1]) == "it ends before its header does"
    same = data[:11] + data[11 : 11 + 96] * 2 + data[11 + 192 :]
    assert format_error(fmt.parse_header, same) == "two of its recipients have the same key id"


def test_encode_header_refusals() -> None:
    ss = bytes(fmt.SS_HEADER_SIZE)
    enc = fmt.encode_header_without_mac
    assert format_error(enc, (), ss) == "an envelope has 1 to 32 recipients"
    many = tuple(_stanza(i) for i in range(33))
    assert format_error(enc, many, ss) == "an envelope has 1 to 32 recipients"
    assert format_error(enc, (_stanza(1),), ss[:-1]) == "the stream header is the wrong size"
    assert format_error(enc, (_stanza(1),), ss + b"x") == "the stream header is the wrong size"
    for bad in (
        fmt.Stanza(bytes(15), bytes(80)),
        fmt.Stanza(bytes(17), bytes(80)),
        fmt.Stanza(bytes(16), bytes(79)),
        fmt.Stanza(bytes(16), bytes(81)),
    ):
        assert format_error(enc, (_stanza(1), bad), ss) == "a stanza is the wrong size"


def test_ciphertext_size() -> None:
    assert fmt.ciphertext_size(0, 1) == fmt.header_size(1) + 17  # one empty FINAL chunk
    assert fmt.ciphertext_size(1, 1) == fmt.header_size(1) + 1 + 17
    assert fmt.ciphertext_size(65536, 2) == fmt.header_size(2) + 65536 + 17
    assert fmt.ciphertext_size(65537, 2) == fmt.header_size(2) + 65537 + 34


def test_seal_to_the_most_recipients_allowed() -> None:
    recipients = [keys.RecipientSecret.generate(f"k{i}") for i in range(fmt.MAX_STANZAS)]
    out = io.BytesIO()
    envelope.seal(out, [r.public.public_key for r in recipients], Inner("reply", "desk", "hi"))
    data = out.getvalue()
    assert fmt.parse_header(data).key_ids == tuple(r.public.key_id for r in recipients)
    last = recipients[-1]
    assert envelope.open_envelope(io.BytesIO(data), [last.secret_key]).message == "hi"
