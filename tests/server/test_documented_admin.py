"""Every `tipline-server` command docs/ADMIN.md and docs/DEPLOY.md show, run as written (through
the entry point, on this test's database), in the order an admin meets them. `serve` is run for
real by tests/deploy/test_serve.py against the same lines of ADMIN.md; `demo` is `make run`.

A placeholder is filled in as a reader would: YOURNAME and NAME with account names, FILE,
manifest.json and m.json with signed manifests from the desk, newer each time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import CliResult, Keys

DOCS = Path(__file__).parents[2] / "docs"
RUN_ELSEWHERE = {
    "tipline-server serve",
    "tipline-server serve --bind 127.0.0.1:8080",
    "tipline-server serve --bind unix:/run/tipline/gunicorn.sock",
    "tipline-server demo",
}


def documented() -> set[str]:
    """Each distinct `tipline-server ...` command of ADMIN.md and DEPLOY.md: inline code spans
    (which may wrap) and lines of ```sh blocks, without the runuser/env/venv path around it."""
    found: set[str] = set()
    for name in ("ADMIN.md", "DEPLOY.md"):
        text = (DOCS / name).read_text()
        spans = re.findall(r"`([^`]*tipline-server [^`]*)`", text)
        for block in re.findall(r"```sh\n(.*?)```", text, re.S):
            spans += block.replace("\\\n", " ").splitlines()
        for span in spans:
            match = re.search(r"tipline-server [a-z][^#]*", " ".join(span.split()))
            if match and "create-admin NAME" not in match.group(0):
                found.add(match.group(0).strip())
    return found


def test_every_documented_server_command_runs(
    run_cli: Callable[..., CliResult],
    org_keys: Keys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIPLINE_MIN_FREE_BYTES", "0")
    monkeypatch.chdir(tmp_path)
    commands = documented()
    assert commands == {
        "tipline-server db upgrade",
        "tipline-server install-manifest manifest.json",
        "tipline-server install-manifest FILE",
        "tipline-server install-manifest m.json",
        "tipline-server install-manifest --yes",
        "tipline-server create-admin YOURNAME",
        "tipline-server add-journalist NAME",
        "tipline-server retention",
        "tipline-server sweep",
        "tipline-server health",
        "tipline-server health --json",
        "tipline-server sealed-to-retired",
        "tipline-server digest",
        "tipline-server digest --check",
        *RUN_ELSEWHERE,
    }, commands  # a command added to the docs must be added here, and run below
    version = iter(range(1, 10))

    def manifest(name: str) -> str:
        (tmp_path / name).write_bytes(org_keys.signed(next(version), org_keys.alice, org_keys.bob))
        return name

    def run(line: str, *, stdin: str | None = None, code: int = 0) -> CliResult:
        args = line.split()[1:]
        result = run_cli(*args, stdin=stdin)
        assert result.returncode == code, (line, result)
        return result

    made = run("tipline-server db upgrade")  # PostgreSQL's test database may have its tables
    assert "created every table" in made.stderr or "already up to date" in made.stderr
    manifest("manifest.json")
    asked = run("tipline-server install-manifest manifest.json", stdin="y\n")
    assert "installed key manifest version 1" in asked.stderr
    admin = run("tipline-server create-admin YOURNAME".replace("YOURNAME", "chief"))
    assert len(admin.stdout.split()) >= 7  # the passphrase, printed once
    run("tipline-server add-journalist NAME".replace("NAME", "jo"))
    run("tipline-server install-manifest FILE".replace("FILE", manifest("v2.json")), stdin="y\n")
    run(f"tipline-server install-manifest {manifest('m.json')}", stdin="y\n")
    yes = run(f"tipline-server install-manifest {manifest('v4.json')} --yes")
    assert "installed key manifest version 4" in yes.stderr
    swept = run("tipline-server retention")
    assert "retention deleted 0 submissions" in swept.stderr
    run("tipline-server sweep")
    healthy = run("tipline-server health")
    assert "ok    manifest" in healthy.stdout
    report = json.loads(run("tipline-server health --json").stdout)
    assert report["status"] == "ok", report
    run("tipline-server sealed-to-retired")
    off = run("tipline-server digest")
    assert "the daily digest is off" in off.stderr
    run("tipline-server digest --check")
