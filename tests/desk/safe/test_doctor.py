"""`tipline-desk doctor`, and the Debian package list that docs/DESK.md gives and `make test`
(tools/test-deps.sh, so CI) installs."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from tipline.desk.cli import cli

ROOT = Path(__file__).resolve().parents[3]


def test_doctor_makes_copies_in_the_sandbox() -> None:
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "ok: a viewing copy of a PDF" in result.stdout
    assert "ok: a publication copy of an image" in result.stdout
    assert result.stdout.endswith("safe copies can be made on this machine\n")


def test_doctor_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIPLINE_CONVERTER", "dangerzone")
    monkeypatch.setenv("PATH", "/nonexistent")
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 1
    assert (
        "tipline-desk: the dangerzone converter: the desk's sandbox cannot run on this "
        "machine (docs/DESK.md lists what it needs): TIPLINE_CONVERTER is dangerzone, but "
        "dangerzone-cli is not installed"
    ) in result.stderr


def documented_packages() -> list[str]:
    text = (ROOT / "docs" / "DESK.md").read_text()
    found = re.search(r'DESK_PACKAGES="([^"]+)"', text)
    assert found
    return shlex.split(found.group(1).replace("\\\n", " "))


def test_the_documented_packages_are_what_ci_installs_and_are_installed() -> None:
    packages = documented_packages()
    assert {"bubblewrap", "poppler-utils", "mat2", "python3-seccomp", "qpdf"} <= set(packages)
    listed = subprocess.run(
        [str(ROOT / "tools" / "test-deps.sh"), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert listed[-len(packages) :] == packages  # what make test (and so CI) installs
    for package in packages:
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        assert status == "install ok installed", package


def test_the_wheel_carries_the_converter_and_its_sandbox_scripts() -> None:
    from setuptools import find_packages

    packages = find_packages(str(ROOT), include=["tipline*"])
    assert "tipline.desk.safe" in packages  # a folder without __init__.py would be left out
    for script in ("stage1.py", "seccomp_filter.py"):
        assert (ROOT / "tipline" / "desk" / "safe" / script).is_file()
