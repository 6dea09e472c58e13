"""The test set-up scripts in tools/: they must work on a machine that has none of it running."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_with_postgres_starts_a_throwaway_cluster_when_none_answers(tmp_path: Path) -> None:
    """Nothing listens at the URL: the script makes a cluster, the command reaches it, its exit
    status comes back, and nothing of the cluster is left afterwards."""
    probe = (
        'echo "$TIPLINE_TEST_POSTGRES_URL"; '
        'psql "$TIPLINE_TEST_POSTGRES_URL" -tAc "select current_setting(\'data_directory\')"; '
        "exit 7"
    )
    env = {
        **os.environ,
        "TIPLINE_TEST_POSTGRES_URL": f"postgresql://postgres@127.0.0.1:{_unused_port()}/postgres",
    }
    result = subprocess.run(
        [str(ROOT / "tools/with-postgres.sh"), "sh", "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 7, result.stderr
    url, data_dir = result.stdout.split()
    assert url != env["TIPLINE_TEST_POSTGRES_URL"]
    assert "throwaway cluster" in result.stderr
    assert data_dir.startswith("/tmp/tipline-pg.")
    assert not Path(data_dir).exists()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the cluster outlived its command"


def test_test_deps_lists_what_ci_used_to_install() -> None:
    listed = subprocess.run(
        [str(ROOT / "tools/test-deps.sh"), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for package in ("chromium", "age", "nginx", "tor", "postgresql", "debootstrap"):
        assert package in listed
