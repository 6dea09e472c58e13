"""The triage database keeps SQLite's temporary storage in memory (it once spilled decrypted
previews to /var/tmp/etilqs_*, unlinked at once): asserted on every connection the desk makes,
and watched under strace while a listing over 3,100 items runs, with a control that restores
SQLite's default and must be caught.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.watch import run_traced
from tipline.desk import store as store_module
from tipline.desk.store import Store
from tipline.desk.vault import Vault

from .conftest import PASS

ROOT = Path(__file__).resolve().parents[2]
MEMORY = 2  # what PRAGMA temp_store reads for MEMORY (SQLite's documentation)


def temp_store(store: Store) -> int:
    return int(store.db.execute("PRAGMA temp_store").fetchone()[0])


def test_every_desk_connection_keeps_temp_in_memory(vault_dir: Path) -> None:
    assert temp_store(Store()) == MEMORY
    assert temp_store(Store(Store().serialize())) == MEMORY  # a loaded database too
    with Vault.open(vault_dir, PASS) as vault:
        assert temp_store(vault.store) == MEMORY


def test_the_desk_makes_no_other_sqlite_connection() -> None:
    """Store is the only place the desk connects to SQLite; a new one must set the pragma too."""
    users = [
        p
        for p in (ROOT / "tipline" / "desk").rglob("*.py")
        if "sqlite3.connect" in p.read_text() or "sqlite3 import connect" in p.read_text()
    ]
    assert users == [ROOT / "tipline" / "desk" / "store.py"]
    assert store_module.TEMP_STORE_MEMORY == MEMORY


def probe(tmp_path: Path, *args: str) -> list[tuple[str, bytes]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done, trace = run_traced(
        [sys.executable, "-m", "tests.desk.spill_probe", *args],
        tmp_path / "strace.txt",
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0 and done.stdout.strip() == "3100", done.stderr
    return trace.leaks([b"SPILLMARKER", b"SPILLNAME"])


def test_a_big_listing_writes_nothing(tmp_path: Path) -> None:
    assert probe(tmp_path) == []


def test_control_default_temp_store_spills_and_is_seen(tmp_path: Path) -> None:
    leaks = probe(tmp_path, "default")
    assert leaks and all("etilqs_" in path for path, _ in leaks), leaks
