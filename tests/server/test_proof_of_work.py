"""The proof-of-work before an upload (tipline/server/proof_of_work.py, SPEC §10): off by default
and then invisible; when on, a forged, expired, replayed or too-easy challenge or a wrong nonce
is refused with a clear message, and each refusal has its control (the same request made right
gets through). The browser's own solver is run in node for one round trip."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict
from werkzeug.test import encode_multipart

from tipline.crypto import format as fmt
from tipline.crypto import proof_of_work as hashcash
from tipline.crypto.codename import derive, generate
from tipline.crypto.encoding import b64d, b64e
from tipline.crypto.errors import TiplineError
from tipline.server import db, proof_of_work, settings
from tipline.server.limits import limits
from tipline.server.models import Submission
from tipline.wordlist import load_wordlist

from .conftest import Keys, csrf_token, sealed_submission
from .test_limits import redis_uri  # noqa: F401  (a fixture: a throwaway redis-server)

ROOT = Path(__file__).resolve().parents[2]


def _pow_app(app_factory: Any, mode: str = "on", **extra: Any) -> Flask:
    app: Flask = app_factory(POW_DIFFICULTY=8, **extra)
    with app.test_request_context():
        settings.save(db.session(), settings.Settings(pow=mode))
    return app


def _start(client: FlaskClient, keys: Keys, **proof: str) -> Any:
    """Start a first-time source's upload, as the page does, with ``proof``'s fields."""
    derived = derive(generate(load_wordlist()))
    envelope = sealed_submission(
        [keys.alice.public.public_key], "tip", {}, derived.reply_public_key
    )
    body = {
        "manifest_version": 1,
        "header": b64e(envelope[: fmt.header_size(1)]),
        "size": len(envelope),
        "login_token": b64e(derived.login_token),
        "reply_public_key": b64e(derived.reply_public_key),
        **proof,
    }
    return client.post(
        "/api/source/uploads", json=body, headers={"X-CSRFToken": csrf_token(client)}
    )


def _asked(client: FlaskClient) -> dict[str, Any]:
    reply = client.get("/api/source/pow")
    assert reply.status_code == 200
    found: dict[str, Any] = reply.json or {}
    return found


def _solved(client: FlaskClient) -> dict[str, str]:
    asked = _asked(client)
    challenge = b64d(asked["challenge"], 58, TiplineError, "challenge")
    nonce = hashcash.solve(challenge, asked["difficulty"])
    return {"pow_challenge": asked["challenge"], "pow_nonce": b64e(nonce)}


def _refusal(reply: Any) -> str:
    assert reply.status_code == 403, reply.text
    kind: str = reply.json["pow"]
    assert reply.json["error"]  # a sentence for the source
    return kind


def test_off_by_default_and_invisible(app: Flask, org_keys: Keys) -> None:
    """Off: no challenge is issued, the page is told not to fetch one, an upload needs none.
    The control: switched on, the same request is refused for want of one."""
    client = app.test_client()
    assert _asked(client) == {"pow": False}
    assert 'data-pow="no"' in client.get("/submit").text
    assert _start(client, org_keys).status_code == 201
    with app.test_request_context():
        settings.save(db.session(), settings.Settings(pow="on"))
    assert 'data-pow="yes"' in client.get("/submit").text
    assert _refusal(_start(client, org_keys)) == "PowMissingError"


def test_a_solution_is_accepted_once(app_factory: Any, org_keys: Keys) -> None:
    """A valid solution starts the upload; sent again it is refused as replayed."""
    app = _pow_app(app_factory)
    client = app.test_client()
    asked = _asked(client)
    assert asked["pow"] is True and asked["difficulty"] == 8
    assert asked["expires"] > time.time() + proof_of_work.TTL_SECONDS - 10
    proof = _solved(client)
    assert _start(client, org_keys, **proof).status_code == 201
    assert _refusal(_start(client, org_keys, **proof)) == "PowReplayedError"
    assert _start(client, org_keys, **_solved(client)).status_code == 201  # a new one: fine


def test_a_forged_challenge_is_refused(app_factory: Any, org_keys: Keys) -> None:
    """A changed difficulty byte (solved honestly at 0 bits) or a flipped tag bit is refused;
    the control is the untouched challenge with its solution."""
    app = _pow_app(app_factory)
    client = app.test_client()
    proof = _solved(client)
    raw = bytearray(b64d(proof["pow_challenge"], 58, TiplineError, "challenge"))
    easier = bytes(raw[:1]) + b"\x00" + bytes(raw[2:])
    forged = {"pow_challenge": b64e(easier), "pow_nonce": b64e(hashcash.solve(easier, 0))}
    assert _refusal(_start(client, org_keys, **forged)) == "PowError"
    raw[-1] ^= 1
    flipped = {"pow_challenge": b64e(bytes(raw)), "pow_nonce": proof["pow_nonce"]}
    assert _refusal(_start(client, org_keys, **flipped)) == "PowError"
    assert _refusal(_start(client, org_keys, pow_challenge="AAAA", pow_nonce="AAAA")) == "PowError"
    assert _start(client, org_keys, **proof).status_code == 201


def test_a_challenge_from_another_key_is_refused(app_factory: Any, org_keys: Keys) -> None:
    """A tip line with another SECRET_KEY cannot mint challenges for this one."""
    other = _pow_app(app_factory, SECRET_KEY="k" * 40, install=False)
    app = _pow_app(app_factory, SECRET_KEY="s" * 40)
    proof = _solved(other.test_client())
    assert _refusal(_start(app.test_client(), org_keys, **proof)) == "PowError"
    assert _start(app.test_client(), org_keys, **_solved(app.test_client())).status_code == 201


def test_an_expired_challenge_is_refused(app_factory: Any, org_keys: Keys) -> None:
    """Issued more than its lifetime ago: refused; issued just now: accepted."""
    app = _pow_app(app_factory)
    client = app.test_client()
    for age, expected in ((proof_of_work.TTL_SECONDS + 1, 403), (1, 201)):
        with app.test_request_context():
            issued = proof_of_work.issue(now=time.time() - age)
        challenge = b64d(issued.text, 58, TiplineError, "challenge")
        proof = {"pow_challenge": issued.text, "pow_nonce": b64e(hashcash.solve(challenge, 8))}
        reply = _start(client, org_keys, **proof)
        assert reply.status_code == expected, reply.text
        if expected == 403:
            assert reply.json["pow"] == "PowExpiredError"


def test_a_nonce_short_of_the_difficulty_is_refused(app_factory: Any, org_keys: Keys) -> None:
    """A nonce whose hash has fewer zero bits than the challenge asks is refused (the control:
    the first nonce that has enough)."""
    app = _pow_app(app_factory)
    client = app.test_client()
    asked = _asked(client)
    challenge = b64d(asked["challenge"], 58, TiplineError, "challenge")
    short = next(
        n
        for n in (i.to_bytes(8, "big") for i in range(1 << 16))
        if hashcash.leading_zero_bits(hashcash.solution_hash(challenge, n)) == 7
    )
    proof = {"pow_challenge": asked["challenge"], "pow_nonce": b64e(short)}
    assert _refusal(_start(client, org_keys, **proof)) == "PowError"
    proof["pow_nonce"] = b64e(hashcash.solve(challenge, 8))
    assert _start(client, org_keys, **proof).status_code == 201


def test_a_challenge_easier_than_asked_now_is_refused(app_factory: Any, org_keys: Keys) -> None:
    """Issued at 4 bits, checked when 8 are asked (more than SLACK below): refused as too easy;
    issued at 6 (within SLACK): accepted."""
    app = _pow_app(app_factory)
    client = app.test_client()
    for level, expected in ((4, 403), (6, 201)):
        app.config["POW_DIFFICULTY"] = level
        proof = _solved(client)
        app.config["POW_DIFFICULTY"] = 8
        reply = _start(client, org_keys, **proof)
        assert reply.status_code == expected, reply.text
        if expected == 403:
            assert reply.json["pow"] == "PowTooEasyError"


def test_auto_raises_the_difficulty_with_load(app_factory: Any, org_keys: Keys) -> None:
    """auto: AUTO_MIN with no load, then linear in the uploads started this window, capped at
    POW_MAX_DIFFICULTY; ``on`` ignores the load (the control)."""
    app = _pow_app(app_factory, "auto", RATELIMIT_ENABLED=True, RATELIMIT_SUBMIT="10 per minute")
    client = app.test_client()
    with app.app_context():
        limits().reset()
    assert _asked(client)["difficulty"] == proof_of_work.AUTO_MIN
    assert _start(client, org_keys, **_solved(client)).status_code == 201
    with app.app_context():
        for _ in range(4):
            limits().spend("submission")
    assert _asked(client)["difficulty"] == 8 + (20 - 8) * 5 // 10  # 14
    with app.app_context():
        for _ in range(5):
            limits().spend("submission")
    assert _asked(client)["difficulty"] == 20
    with app.test_request_context():
        settings.save(db.session(), settings.Settings(pow="on"))
    assert _asked(client)["difficulty"] == 8


def test_spent_challenges_are_shared_by_apps_on_one_storage(
    app_factory: Any,
    org_keys: Keys,
    redis_uri: str,  # noqa: F811
) -> None:
    """Two apps (as two workers or two app servers) on one Redis: a solution spent through the
    first is refused by the second. The control: on memory:// each remembers only its own."""
    for round, (storage, expected) in enumerate(((redis_uri, 403), ("memory://", 201))):
        first = _pow_app(app_factory, LIMITS_STORAGE=storage, install=round == 0)
        second = _pow_app(app_factory, LIMITS_STORAGE=storage, install=False)
        proof = _solved(first.test_client())
        assert _start(first.test_client(), org_keys, **proof).status_code == 201
        assert _start(second.test_client(), org_keys, **proof).status_code == expected, storage


def test_the_browsers_solver_is_accepted(app_factory: Any, org_keys: Keys) -> None:
    """static/js/pow.js, run in node, solves a challenge the server issued at the default
    difficulty (16 bits), and the server starts the upload with it."""
    if shutil.which("node") is None:
        pytest.fail("node is not installed")
    app = _pow_app(app_factory)
    app.config["POW_DIFFICULTY"] = 16
    client = app.test_client()
    asked = _asked(client)
    assert asked["difficulty"] == 16
    done = subprocess.run(
        ["node", str(ROOT / "tests/js/tools/pow.mjs"), asked["challenge"], "16"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    nonce = json.loads(done.stdout)["nonce"]
    proof = {"pow_challenge": asked["challenge"], "pow_nonce": nonce}
    assert _start(client, org_keys, **proof).status_code == 201


def _form(client: FlaskClient, message: str, **proof: str) -> Any:
    """The no-JS form, posted as a browser at Safest would (with ``proof`` if any)."""
    boundary, body = encode_multipart(
        MultiDict({"csrf_token": csrf_token(client), **proof, "message": message})
    )
    return client.post(
        "/submit", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def _stored(app: Flask) -> int:
    with app.app_context():
        return int(db.session().scalar(select(func.count()).select_from(Submission)) or 0)


def test_the_form_is_gated_only_by_its_own_switch(app_factory: Any) -> None:
    """The proof-of-work on: the no-JS form needs none (and the page says nothing of it);
    with the admin's form switch on too, the page says it needs JavaScript and WebAssembly and
    a form without a solution is refused with the message kept, a solved one is stored once,
    and its replay is refused. With the proof-of-work off, the switch alone gates nothing."""
    app = _pow_app(app_factory)
    client = app.test_client()
    page = client.get("/submit").text
    assert 'data-pow-form="no"' in page and "pow-form-notice" not in page
    assert _form(client, "ungated").status_code == 200 and _stored(app) == 1
    with app.test_request_context():
        settings.save(db.session(), settings.Settings(pow="on", pow_form=True))
    client = app.test_client()
    page = client.get("/submit").text
    assert 'data-pow-form="yes"' in page and 'id="pow-form-notice"' in page
    assert page.index('name="pow_nonce"') < page.index('name="files"')
    refused = _form(client, "Form-Marker-5d2e")
    assert refused.status_code == 400 and _stored(app) == 1
    assert "small check" in refused.text and "Form-Marker-5d2e" in refused.text
    proof = _solved(client)
    stored = _form(client, "solved", **proof)
    assert stored.status_code == 200 and _stored(app) == 2
    again = app.test_client()
    assert "already used" in _form(again, "replayed", **proof).text and _stored(app) == 2
    with app.test_request_context():
        settings.save(db.session(), settings.Settings(pow="off", pow_form=True))
    assert _form(app.test_client(), "switch alone").status_code == 200 and _stored(app) == 3
