"""Run every shared vector in tests/vectors/ through the Python readers (docs/SPEC.md §6)."""

from __future__ import annotations

import datetime
import io
import json
import re
import traceback
from pathlib import Path
from typing import Any

import pytest

from tipline.crypto import codename, envelope, keyrequest, manifest, proof_of_work
from tipline.crypto.encoding import b64d, b64e
from tipline.crypto.errors import (
    CodenameError,
    EnvelopeContentError,
    EnvelopeFormatError,
    EnvelopeOpenError,
    KeyRequestError,
    ManifestError,
    TiplineError,
)
from tipline.desk import triage

VECTORS = sorted((Path(__file__).parent / "vectors").glob("*.json"))
ERRORS: dict[str, type[TiplineError]] = {
    "format_error": EnvelopeFormatError,
    "open_error": EnvelopeOpenError,
    "content_error": EnvelopeContentError,
    "manifest_error": ManifestError,
    "codename_error": CodenameError,
    "key_request_error": KeyRequestError,
    "pow_error": proof_of_work.PowError,
    "triage_error": triage.TriageError,
}


def _b(text: str) -> bytes:
    return b64d(text, None, TiplineError, "vector field")


def test_every_outcome_is_covered() -> None:
    docs = [json.loads(p.read_text()) for p in VECTORS]
    outcomes = {(d["kind"], d["outcome"]) for d in docs}
    assert len(VECTORS) >= 30
    for kind, outcome in [
        ("envelope", "ok"),
        ("envelope", "format_error"),
        ("envelope", "open_error"),
        ("envelope", "content_error"),
        ("manifest", "ok"),
        ("manifest", "manifest_error"),
        ("codename", "ok"),
        ("codename", "codename_error"),
        ("key_request", "ok"),
        ("key_request", "key_request_error"),
        ("pow", "ok"),
        ("pow", "pow_error"),
        ("triage", "ok"),
        ("triage", "triage_error"),
    ]:
        assert (kind, outcome) in outcomes


def _run_envelope(doc: dict[str, Any]) -> None:
    outputs: list[io.BytesIO] = []

    def sink(index: int, attachment: object) -> io.BytesIO:
        outputs.append(io.BytesIO())
        return outputs[-1]

    identities = [_b(s) for s in doc["identities"]]
    inner = envelope.open_envelope(io.BytesIO(_b(doc["envelope"])), identities, sink)
    assert json.loads(inner.encode()) == doc["expected"]["inner"]
    assert [b64e(o.getvalue()) for o in outputs] == doc["expected"]["attachments"]


def _run_manifest(doc: dict[str, Any]) -> None:
    result = manifest.verify_manifest(
        _b(doc["signed"]),
        _b(doc["org_public_key"]),
        datetime.date.fromisoformat(doc["today"]),
        doc["installed_version"],
    )
    assert result.manifest.version == doc["expected"]["version"]
    got = [
        {
            "key_id": r.key_id.hex(),
            "public_key": b64e(r.public_key),
            "label": r.label,
            "account": r.account,
        }
        for r in result.manifest.recipients
    ]
    # v1 vectors predate accounts: their entries have none to compare
    want = [{"account": None, **e} for e in doc["expected"]["recipients"]]
    assert got == want


def _run_key_request(doc: dict[str, Any]) -> None:
    request = keyrequest.read_request(_b(doc["request"]))
    assert {
        "account": request.public.account,
        "label": request.public.label,
        "key_id": request.key_id,
        "public_key": b64e(request.public.public_key),
    } == doc["expected"]


def _run_triage(doc: dict[str, Any]) -> None:
    signed = triage.read_signed(_b(doc["update"]).decode())
    got = {**json.loads(signed.update.encode()), "public_key": b64e(signed.public_key)}
    assert got == doc["expected"]


def _run_codename(doc: dict[str, Any], wordlist: codename.Wordlist) -> None:
    norm = codename.normalize(wordlist, doc["codename"])
    derived = codename.derive(norm)
    assert norm == doc["expected"]["normalized"]
    assert b64e(derived.login_token) == doc["expected"]["login_token"]
    assert b64e(derived.token_hash) == doc["expected"]["token_hash"]
    assert b64e(derived.reply_public_key) == doc["expected"]["reply_public_key"]


def _run_pow(doc: dict[str, Any]) -> None:
    challenge, nonce = _b(doc["challenge"]), _b(doc["nonce"])
    assert b64e(proof_of_work.solution_hash(challenge, nonce)) == doc["hash"]
    proof_of_work.check(challenge, nonce, doc["difficulty"])


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector(path: Path, wordlist: codename.Wordlist) -> None:
    doc = json.loads(path.read_text())
    run = {
        "envelope": _run_envelope,
        "manifest": _run_manifest,
        "key_request": _run_key_request,
        "triage": _run_triage,
        "codename": lambda d: _run_codename(d, wordlist),
        "pow": _run_pow,
    }[doc["kind"]]
    if doc["outcome"] == "ok":
        run(doc)
    else:
        with pytest.raises(ERRORS[doc["outcome"]]) as info:
            run(doc)
        assert type(info.value) is ERRORS[doc["outcome"]]
        if doc["outcome"] == "open_error":
            # No detail to read (every open error looks the same): the raising line must be the
            # check the vector is named for.
            assert f"check: {doc['check']}" in raise_site(info.value), raise_site(info.value)
        else:
            assert info.value.detail == doc["detail"]


def raise_site(error: BaseException) -> str:
    """The source line that raised ``error``."""
    return traceback.extract_tb(error.__traceback__)[-1].line or ""


ENVELOPE_PY = Path(envelope.__file__)


def test_every_open_check_has_a_vector() -> None:
    # Every `check:` raise site of the opener is named by a vector (the stream-header one cannot
    # be reached: libsodium accepts any 24-byte stream header), so removing any of them fails one.
    sites = set(re.findall(r"# check: ([a-z-]+)", ENVELOPE_PY.read_text())) - {"stream-header"}
    named = {json.loads(p.read_text()).get("check") for p in VECTORS}
    assert sites and sites <= named, sites - named


def test_open_errors_all_read_the_same() -> None:
    messages = set()
    for path in VECTORS:
        doc = json.loads(path.read_text())
        if doc["outcome"] != "open_error":
            continue
        with pytest.raises(EnvelopeOpenError) as info:
            _run_envelope(doc)
        messages.add(str(info.value))
    assert messages == {
        "the envelope could not be opened: it is damaged, truncated, "
        "or not sealed to any of your keys"
    }
