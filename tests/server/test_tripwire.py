"""The runtime tripwire (tripwire.py) catches server code that opens an envelope or holds a
journalist's key, by every route the static rule might miss, and lets the sanctioned reader and
the tests through. Each violation is planted in a module that calls itself ``tipline.server.*``.
"""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest

from tipline.crypto import keys
from tipline.crypto.codename import derive, generate, normalize
from tipline.crypto.envelope import open_envelope, seal
from tipline.crypto.inner import Inner
from tipline.wordlist import load_wordlist

from . import tripwire


def _sealed(*recipients: bytes) -> bytes:
    out = io.BytesIO()
    seal(out, list(recipients), Inner(kind="reply", sealed_by="desk", message="hi"), [])
    return out.getvalue()


def _plant(code: str, **names: Any) -> dict[str, Any]:
    """Run ``code`` as if it were a module of the server; return its namespace."""
    namespace: dict[str, Any] = {"__name__": "tipline.server.planted", **names}
    exec(compile(code, "tipline/server/planted.py", "exec"), namespace)
    return namespace


def _caught(tripped: list[str], call: Any, expected: str) -> None:
    with pytest.raises(AssertionError, match="tripwire"):
        call()
    assert tripped and expected in tripped[-1], tripped
    assert tripped[-1].startswith("tipline.server.planted") or "no test" in tripped[-1]
    tripped.clear()  # seen: the test itself must not fail for it


PLANTS = {
    "open_envelope by name": (
        "from tipline.crypto.envelope import open_envelope\n"
        "def run(blob, key):\n    return open_envelope(blob, [key])\n",
        "open_envelope",
    ),
    "open_envelope as an attribute": (
        "from tipline.crypto import envelope\n"
        "def run(blob, key):\n    return envelope.open_envelope(blob, [key])\n",
        "open_envelope",
    ),
    "open_envelope through importlib": (
        "import importlib\n"
        "def run(blob, key):\n"
        "    module = importlib.import_module('tipline.crypto.envelope')\n"
        "    return module.open_envelope(blob, [key])\n",
        "open_envelope",
    ),
    "raw crypto_box_seal_open": (
        "import nacl.bindings\n"
        "from tipline.crypto import format as fmt\n"
        "from nacl.public import PrivateKey\n"
        "def run(blob, key):\n"
        "    header = fmt.parse_header(blob.read())\n"
        "    pk = bytes(PrivateKey(key).public_key)\n"
        "    return nacl.bindings.crypto_box_seal_open(header.stanzas[0].sealed_key, pk, key)\n",
        "crypto_box_seal_open",
    ),
    "SealedBox.decrypt": (
        "from nacl.public import PrivateKey, SealedBox\n"
        "from tipline.crypto import format as fmt\n"
        "def run(blob, key):\n"
        "    header = fmt.parse_header(blob.read())\n"
        "    return SealedBox(PrivateKey(key)).decrypt(header.stanzas[0].sealed_key)\n",
        "crypto_box_seal_open",
    ),
    "a journalist key generated": (
        "from tipline.crypto import keys\n"
        "def run(blob, key):\n    return keys.RecipientSecret.generate('x')\n",
        "RecipientSecret",
    ),
    "a journalist key loaded": (
        "from tipline.crypto import keys\n"
        "def run(blob, key):\n    return keys.RecipientSecret(key, 'x')\n",
        "RecipientSecret",
    ),
    "a locked key unlocked": (
        "from tipline.crypto.keys import unlock\n"
        "def run(blob, key):\n    return unlock(b'{}', 'passphrase')\n",
        "keys.unlock",
    ),
}


@pytest.mark.parametrize("name", list(PLANTS))
def test_a_planted_server_call_trips(tripwire: list[str], name: str) -> None:
    code, expected = PLANTS[name]
    alice = keys.RecipientSecret.generate("Alice")  # a test may hold a key
    blob = _sealed(alice.public.public_key)
    run = _plant(code)["run"]
    _caught(tripwire, lambda: run(io.BytesIO(blob), alice.secret_key), expected)


def test_a_thread_started_on_the_opener_trips(tripwire: list[str]) -> None:
    # No server frame on the thread's stack at all: the wire still trips (no sanctioned caller).
    alice = keys.RecipientSecret.generate("Alice")
    blob = _sealed(alice.public.public_key)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            open_envelope(io.BytesIO(blob), [alice.secret_key])
        except BaseException as exc:
            errors.append(exc)

    run = _plant(
        "import threading\n"
        "def run(target):\n"
        "    t = threading.Thread(target=target)\n    t.start()\n    t.join()\n"
    )["run"]
    # The thread's target is this test's function: allowed (a test opened it).
    run(target)
    assert not errors and not tripwire
    # The same thread started on the opener itself: nothing but threading on the stack.
    thread = threading.Thread(target=open_envelope, args=(io.BytesIO(blob), [alice.secret_key]))
    caught: list[BaseException] = []
    hook = threading.excepthook
    threading.excepthook = lambda args: caught.append(args.exc_value)  # type: ignore[assignment,arg-type]
    try:
        thread.start()
        thread.join()
    finally:
        threading.excepthook = hook
    assert caught and "tripwire" in str(caught[0])
    assert tripwire and "no test or sanctioned caller" in tripwire[0]
    tripwire.clear()


def test_the_sanctioned_reader_and_tests_pass(tripwire: list[str]) -> None:
    # Positive control: the no-JS reply reader, called from a server frame, opens a reply to
    # the source's codename; a test opens what it sealed. Neither trips.
    codename = generate(load_wordlist())
    derived = derive(normalize(load_wordlist(), codename))
    blob = _sealed(derived.reply_public_key)
    run = _plant(
        "from tipline import source_replies\n"
        "def run(codename, blob):\n"
        "    return source_replies.open_replies(codename, [('r', 0, blob)])\n"
    )["run"]
    opened = run(codename, io.BytesIO(blob))
    assert opened[0].message == "hi"
    assert open_envelope(io.BytesIO(blob), [derived.reply_secret_key]).message == "hi"
    assert tripwire == []


def test_the_wire_is_installed() -> None:
    # If the package fixture stopped wrapping, every plant above would open quietly.
    from tipline import source_replies
    from tipline.crypto import envelope

    for fn in (envelope.open_envelope, source_replies.open_envelope, keys.unlock):
        assert hasattr(fn, "__tripwire_original__"), fn
    assert tripwire.violations == []


def test_a_swallowed_trip_is_still_recorded(tripwire: list[str]) -> None:
    # Server code that catches the AssertionError (an error handler, a broad except) does not
    # hide the call: it stays recorded, and the `tripwire` fixture fails the test at teardown.
    alice = keys.RecipientSecret.generate("Alice")
    blob = _sealed(alice.public.public_key)
    run = _plant(
        "from tipline.crypto.envelope import open_envelope\n"
        "def run(blob, key):\n"
        "    try:\n        return open_envelope(blob, [key])\n"
        "    except Exception:\n        return None\n"
    )["run"]
    assert run(io.BytesIO(blob), alice.secret_key) is None
    assert len(tripwire) == 1 and "tipline.server.planted" in tripwire[0]
    tripwire.clear()
