"""The offline install: `make wheelhouse`, then `pip --no-index` into a fresh venv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_desk_installs_offline_from_the_wheelhouse(tmp_path: Path) -> None:
    wheels = tmp_path / "wheelhouse"
    # -o: never reinstall the development venv from inside a test
    subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(ROOT),
            "-o",
            ".venv/.installed",
            "wheelhouse",
            f"WHEELHOUSE={wheels}",
        ],
        check=True,
        capture_output=True,
    )
    names = sorted(p.name for p in wheels.iterdir())
    assert any(n.startswith("tipline-") for n in names)
    assert any(n.lower().startswith("pynacl-") for n in names)
    assert any(n.startswith("textual-") for n in names)
    assert not any(n.lower().startswith(("flask-", "sqlalchemy-", "gunicorn-")) for n in names)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--no-index",
            "--disable-pip-version-check",
            "--find-links",
            str(wheels),
            "tipline[desk]",
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    result = subprocess.run(
        [str(venv / "bin" / "tipline-desk"), "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert "offline desk" in result.stdout and "import" in result.stdout
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import tipline.desk.tui.app, importlib.util as u; print(u.find_spec('flask') is None)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert probe.stdout.strip() == "True"
