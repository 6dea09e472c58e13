"""Round trips across the languages (docs/SPEC.md §6): the browser's code, run in node, seals and
Python opens; Python seals a reply and the browser's code opens it; codenames derive the same;
a manifest signed in Python verifies in JavaScript and a tampered one is refused there.

Needs node and static/build/ (`make static`); without them these tests fail, they do not skip.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tipline.crypto import codename, envelope, keys, manifest
from tipline.crypto.encoding import b64e
from tipline.crypto.errors import CodenameError, EnvelopeOpenError
from tipline.crypto.format import CHUNK_SIZE, ciphertext_size, parse_header
from tipline.crypto.inner import Attachment, Inner
from tipline.crypto.padding import padded_length

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tests" / "js" / "tools"


@pytest.fixture(scope="module", autouse=True)
def _node_and_build() -> None:
    if shutil.which("node") is None:
        pytest.fail("node is not installed")
    if not (ROOT / "static" / "build" / "libsodium-wrappers.js").exists():
        pytest.fail("static/build is missing: run `make static`")


def node(script: str, *args: str, stdin: str | None = None) -> Any:
    """Run a helper in tests/js/tools and return its JSON output."""
    done = subprocess.run(
        ["node", str(TOOLS / script), *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _seal_in_node(
    tmp_path: Path,
    recipients: list[keys.RecipientSecret],
    message: str,
    files: list[tuple[str, str, bytes]],
    reply_pk: bytes,
) -> tuple[Path, dict[str, Any]]:
    attachments = []
    for i, (name, type_, data) in enumerate(files):
        path = tmp_path / f"attachment-{i}"
        path.write_bytes(data)
        attachments.append({"name": name, "type": type_, "path": str(path)})
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {
                "recipients": [b64e(r.public.public_key) for r in recipients],
                "message": message,
                "reply_public_key": b64e(reply_pk),
                "attachments": attachments,
            }
        )
    )
    out = tmp_path / "sealed.tipline"
    return out, node("seal.mjs", str(request), str(out))


SIZES = [
    pytest.param("a short message", [], id="message-only"),
    pytest.param("", [("photo.jpg", "image/jpeg", os.urandom(1000))], id="empty-message-one-file"),
    pytest.param(
        "Ünïcødé ✓ and a\nnewline",
        [("a.bin", "", os.urandom(CHUNK_SIZE - 7)), ("b.txt", "text/plain", b"")],
        id="chunk-boundary-and-empty-file",
    ),
    pytest.param(
        "several chunks",
        [
            ("big.bin", "application/octet-stream", os.urandom(5 * CHUNK_SIZE + 123)),
            ("второй.pdf", "application/pdf", os.urandom(2 * CHUNK_SIZE)),
        ],
        id="multi-chunk",
    ),
]


@pytest.mark.parametrize(("message", "files"), SIZES)
def test_node_seals_python_opens(
    tmp_path: Path,
    alice: keys.RecipientSecret,
    bob: keys.RecipientSecret,
    message: str,
    files: list[tuple[str, str, bytes]],
) -> None:
    reply_pk = os.urandom(32)
    sealed, report = _seal_in_node(tmp_path, [alice, bob], message, files, reply_pk)
    data = sealed.read_bytes()
    assert report["size"] == len(data)
    assert data.startswith(base64.b64decode(report["header"]))
    assert parse_header(data).key_ids == (alice.public.key_id, bob.public.key_id)
    for reader in (alice, bob):
        outputs: list[io.BytesIO] = []

        def sink(index: int, attachment: Attachment, outputs: list[io.BytesIO] = outputs) -> Any:
            outputs.append(io.BytesIO())
            return outputs[-1]

        inner = envelope.open_envelope(io.BytesIO(data), [reader.secret_key], sink)
        assert inner.kind == "submission" and inner.sealed_by == "browser"
        assert inner.message == message and inner.reply_public_key == reply_pk
        assert [(a.name, a.type, a.size) for a in inner.attachments] == [
            (name, type_, len(body)) for name, type_, body in files
        ]
        assert [o.getvalue() for o in outputs] == [body for _, _, body in files]
        # The size is the Padmé size Python computes for the content as it was read.
        assert len(data) == ciphertext_size(padded_length(inner.content_length()), 2)
    with pytest.raises(EnvelopeOpenError):
        envelope.open_envelope(io.BytesIO(data), [keys.RecipientSecret.generate("Eve").secret_key])


def test_node_envelope_size_is_the_spec_size(tmp_path: Path, alice: keys.RecipientSecret) -> None:
    body = os.urandom(3 * CHUNK_SIZE)
    sealed, _ = _seal_in_node(tmp_path, [alice], "size", [("x", "", body)], os.urandom(32))
    inner = envelope.open_envelope(io.BytesIO(sealed.read_bytes()), [alice.secret_key])
    expected = ciphertext_size(padded_length(inner.content_length()), 1)
    assert sealed.stat().st_size == expected


def _python_reply(
    tmp_path: Path,
    reply_pk: bytes,
    journalist: keys.RecipientSecret,
    message: str,
    files: list[tuple[str, bytes]],
) -> Path:
    inner = Inner(
        "reply", "desk", message, None, tuple(Attachment(n, len(b), "") for n, b in files)
    )
    path = tmp_path / "reply.tipline"
    with path.open("wb") as dst:
        envelope.seal(
            dst, [reply_pk, journalist.public.public_key], inner, [io.BytesIO(b) for _, b in files]
        )
    return path


@pytest.mark.parametrize(
    "files",
    [
        pytest.param([], id="text-only"),
        pytest.param([("notes.txt", os.urandom(4 * CHUNK_SIZE + 5))], id="multi-chunk"),
    ],
)
def test_python_seals_reply_node_opens(
    tmp_path: Path,
    alice: keys.RecipientSecret,
    wordlist: codename.Wordlist,
    files: list[tuple[str, bytes]],
) -> None:
    derived = codename.derive(codename.generate(wordlist))
    message = "Thank you. Can you send the second ledger? — Алиса"
    path = _python_reply(tmp_path, derived.reply_public_key, alice, message, files)
    opened = node("open.mjs", str(path), b64e(derived.reply_secret_key))
    assert opened["ok"], opened
    assert opened["inner"]["kind"] == "reply" and opened["inner"]["sealed_by"] == "desk"
    assert opened["inner"]["message"] == message
    assert opened["inner"]["reply_public_key"] is None
    assert opened["attachments"] == [b64e(b) for _, b in files]
    wrong = node("open.mjs", str(path), b64e(keys.RecipientSecret.generate("Eve").secret_key))
    assert wrong == {
        "ok": False,
        "kind": "open_error",
        "error": "the envelope could not be opened: it is damaged, truncated, "
        "or not sealed to any of your keys",
    }


def test_node_refuses_a_damaged_python_reply(tmp_path: Path, alice: keys.RecipientSecret) -> None:
    path = _python_reply(
        tmp_path,
        alice.public.public_key,
        keys.RecipientSecret.generate("J"),
        "x",
        [("a", os.urandom(CHUNK_SIZE * 2))],
    )
    data = bytearray(path.read_bytes())
    data[-100] ^= 1
    path.write_bytes(bytes(data))
    assert node("open.mjs", str(path), b64e(alice.secret_key))["kind"] == "open_error"
    path.write_bytes(bytes(data[:-1000]))
    assert node("open.mjs", str(path), b64e(alice.secret_key))["kind"] == "open_error"
    path.write_bytes(b"TIPLINE\x02" + bytes(data[8:]))
    assert node("open.mjs", str(path), b64e(alice.secret_key))["kind"] == "format_error"


def test_codenames_derive_the_same(wordlist: codename.Wordlist) -> None:
    python_made = [codename.generate(wordlist) for _ in range(20)]
    python_made += [codename.generate(wordlist, 12), "  " + python_made[0].upper() + "\t"]
    node_made = node("codename.mjs", "generate", "20")
    assert len(set(node_made)) == 20
    typed = (
        python_made
        + node_made
        + ["not a codename at all here okay", "\uff41\uff42\uff41\uff43\uff55\uff53 " * 7]
    )  # full-width "abacus"
    results = node("codename.mjs", "derive", stdin=json.dumps(typed))
    for text, got in zip(typed, results, strict=True):
        try:
            norm = codename.normalize(wordlist, text)
        except CodenameError:
            assert got == {"error_kind": "codename_error"}
            continue
        derived = codename.derive(norm)
        assert got == {
            "normalized": norm,
            "login_token": b64e(derived.login_token),
            "token_hash": b64e(derived.token_hash),
            "reply_public_key": b64e(derived.reply_public_key),
            "reply_secret_key": b64e(derived.reply_secret_key),
        }
    assert results[-1]["normalized"] == " ".join(["abacus"] * 7)  # NFKC folds full-width letters
    assert results[-2] == {"error_kind": "codename_error"}


def _signed(org: keys.OrgSecret, recipients: list[keys.RecipientSecret], version: int) -> bytes:
    today = datetime.datetime.now(datetime.UTC).date()
    return manifest.sign_manifest(
        org, version, [r.public for r in recipients], today, today + datetime.timedelta(days=30)
    )


def test_python_manifest_verifies_in_node(
    tmp_path: Path, alice: keys.RecipientSecret, bob: keys.RecipientSecret
) -> None:
    org = keys.OrgSecret.generate()
    path = tmp_path / "manifest.json"
    path.write_bytes(_signed(org, [alice, bob], 9))
    got = node("manifest.mjs", str(path), b64e(org.public.public_key))
    assert got == {
        "ok": True,
        "version": 9,
        "recipients": [
            {
                "key_id": r.public.key_id.hex(),
                "public_key": b64e(r.public.public_key),
                "label": r.label,
            }
            for r in (alice, bob)
        ],
    }


def test_tampered_manifests_are_refused_in_node(
    tmp_path: Path, alice: keys.RecipientSecret
) -> None:
    org = keys.OrgSecret.generate()
    signed = json.loads(_signed(org, [alice], 3))
    body = base64.b64decode(signed["body"])
    sig = bytearray(base64.b64decode(signed["signature"]))
    sig[5] ^= 0x40
    cases = {
        "signature": {**signed, "signature": b64e(bytes(sig))},
        "body": {**signed, "body": b64e(body.replace(b'"version":3', b'"version":4'))},
        "extra member": {**signed, "note": "x"},
    }
    path = tmp_path / "manifest.json"
    for what, doc in cases.items():
        path.write_text(json.dumps(doc))
        got = node("manifest.mjs", str(path), b64e(org.public.public_key))
        assert got["ok"] is False and got["kind"] == "manifest_error", what
    path.write_bytes(_signed(org, [alice], 3))
    other = keys.OrgSecret.generate()
    got = node("manifest.mjs", str(path), b64e(other.public.public_key))
    assert got["ok"] is False and "signature does not verify" in got["error"]
    later = (datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=31)).isoformat()
    got = node("manifest.mjs", str(path), b64e(org.public.public_key), later)
    assert got["ok"] is False and "expired" in got["error"]
