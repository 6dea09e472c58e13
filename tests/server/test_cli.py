"""``tipline-server install-manifest`` and ``db upgrade``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import CliResult, Keys


def test_install_and_rollback(
    tmp_path: Path, org_keys: Keys, run_cli: Callable[..., CliResult]
) -> None:
    upgraded = run_cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    v1, v2 = tmp_path / "v1.json", tmp_path / "v2.json"
    v1.write_bytes(org_keys.signed(1))
    v2.write_bytes(org_keys.signed(2, org_keys.alice, org_keys.bob))
    first = run_cli("install-manifest", "--yes", str(v1))
    assert first.returncode == 0 and "installed key manifest version 1" in first.stderr
    second = run_cli("install-manifest", "--yes", str(v2))
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("  kept ") == 1 and second.stderr.count("  added ") == 1
    rollback = run_cli("install-manifest", "--yes", str(v1))
    assert rollback.returncode == 1
    assert rollback.stderr.startswith("tipline-server: the key manifest was refused")
    assert "not newer" in rollback.stderr and "Traceback" not in rollback.stderr


@pytest.mark.parametrize("content", [b"{}", b"not json", b"x" * 200_000])
def test_bad_manifest_files(
    tmp_path: Path, run_cli: Callable[..., CliResult], content: bytes
) -> None:
    run_cli("db", "upgrade")
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    result = run_cli("install-manifest", "--yes", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr
