"""The runtime half of "the server never opens an envelope" (tests/test_architecture.py is the
static half): while the server's tests run, the functions that open an envelope or hold a
recipient secret key are wrapped, and each call looks at the stack that made it.

Wrapped: ``tipline.crypto.envelope.open_envelope`` and ``rewrap`` (rebound in every loaded module
that imported them by name), ``nacl.bindings.crypto_box_seal_open`` (what ``SealedBox.decrypt``
calls, so also a raw call that skips the envelope code), ``RecipientSecret.__init__`` (every way
to get a journalist's key, generated or loaded) and ``keys.unlock``.

Walking out from the call, the first frame that decides is:
- a test (``tests.*``): allowed, a test may open what it sealed;
- ``tipline.source_replies``, for the openers only: the sanctioned no-JS reply reader, which
  derives its key from the codename typed in the request (it may not hold a RecipientSecret);
- ``tipline.demo``, for keys only: the demo key set writes demo keys, never for real use;
- anything else in ``tipline`` (the server, bundle, wordlist): a violation;
- no deciding frame at all (a thread started on the function itself): a violation, unless the
  stack passed through the desk (desk tests that share the process).
A violation raises ``AssertionError`` at the call and is recorded; the ``tripwire`` fixture
fails the test in which it happened even if the server swallowed the exception.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import nacl.bindings
import pytest

from tipline.crypto import envelope, keys

OPENERS = "opens an envelope"
KEYS = "holds a recipient secret key"

# The sanctioned no-JS reply reader (codename-derived key) and the demo key set.
SANCTIONED = {("tipline.source_replies", OPENERS), ("tipline.demo", KEYS)}

violations: list[str] = []
_lock = threading.Lock()


def _verdict(frame: FrameType | None, what: str) -> str | None:
    """None if the call is allowed, else the module that made it."""
    through_desk = False
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if name.startswith("tests.") or name == "conftest":
            return None
        if name.startswith("tipline.desk"):
            through_desk = True
        elif (name, what) in SANCTIONED:
            return None
        elif name.startswith("tipline") and not name.startswith("tipline.crypto"):
            return f"{name}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back
    return None if through_desk else "a frame with no test or sanctioned caller"


def _wrap(original: Callable[..., Any], label: str, what: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        caller = _verdict(sys._getframe(1), what)
        if caller is not None:
            message = f"{caller} {what}: {label}"
            with _lock:
                violations.append(message)
            raise AssertionError(f"tripwire: {message}")
        return original(*args, **kwargs)

    guarded.__tripwire_original__ = original  # type: ignore[attr-defined]
    return guarded


def _rebind(original: object, replacement: object) -> list[tuple[object, str]]:
    """Replace ``original`` in every loaded module that holds it; return what was replaced."""
    done = []
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            if value is original:
                setattr(module, attr, replacement)
                done.append((module, attr))
    return done


@pytest.fixture(scope="package", autouse=True)
def tripwire_installed() -> Iterator[None]:
    """Wrap the openers and key holders for the duration of the server's tests."""
    undo: list[tuple[object, str, object]] = []
    for original, label, what in (
        (envelope.open_envelope, "open_envelope", OPENERS),
        (envelope.rewrap, "rewrap", OPENERS),
        (nacl.bindings.crypto_box_seal_open, "crypto_box_seal_open", OPENERS),
        (keys.unlock, "keys.unlock", KEYS),
    ):
        guarded = _wrap(original, label, what)
        undo += [(m, a, original) for m, a in _rebind(original, guarded)]
    init = keys.RecipientSecret.__init__
    keys.RecipientSecret.__init__ = _wrap(init, "RecipientSecret", KEYS)  # type: ignore[method-assign]
    undo.append((keys.RecipientSecret, "__init__", init))
    try:
        yield
    finally:
        for holder, attr, original in reversed(undo):
            setattr(holder, attr, original)


@pytest.fixture(autouse=True)
def tripwire() -> Iterator[list[str]]:
    """Fail the test if anything tripped the wire during it (even if it was caught)."""
    with _lock:
        violations.clear()
    yield violations
    with _lock:
        found, violations[:] = list(violations), []
    if found:
        pytest.fail("server code reached a decryption or a secret key: " + "; ".join(found))
