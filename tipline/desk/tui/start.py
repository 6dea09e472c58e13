"""Starting the full-screen view: Textual is imported while the vault is unlocked.

Importing Textual and the view's modules is a quarter of a second of Python; unlocking the
vault (Argon2id, then decrypting the triage database) is libsodium and SQLite, which let other
threads run. Done side by side on a machine with two cores, the inbox is drawn sooner
(bench/desk.py times it: the goal is within 1 s of start at 100,000 items).
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..vault import Vault

if TYPE_CHECKING:
    from .app import DeskApp


def open_view(path: Path, passphrase: str, out_folder: Path | None = None) -> DeskApp:
    """Unlock the vault at ``path`` and return the TUI over it (``app.vault``; the caller
    closes it). A wrong passphrase raises as ``Vault.open`` does, and nothing is left running."""
    loader = threading.Thread(target=_load, name="tipline-load-view", daemon=True)
    loader.start()
    try:
        vault = Vault.open(path, passphrase)
    finally:
        loader.join()
    try:
        from .app import make_app  # already loaded by the thread above

        return make_app(vault, out_folder)
    except BaseException:
        vault.close()
        raise


def _load() -> None:
    # An error is raised again where the caller imports the module on its own thread.
    # A plain import, not importlib: the desk's import rule (tests/test_architecture.py) bans
    # importlib so that every module the desk can load is visible to the AST walk.
    with contextlib.suppress(BaseException):
        from . import app  # noqa: F401
