"""Make the shared test vectors in this folder (docs/SPEC.md §6). Run once; the output is committed.

    python tests/vectors/make_vectors.py [--fresh]

An existing vector keeps its bytes (only new ones, and those listed in REMADE, are written anew)
unless ``--fresh`` is given; every error vector gets the detail the reader must give, and every
open error the check it is for (verified here against the Python reader's raise site).

CI never runs this: vectors are fixed points that both the Python and the JS readers must agree
with, so regenerating them in CI would test nothing. Each file tests exactly one outcome.
"""

from __future__ import annotations

import datetime
import io
import json
import sys
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

import nacl.bindings as sodium  # noqa: E402

from tipline.crypto import codename, envelope, keyrequest, keys, manifest, primitives  # noqa: E402
from tipline.crypto import format as fmt  # noqa: E402
from tipline.crypto import proof_of_work as pow_  # noqa: E402
from tipline.crypto.encoding import b64d, b64e, dump_json  # noqa: E402
from tipline.crypto.errors import ManifestError, TiplineError  # noqa: E402
from tipline.crypto.inner import Attachment, Inner  # noqa: E402
from tipline.crypto.padding import padded_length  # noqa: E402
from tipline.wordlist import load_wordlist  # noqa: E402

ALICE = keys.RecipientSecret(bytes(range(1, 33)), "Alice")
BOB = keys.RecipientSecret(bytes(range(33, 65)), "Bob")
MALLORY = keys.RecipientSecret(bytes(range(65, 97)), "Mallory")
SOURCE = codename.derive("abacus abdomen abdominal abide abiding ability ablaze")
ORG = keys.OrgSecret(bytes(range(100, 132)))
OTHER_ORG = keys.OrgSecret(bytes(range(140, 172)))
TODAY = datetime.date(2026, 11, 24)
BIG = bytes((i * 7 + i // 256) % 251 for i in range(150_000))  # three chunks and a bit


# Vectors whose bytes were remade on purpose, once (the old ones, made before vectors named
# their check, hit a different check than named).
REMADE = {"envelope-trailing-data"}
DOCS: list[dict[str, Any]] = []


def write(name: str, kind: str, outcome: str, comment: str, **fields: object) -> None:
    DOCS.append({"name": name, "kind": kind, "outcome": outcome, "comment": comment, **fields})


def _error_of(doc: dict[str, Any]) -> TiplineError:
    """What the Python reader raises for an error vector."""
    wordlist = load_wordlist()
    try:
        if doc["kind"] == "envelope":
            identities = [b64d(i, 32, TiplineError, "identity") for i in doc["identities"]]
            data = b64d(doc["envelope"], None, TiplineError, "envelope")
            envelope.open_envelope(io.BytesIO(data), identities)
        elif doc["kind"] == "manifest":
            manifest.verify_manifest(
                b64d(doc["signed"], None, TiplineError, "signed"),
                b64d(doc["org_public_key"], 32, TiplineError, "org"),
                datetime.date.fromisoformat(doc["today"]),
                doc["installed_version"],
            )
        elif doc["kind"] == "pow":
            pow_.check(
                b64d(doc["challenge"], None, TiplineError, "challenge"),
                b64d(doc["nonce"], None, TiplineError, "nonce"),
                doc["difficulty"],
            )
        elif doc["kind"] == "key_request":
            keyrequest.read_request(b64d(doc["request"], None, TiplineError, "request"))
        elif doc["kind"] == "triage":
            from tipline.desk import triage

            triage.read_signed(b64d(doc["update"], None, TiplineError, "update").decode())
        else:
            codename.derive(codename.normalize(wordlist, doc["codename"]))
    except TiplineError as exc:
        return exc
    raise AssertionError(f"{doc['name']} opened")


def finish(doc: dict[str, Any], fresh: bool) -> None:
    """Keep an existing vector's bytes (vectors are fixed points) unless remade or ``fresh``;
    record the error detail the reader must give, and check the open error's raise site."""
    path = HERE / f"{doc['name']}.json"
    old = json.loads(path.read_text()) if path.exists() else None
    remade = doc["name"] in REMADE and old is not None and "check" not in old  # once
    if old is not None and not fresh and not remade:
        doc = {**old, **{k: doc[k] for k in ("comment", "check") if k in doc}}
    doc.pop("detail", None)
    head = {k: doc.pop(k) for k in ("name", "kind", "outcome", "check") if k in doc}
    if head["outcome"] not in ("ok", "open_error"):
        head["detail"] = _error_of({**head, **doc}).detail
    elif head["outcome"] == "open_error":
        error = _error_of({**head, **doc})
        frame = traceback.extract_tb(error.__traceback__)[-1]
        assert f"check: {head['check']}" in (frame.line or ""), (head["name"], frame.line)
    path.write_text(json.dumps({**head, **doc}, indent=1, ensure_ascii=False) + "\n")


def seal(inner: Inner, attachments: list[bytes], recipients: list[keys.RecipientSecret]) -> bytes:
    out = io.BytesIO()
    envelope.seal(
        out, [r.public.public_key for r in recipients], inner, [io.BytesIO(a) for a in attachments]
    )
    return out.getvalue()


def expected(inner: Inner, attachments: list[bytes]) -> dict[str, object]:
    return {"inner": json.loads(inner.encode()), "attachments": [b64e(a) for a in attachments]}


def env_vector(
    name: str,
    outcome: str,
    comment: str,
    data: bytes,
    identities: list[keys.RecipientSecret],
    result: dict[str, object] | None = None,
    check: str | None = None,
) -> None:
    fields: dict[str, object] = {
        "identities": [b64e(i.secret_key) for i in identities],
        "envelope": b64e(data),
    }
    if result is not None:
        fields["expected"] = result
    if outcome == "open_error":
        # Open errors all read the same, so the vector names the check it is for; the readers'
        # raise sites carry a `check: <name>` comment the tests match the raising line against.
        assert check is not None, name
        fields["check"] = check
    write(name, "envelope", outcome, comment, **fields)


def chunk_bounds(data: bytes) -> list[tuple[int, int]]:
    start = fmt.header_size_from_prefix(data)
    bounds, step = [], fmt.CHUNK_SIZE + fmt.ABYTES
    while start < len(data):
        bounds.append((start, min(start + step, len(data))))
        start += step
    return bounds


def raw_envelope(
    plaintext: bytes, recipient: keys.RecipientSecret, tags: list[int] | None = None
) -> bytes:
    """An envelope around arbitrary plaintext, for content errors a correct sealer never makes;
    with ``tags``, each chunk's secretstream tag as given (a correct sealer's are MESSAGE and a
    last FINAL)."""
    out = io.BytesIO()
    file_key = primitives.random_bytes(32)
    payload_key, _ = envelope._keys(file_key)
    writer = envelope._ChunkWriter(out, payload_key, len(plaintext))
    header = envelope._header([recipient.public.public_key], file_key, writer.ss_header)
    if tags is None:
        writer.write(plaintext)
        writer.close()
        return header + out.getvalue()
    pieces = [plaintext[i : i + fmt.CHUNK_SIZE] for i in range(0, len(plaintext), fmt.CHUNK_SIZE)]
    assert len(pieces) == len(tags)
    for i, (piece, tag) in enumerate(zip(pieces, tags, strict=True)):
        ad = fmt.PREAMBLE + writer.ss_header if i == 0 else None
        out.write(sodium.crypto_secretstream_xchacha20poly1305_push(writer.state, piece, ad, tag))
    return header + out.getvalue()


def full_chunk_submission() -> tuple[Inner, bytes]:
    """A submission whose plaintext is exactly two chunks, no padding: FINAL on a full chunk."""
    target = 2 * fmt.CHUNK_SIZE  # a Padmé length
    size = target  # the manifest names the size, so settle it in two steps
    for _ in range(2):
        inner = Inner(
            "submission",
            "browser",
            "full",
            SOURCE.reply_public_key,
            (Attachment("a.bin", size, ""),),
        )
        size = target - 4 - len(inner.encode())
    inner = Inner(
        "submission", "browser", "full", SOURCE.reply_public_key, (Attachment("a.bin", size, ""),)
    )
    assert 4 + len(inner.encode()) + size == target == padded_length(target)
    return inner, bytes(i % 253 for i in range(size))


def envelopes() -> None:
    inner = Inner(
        "submission",
        "browser",
        "The camp is at the old police building.\n",
        SOURCE.reply_public_key,
        (Attachment("list.csv", len(BIG), "text/csv"), Attachment("empty", 0, "")),
    )
    good = seal(inner, [BIG, b""], [ALICE, BOB])
    result = expected(inner, [BIG, b""])
    env_vector(
        "envelope-ok-two-recipients",
        "ok",
        "A submission with a 3-chunk attachment and an empty one, sealed to two keys, "
        "opened with the second.",
        good,
        [BOB],
        result,
    )
    reply = Inner("reply", "desk", "Thank you. Can you send the rest? Привет, ça va ?")
    reply_env = io.BytesIO()
    envelope.seal(reply_env, [SOURCE.reply_public_key, ALICE.public.public_key], reply)
    env_vector(
        "envelope-ok-reply",
        "ok",
        "A reply sealed to a codename's reply key and a journalist; opened by the source.",
        reply_env.getvalue(),
        [keys.RecipientSecret(SOURCE.reply_secret_key, "source")],
        expected(reply, []),
    )
    chunks = chunk_bounds(good)
    assert len(chunks) >= 3
    env_vector(
        "envelope-truncated",
        "open_error",
        "Cut in the middle of the second chunk.",
        good[: chunks[1][0] + 1000],
        [ALICE],
        check="chunk-auth",
    )
    env_vector(
        "envelope-missing-final",
        "open_error",
        "The last chunk (the FINAL one) is dropped at a chunk boundary.",
        good[: chunks[-1][0]],
        [ALICE],
        check="missing-final",
    )
    tampered = bytearray(good)
    tampered[chunks[1][0] + 500] ^= 1
    env_vector(
        "envelope-tampered-chunk",
        "open_error",
        "One bit flipped in the second chunk.",
        bytes(tampered),
        [ALICE],
        check="chunk-auth",
    )
    (a0, a1), (b0, b1) = chunks[1], chunks[2]
    swapped = good[:a0] + good[b0:b1] + good[a0:a1] + good[b1:]
    env_vector(
        "envelope-reordered-chunks",
        "open_error",
        "Chunks two and three swapped.",
        swapped,
        [ALICE],
        check="chunk-auth",
    )
    header = bytearray(good)
    header[fmt.PREAMBLE_SIZE + 1 + fmt.STANZA_SIZE + fmt.KEY_ID_SIZE + 10] ^= 1
    env_vector(
        "envelope-tampered-header",
        "open_error",
        "One bit flipped in Bob's sealed file key; Alice's stanza still opens, so the "
        "header MAC is what catches it.",
        bytes(header),
        [ALICE],
        check="header-mac",
    )
    mac = bytearray(good)
    mac[fmt.header_size(2) - 1] ^= 1
    env_vector(
        "envelope-tampered-mac",
        "open_error",
        "One bit flipped in the header MAC.",
        bytes(mac),
        [ALICE],
        check="header-mac",
    )
    dropped = (
        good[: fmt.PREAMBLE_SIZE]
        + b"\x01"
        + good[fmt.PREAMBLE_SIZE + 1 : fmt.PREAMBLE_SIZE + 1 + fmt.STANZA_SIZE]
        + good[fmt.PREAMBLE_SIZE + 1 + 2 * fmt.STANZA_SIZE :]
    )
    env_vector(
        "envelope-dropped-stanza",
        "open_error",
        "Bob's stanza removed and the count fixed up: the MAC no longer matches.",
        dropped,
        [ALICE],
        check="header-mac",
    )
    env_vector(
        "envelope-wrong-key",
        "open_error",
        "Opened with a key it was not sealed to.",
        good,
        [MALLORY],
        check="no-key",
    )
    full_inner, full_blob = full_chunk_submission()
    full = seal(full_inner, [full_blob], [ALICE])
    assert len(full) == fmt.header_size(1) + 2 * (fmt.CHUNK_SIZE + fmt.ABYTES)
    env_vector(
        "envelope-ok-final-full-chunk",
        "ok",
        "A plaintext of exactly two chunks (no padding): FINAL is on a full chunk, and no "
        "empty chunk follows.",
        full,
        [ALICE],
        expected(full_inner, [full_blob]),
    )
    env_vector(
        "envelope-trailing-data",
        "open_error",
        "One byte after a full FINAL chunk: every chunk authenticates, so only the "
        "trailing-data check refuses it (a byte after a short FINAL chunk would fail AEAD).",
        full + b"\x00",
        [ALICE],
        check="trailing-data",
    )
    full_plain = len(full_inner.encode()).to_bytes(4, "big") + full_inner.encode() + full_blob
    env_vector(
        "envelope-non-final-tag",
        "open_error",
        "Authentic chunks whose first is tagged PUSH, not MESSAGE: only MESSAGE may precede "
        "the FINAL chunk.",
        raw_envelope(
            full_plain,
            ALICE,
            [sodium.crypto_secretstream_xchacha20poly1305_TAG_PUSH, envelope.TAG_FINAL],
        ),
        [ALICE],
        check="non-final-tag",
    )
    env_vector(
        "envelope-bad-chunk-size",
        "format_error",
        "Chunk-size byte 17 (version 1 uses 16, 64 KiB); refused before the header MAC.",
        good[:9] + bytes([17]) + good[10:],
        [ALICE],
    )
    env_vector(
        "envelope-unknown-version",
        "format_error",
        "Version byte 2.",
        good[:7] + b"\x02" + good[8:],
        [ALICE],
    )
    env_vector(
        "envelope-bad-magic",
        "format_error",
        "Not a Tipline envelope at all.",
        b"age-encryption.org/v1\n" + good[22:],
        [ALICE],
    )
    env_vector(
        "envelope-nonzero-flags",
        "format_error",
        "Reserved flags set.",
        good[:8] + b"\x01" + good[9:],
        [ALICE],
    )
    env_vector(
        "envelope-oversize-stanza-count",
        "format_error",
        "33 stanzas announced; the limit is 32, checked before reading them.",
        good[:10] + bytes([33]) + good[11:],
        [ALICE],
    )
    env_vector(
        "envelope-truncated-header", "format_error", "Ends inside the stanzas.", good[:100], [ALICE]
    )
    manifest_bytes = inner.encode()
    huge = (fmt.CHUNK_SIZE * 64).to_bytes(4, "big") + b"{}"
    env_vector(
        "envelope-oversize-inner-manifest",
        "content_error",
        "Authentic plaintext whose inner-manifest length is 4 MiB (limit 1 MiB): refused "
        "before allocating.",
        raw_envelope(huge + bytes(4090), ALICE),
        [ALICE],
    )
    env_vector(
        "envelope-empty-inner-manifest",
        "content_error",
        "Authentic plaintext whose inner-manifest length is 0 (1 is the least).",
        raw_envelope(bytes(4096), ALICE),
        [ALICE],
    )
    length = 4 + len(manifest_bytes) + len(BIG)
    plain = len(manifest_bytes).to_bytes(4, "big") + manifest_bytes + BIG
    padding = bytearray(padded_length(length) - length)
    padding[-1] = 1
    env_vector(
        "envelope-nonzero-padding",
        "content_error",
        "Authentic plaintext whose last padding byte is 1.",
        raw_envelope(plain + bytes(padding), ALICE),
        [ALICE],
    )
    env_vector(
        "envelope-overlong-plaintext",
        "content_error",
        "Authentic plaintext with 4096 zero bytes past its padded length.",
        raw_envelope(plain + bytes(len(padding)) + bytes(4096), ALICE),
        [ALICE],
    )
    env_vector(
        "envelope-short-plaintext",
        "content_error",
        "Authentic plaintext that ends before the attachments it announces.",
        raw_envelope(plain[:-1000], ALICE),
        [ALICE],
    )
    bad_inner = dump_json(
        {
            "type": "tipline-inner",
            "v": 1,
            "kind": "submission",
            "sealed_by": "browser",
            "message": "x",
            "reply_public_key": None,
            "attachments": [],
            "extra": 1,
        }
    )
    body = len(bad_inner).to_bytes(4, "big") + bad_inner
    env_vector(
        "envelope-bad-inner-manifest",
        "content_error",
        "Authentic plaintext whose inner manifest has an unknown member.",
        raw_envelope(body + bytes(padded_length(len(body)) - len(body)), ALICE),
        [ALICE],
    )


def manifests() -> None:
    recipients = [ALICE.public, BOB.public]
    signed = manifest.sign_manifest(
        ORG, 7, recipients, TODAY, TODAY + datetime.timedelta(180), body_v=1
    )
    org_pk = b64e(ORG.public.public_key)

    def mv(
        name: str,
        outcome: str,
        comment: str,
        file: bytes,
        installed: int | None,
        today: datetime.date = TODAY,
    ) -> None:
        fields: dict[str, object] = {
            "org_public_key": org_pk,
            "today": today.isoformat(),
            "installed_version": installed,
            "signed": b64e(file),
        }
        if outcome == "ok":
            fields["expected"] = {
                "version": 7,
                "recipients": [
                    {"key_id": r.key_id.hex(), "public_key": b64e(r.public_key), "label": r.label}
                    for r in recipients
                ],
            }
        write(name, "manifest", outcome, comment, **fields)

    mv("manifest-ok", "ok", "Version 7 over installed 6, valid today.", signed, 6)
    mv("manifest-ok-first-install", "ok", "No version installed yet.", signed, None)
    outer = json.loads(signed)
    sig = bytearray(b64d(outer["signature"], 64, ManifestError, "signature"))
    sig[0] ^= 1
    mv(
        "manifest-bad-signature",
        "manifest_error",
        "One bit of the signature flipped.",
        dump_json({**outer, "signature": b64e(bytes(sig))}),
        6,
    )
    mv(
        "manifest-expired",
        "manifest_error",
        "Checked the day after it expired.",
        signed,
        6,
        TODAY + datetime.timedelta(181),
    )
    mv("manifest-rolled-back", "manifest_error", "Version 7 when 8 is installed.", signed, 8)
    mv("manifest-replayed", "manifest_error", "The installed version, offered again.", signed, 7)
    other = manifest.sign_manifest(OTHER_ORG, 9, recipients, TODAY, TODAY, body_v=1)
    mv("manifest-wrong-org", "manifest_error", "Signed by another org key.", other, 6)
    body = json.loads(b64d(outer["body"], None, ManifestError, "body"))
    body["recipients"][0]["key_id"] = BOB.public.key_id.hex()
    bad_body = dump_json(body)
    forged = dump_json(
        {
            "type": "tipline-signed-key-manifest",
            "v": 1,
            "body": b64e(bad_body),
            "signature": b64e(ORG.sign(primitives.SIG_KEY_MANIFEST + bad_body)),
        }
    )
    mv(
        "manifest-key-id-mismatch",
        "manifest_error",
        "Validly signed, but a key id does not match its public key.",
        forged,
        6,
    )
    other_body = manifest.KeyManifest(
        7, TODAY, TODAY + datetime.timedelta(180), OTHER_ORG.public.public_key, tuple(recipients)
    ).to_json()
    mv(
        "manifest-names-other-org",
        "manifest_error",
        "Signed by this org key, but its body names another org key.",
        dump_json(
            {
                "type": "tipline-signed-key-manifest",
                "v": 1,
                "body": b64e(other_body),
                "signature": b64e(ORG.sign(primitives.SIG_KEY_MANIFEST + other_body)),
            }
        ),
        6,
    )
    mv(
        "manifest-future",
        "manifest_error",
        "Checked three days before it was issued.",
        signed,
        6,
        TODAY - datetime.timedelta(3),
    )


def manifests_v2() -> None:
    """Body v2: each entry names its staff account (null for a key made before accounts)."""
    alice = keys.RecipientPublic(ALICE.public.public_key, "Alice", "alice")
    bob = keys.RecipientPublic(BOB.public.public_key, "Bob", None)
    signed = manifest.sign_manifest(ORG, 8, [alice, bob], TODAY, TODAY + datetime.timedelta(180))
    org_pk = b64e(ORG.public.public_key)

    def entry(r: keys.RecipientPublic) -> dict[str, object]:
        return {
            "key_id": r.key_id.hex(),
            "public_key": b64e(r.public_key),
            "label": r.label,
            "account": r.account,
        }

    def signed_body(body: dict[str, object]) -> bytes:
        data = dump_json(body)
        return dump_json(
            {
                "type": "tipline-signed-key-manifest",
                "v": 1,
                "body": b64e(data),
                "signature": b64e(ORG.sign(primitives.SIG_KEY_MANIFEST + data)),
            }
        )

    def mv(name: str, outcome: str, comment: str, file: bytes) -> None:
        fields: dict[str, object] = {
            "org_public_key": org_pk,
            "today": TODAY.isoformat(),
            "installed_version": 7,
            "signed": b64e(file),
        }
        if outcome == "ok":
            fields["expected"] = {"version": 8, "recipients": [entry(alice), entry(bob)]}
        write(name, "manifest", outcome, comment, **fields)

    mv("manifest-v2-ok", "ok", "Body v2: Alice names account alice; Bob's is null.", signed)
    body = json.loads(b64d(json.loads(signed)["body"], None, ManifestError, "body"))
    missing = json.loads(json.dumps(body))
    del missing["recipients"][0]["account"]
    mv(
        "manifest-v2-missing-account",
        "manifest_error",
        "Validly signed body v2 whose first entry has no account member.",
        signed_body(missing),
    )
    upper = json.loads(json.dumps(body))
    upper["recipients"][0]["account"] = "Alice Smith"
    mv(
        "manifest-v2-bad-account",
        "manifest_error",
        "Validly signed body v2 whose account is not a staff account name.",
        signed_body(upper),
    )
    v3 = json.loads(json.dumps(body))
    v3["v"] = 3
    mv(
        "manifest-unknown-body-version",
        "manifest_error",
        "Validly signed body of version 3, which no reader knows.",
        signed_body(v3),
    )
    extra = json.loads(json.dumps(body))
    extra["v"] = 1
    mv(
        "manifest-v1-with-account",
        "manifest_error",
        "Validly signed body v1 whose entries carry v2's account member.",
        signed_body(extra),
    )


def key_requests() -> None:
    """Key requests (docs/SPEC.md §3.1). Read by the signing desk only, so Python only."""
    from nacl.signing import SigningKey

    signing = SigningKey(bytes(range(200, 232)))
    public = bytes(signing.verify_key.to_curve25519_public_key())

    def request(body: dict[str, object], key: SigningKey = signing) -> bytes:
        data = dump_json(body)
        sig = key.sign(primitives.SIG_KEY_REQUEST + data).signature
        return dump_json(
            {"type": "tipline-key-request", "v": 1, "body": b64e(data), "signature": b64e(sig)}
        )

    body: dict[str, object] = {
        "type": "tipline-key-request-body",
        "v": 1,
        "account": "alice",
        "label": "Alice Reporter",
        "public_key": b64e(public),
        "signing_key": b64e(bytes(signing.verify_key)),
        "created": TODAY.isoformat(),
    }
    good = request(body)

    def kv(name: str, outcome: str, comment: str, file: bytes) -> None:
        fields: dict[str, object] = {"request": b64e(file)}
        if outcome == "ok":
            fields["expected"] = {
                "account": "alice",
                "label": "Alice Reporter",
                "key_id": keys.key_id(public).hex(),
                "public_key": b64e(public),
            }
        write(name, "key_request", outcome, comment, **fields)

    kv("key-request-ok", "ok", "Alice's request, signed by the key her X25519 key is from.", good)
    half = good[: len(good) // 2]
    kv("key-request-truncated", "key_request_error", "The file cut in half.", half)
    outer = json.loads(good)
    tampered = dict(body, account="mallory")
    kv(
        "key-request-tampered",
        "key_request_error",
        "The body's account changed after signing (signature kept).",
        dump_json({**outer, "body": b64e(dump_json(tampered))}),
    )
    other = SigningKey(bytes(range(1, 33)))
    kv(
        "key-request-bad-self-signature",
        "key_request_error",
        "Signed by a different key than the one it names.",
        request(body, other),
    )
    stolen = dict(body, public_key=b64e(BOB.public.public_key))
    kv(
        "key-request-foreign-public-key",
        "key_request_error",
        "Validly signed, but names someone else's X25519 key (no proof of possession).",
        request(stolen),
    )
    kv(
        "key-request-carries-secret",
        "key_request_error",
        "A recipient secret key file offered as a request.",
        ALICE.to_json(),
    )
    secret_member = dict(body, secret_key=b64e(ALICE.secret_key))
    kv(
        "key-request-secret-member",
        "key_request_error",
        "A validly signed body that also carries a secret_key member.",
        request(secret_member),
    )
    kv(
        "key-request-oversize",
        "key_request_error",
        "A request padded past 4096 bytes.",
        request(dict(body, label="A" * 64)) + b" " * 5000,
    )


def triage_updates() -> None:
    """Signed triage updates (docs/SPEC.md §8.5): the envelope's message. Read by desks only,
    so Python only; the manifest check (is the writer an active key) is the desk's, not here."""
    from nacl.signing import SigningKey

    from tipline.desk import triage

    alice = SigningKey(bytes(range(200, 232)))  # the key of the key-request vectors
    mallory = SigningKey(bytes(range(232, 256)) + bytes(8))
    alice_pk = bytes(alice.verify_key.to_curve25519_public_key())
    alice_id = keys.key_id(alice_pk).hex()
    update = triage.Update(
        "0f" * 16,
        "1e" * 16,
        "2026-11-30T09:05:00Z",
        alice_id,
        (("status", "done"), ("star", True), ("tag:politics", False), ("note", "ask the mayor")),
    )
    body = update.encode().encode()

    def signed(body: bytes, key: SigningKey, prefix: bytes = primitives.SIG_TRIAGE) -> bytes:
        return dump_json(
            {
                "type": "tipline-signed-triage",
                "v": 1,
                "body": b64e(body),
                "signing_key": b64e(bytes(key.verify_key)),
                "signature": b64e(key.sign(prefix + body).signature),
            }
        )

    def tv(name: str, outcome: str, comment: str, data: bytes) -> None:
        fields: dict[str, object] = {"update": b64e(data)}
        if outcome == "ok":
            fields["expected"] = {**json.loads(body), "public_key": b64e(alice_pk)}
        write(name, "triage", outcome, comment, **fields)

    good = signed(body, alice)
    assert good.decode() == triage.sign_update(update, bytes(alice))
    tv("triage-ok", "ok", "Alice's update, signed by the key her X25519 key is from.", good)
    tv("triage-unsigned", "triage_error", "The update as desks wrote it before signatures.", body)
    altered = json.loads(good)
    altered["body"] = b64e(body.replace(b'"done"', b'"read"'))
    tv(
        "triage-altered-body",
        "triage_error",
        "Alice's signature, over a body changed after signing (status done to read).",
        dump_json(altered),
    )
    tv(
        "triage-other-writer",
        "triage_error",
        "Signed (validly) by Mallory's key, naming Alice's key id as its writer: the forgery of "
        "someone holding only the manifest.",
        signed(body, mallory),
    )
    shown = json.loads(signed(body, mallory))
    shown["signing_key"] = b64e(bytes(alice.verify_key))
    tv(
        "triage-borrowed-signing-key",
        "triage_error",
        "Alice's signing key shown, Mallory's signature.",
        dump_json(shown),
    )
    tv(
        "triage-key-request-prefix",
        "triage_error",
        "Alice's key, but signed over the key request prefix: not a triage signature.",
        signed(body, alice, primitives.SIG_KEY_REQUEST),
    )
    tv(
        "triage-no-prefix",
        "triage_error",
        "Alice's key, signed over the body alone.",
        signed(body, alice, b""),
    )
    tv(
        "triage-oversize",
        "triage_error",
        "One byte over the bound of the signed document, checked before parsing.",
        good + b" " * (triage.MAX_SIGNED_UPDATE + 1 - len(good)),
    )


def codenames() -> None:
    wl = load_wordlist()
    cases = [
        ("codename-ok", "abacus abdomen abdominal abide abiding ability ablaze"),
        (
            "codename-ok-normalised",
            "  Zoning\u00a0ZOOLOGY  zoom yo-yo t-shirt\tdrop-down felt-tip ",
        ),
        ("codename-ok-twelve-words", " ".join(wl.words[i * 600] for i in range(12))),
    ]
    for name, typed in cases:
        norm = codename.normalize(wl, typed)
        d = codename.derive(norm)
        write(
            name,
            "codename",
            "ok",
            "Derivations of a codename as typed.",
            codename=typed,
            expected={
                "normalized": norm,
                "login_token": b64e(d.login_token),
                "token_hash": b64e(d.token_hash),
                "reply_public_key": b64e(d.reply_public_key),
            },
        )
    for name, typed, why in [
        ("codename-too-short", "abacus abdomen abdominal abide abiding ability", "six words"),
        (
            "codename-unknown-word",
            "abacus abdomen abdominal abide abiding ability tipline",
            "a word not in the list",
        ),
        ("codename-too-many-words", " ".join(["abacus"] * 13), "thirteen words"),
    ]:
        write(name, "codename", "codename_error", f"Refused: {why}.", codename=typed)


def proofs_of_work() -> None:
    """Hashcash solutions (SPEC §10): the challenge's bytes are fixed here, since the MAC's key
    is each server's own; what both languages must agree on is the hash and the zero bits.
    """
    challenge = bytes([1, 12]) + (1893456000).to_bytes(8, "big") + bytes(range(16)) + bytes(32)
    nonce = pow_.solve(challenge, 12)
    digest = pow_.solution_hash(challenge, nonce)
    write(
        "pow-ok",
        "pow",
        "ok",
        "The first nonce, counting up from zero, whose hash starts with 12 zero bits.",
        challenge=b64e(challenge),
        difficulty=12,
        nonce=b64e(nonce),
        hash=b64e(digest),
    )
    short = next(
        n
        for n in (i.to_bytes(8, "big") for i in range(1 << 20))
        if pow_.leading_zero_bits(pow_.solution_hash(challenge, n)) == 11
    )
    write(
        "pow-one-bit-short",
        "pow",
        "pow_error",
        "Refused: the nonce's hash starts with 11 zero bits, one short of the 12 asked.",
        challenge=b64e(challenge),
        difficulty=12,
        nonce=b64e(short),
        hash=b64e(pow_.solution_hash(challenge, short)),
    )


if __name__ == "__main__":
    fresh = "--fresh" in sys.argv  # remake every vector's bytes, not only new and REMADE ones
    envelopes()
    manifests()
    manifests_v2()
    key_requests()
    triage_updates()
    codenames()
    proofs_of_work()
    names = {f"{d['name']}.json" for d in DOCS}
    for old in HERE.glob("*.json"):
        if old.name not in names:
            old.unlink()
    for doc in DOCS:
        finish(doc, fresh)
    print(f"wrote {len(list(HERE.glob('*.json')))} vectors to {HERE}")
