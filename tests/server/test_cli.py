"""``tipline-server install-manifest`` and ``db upgrade``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tipline.crypto.encoding import b64e
from tipline.server.cli import main

from .conftest import Keys


@dataclass
class Result:
    returncode: int
    stderr: str


@pytest.fixture
def run(
    tmp_path: Path,
    org_keys: Keys,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_database: None,
) -> Callable[..., Result]:
    """Run ``tipline-server`` in this process, as the entry point does (exit code, stderr)."""
    monkeypatch.setenv("TIPLINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TIPLINE_ORG_PUBLIC_KEY", b64e(org_keys.org.public.public_key))
    monkeypatch.setenv("TIPLINE_DATABASE_URL", database_url)

    def call(*args: str) -> Result:
        monkeypatch.setattr(sys, "argv", ["tipline-server", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = int(exc.code or 0)
        return Result(code, capsys.readouterr().err)

    return call


def test_install_and_rollback(tmp_path: Path, org_keys: Keys, run: Any) -> None:
    upgraded = run("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    v1, v2 = tmp_path / "v1.json", tmp_path / "v2.json"
    v1.write_bytes(org_keys.signed(1))
    v2.write_bytes(org_keys.signed(2, org_keys.alice, org_keys.bob))
    first = run("install-manifest", "--yes", str(v1))
    assert first.returncode == 0 and "installed key manifest version 1" in first.stderr
    second = run("install-manifest", "--yes", str(v2))
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("  kept ") == 1 and second.stderr.count("  added ") == 1
    rollback = run("install-manifest", "--yes", str(v1))
    assert rollback.returncode == 1
    assert rollback.stderr.startswith("tipline-server: the key manifest was refused")
    assert "not newer" in rollback.stderr and "Traceback" not in rollback.stderr


@pytest.mark.parametrize("content", [b"{}", b"not json", b"x" * 200_000])
def test_bad_manifest_files(tmp_path: Path, run: Any, content: bytes) -> None:
    run("db", "upgrade")
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    result = run("install-manifest", "--yes", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr
