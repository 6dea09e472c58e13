"""The mutation score of the suite over the desk's and the server's privacy paths (issue 11).

    .venv/bin/python tests/mutation/paths.py [SET ...] [--target PERCENT]
    .venv/bin/python tests/mutation/paths.py SET --report
    .venv/bin/python tests/mutation/paths.py SET --recheck TEST_FILE.py ... [--only TEXT]

``make mutation`` measures ``tipline/crypto`` with the ``[tool.mutmut]`` of pyproject.toml. This
measures the other named target sets, each in a temporary copy of the repository whose
pyproject.toml carries that set's own ``[tool.mutmut]``, so the crypto run (and its ``mutants/``
folder) is not disturbed and both may run at once:

- ``desk``: the vault (``vault.py``, ``sealed.py``: "nothing decrypted on disk") and the text
  neutraliser (``text.py``: "hostile text is shown inert");
- ``server``: the blob store (``blobs.py``: sealed blobs only, dates blurred to the day) and the
  request hygiene (``security.py``: no precise times in headers, no address or request line in
  any log).

Each set names the tests that cover it; mutmut 3 runs against each mutant only the tests that
reached the mutated function. The score is killed (and timed-out) mutants over all that were not
skipped: "no tests" counts as not killed. The copy stays in ``$TMPDIR`` (printed), so its
survivors can be read there with ``.venv/bin/mutmut show NAME``. Exits 1 under ``--target``
when any module is below it.

``--report`` prints the scores of the last run again (partial, if it was stopped: "not
checked" then counts as not killed). ``--recheck`` runs only the named test files (tests added
since, to kill survivors) against the survivors of the last run, far faster than a new run:
see ``recheck``. A new full run confirms the figures.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
MUTMUT = ROOT / ".venv" / "bin" / "mutmut"

SETS: dict[str, tuple[list[str], list[str], list[str]]] = {
    # name: (only_mutate, the tests that cover it: no browser, no nginx, no subprocess CLI,
    # and pytest's arguments for it)
    "desk": (
        ["tipline/desk/vault.py", "tipline/desk/sealed.py", "tipline/desk/text.py"],
        [
            "tests/desk/test_vault.py",
            "tests/desk/test_text.py",
            "tests/desk/test_import.py",
            "tests/desk/test_import_pipeline.py",
            "tests/desk/test_promises.py",
            "tests/desk/test_cli.py",
            "tests/desk/test_mutants.py",
        ],
        [],
    ),
    "server": (
        ["tipline/server/blobs.py", "tipline/server/security.py"],
        [
            "tests/server/test_blobs.py",
            "tests/server/test_storage.py",
            "tests/server/test_privacy.py",
            "tests/server/test_bodies.py",
            "tests/server/test_hostile_inputs.py",
            "tests/server/test_mutants.py",
            "tests/server/test_security_limits.py",
        ],
        # SQLite only: the blob store and the request hooks do not depend on the database
        ["-k", "not postgres"],
    ),
}
PYTEST_ARGS = ["-p", "no:cacheprovider", "-q", "-m", "not browser"]
SKIP = shutil.ignore_patterns(
    ".git",
    ".venv",
    "node_modules",
    "mutants",
    "mutants.log",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "wheelhouse",
    "bench",
    "*.egg-info",
)


def mutmut_section(only_mutate: list[str], tests: list[str], args: list[str]) -> str:
    def toml(items: list[str]) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    return (
        "[tool.mutmut]\n"
        'source_paths = ["tipline/"]\n'
        f"only_mutate = {toml(only_mutate)}\n"
        f"pytest_add_cli_args_test_selection = {toml([t for t in tests if (ROOT / t).exists()])}\n"
        f"pytest_add_cli_args = {toml([*PYTEST_ARGS, *args])}\n"
        'also_copy = ["static/", "tests/", "translations/", "migrations/", "templates/"]\n\n'
    )


def workdir(name: str) -> Path:
    """Where the set's copy lives (one per set and checkout)."""
    tag = hashlib.sha256(bytes(ROOT)).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"tipline-mutation-{name}-{tag}"


def prepare(name: str) -> Path:
    """A fresh copy of the repository for ``name`` with its own ``[tool.mutmut]``."""
    work = workdir(name)
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(ROOT, work, ignore=SKIP, symlinks=True)
    pyproject = work / "pyproject.toml"
    text = pyproject.read_text()
    section = re.compile(r"^\[tool\.mutmut\]\n.*?(?=^\[)", re.M | re.S)
    if not section.search(text):
        raise SystemExit("pyproject.toml has no [tool.mutmut] section to replace")
    pyproject.write_text(section.sub(lambda _: mutmut_section(*SETS[name]), text, count=1))
    return work


def run(name: str, children: int) -> Path:
    work = prepare(name)
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    started = time.monotonic()
    with (work / "mutants.log").open("wb") as log:
        done = subprocess.run(
            [str(MUTMUT), "run", "--max-children", str(children)],
            cwd=work,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if done.returncode:
        sys.stdout.write((work / "mutants.log").read_text(errors="replace")[-3000:])
        raise SystemExit(f"mutmut failed for {name} (log: {work / 'mutants.log'})")
    subprocess.run(
        [str(MUTMUT), "export-cicd-stats"], cwd=work, env=env, check=True, capture_output=True
    )
    print(f"{name}: mutmut took {time.monotonic() - started:.0f} s in {work}")
    return work


def results(work: Path) -> dict[str, str]:
    """Each mutant's status: mutmut's, overridden by a recheck's (``recheck.json``)."""
    listing = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    status: dict[str, str] = {}
    for line in listing.splitlines():
        mutant, _, what = line.strip().rpartition(": ")
        if mutant:
            status[mutant] = what
    rechecked = work / "recheck.json"
    if rechecked.exists():
        status.update(json.loads(rechecked.read_text()))
    return status


def score(status: dict[str, str]) -> dict[str, Counter[str]]:
    per_module: dict[str, Counter[str]] = {}
    for mutant, what in status.items():
        # e.g. tipline.desk.vault.xǁVaultǁcreate__mutmut_3: the module, then the function
        module = mutant.split("__mutmut_")[0].rsplit(".", 1)[0]
        per_module.setdefault(module, Counter())[what] += 1
    return per_module


def recheck(work: Path, files: list[str], only: str = "") -> None:
    """Run ``files`` (tests added since the mutmut run, copied in afresh) against each mutant
    that survived or had no tests, selected as mutmut does (``MUTANT_UNDER_TEST``); a failure
    is a kill, kept in ``recheck.json``. The files must pass unmutated first (the control), so
    a broken test cannot pass for a killer. The source must be unchanged since the run.
    ``only`` (``--only TEXT``) limits it to the mutants whose names contain TEXT.
    """
    mutants = work / "mutants"
    for name in files:
        shutil.copy2(ROOT / name, mutants / name)
    rechecked_file = work / "recheck.json"
    rechecked = json.loads(rechecked_file.read_text()) if rechecked_file.exists() else {}
    todo = [
        m
        for m, what in sorted(results(work).items())
        if what in ("survived", "no tests") and only in m
    ]
    worker = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--worker", *files],
        cwd=mutants,
        env={**os.environ, "PYTHONPATH": str(mutants)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = worker.communicate("\n".join(["none", *todo]) + "\n")
    asked = {"none", *todo}
    codes = {
        name: code
        for name, _, code in (line.rpartition(" ") for line in out.splitlines())
        if name in asked
    }
    if codes.get("none") != "0":
        raise SystemExit(f"{files} fail without a mutant: fix them before a recheck")
    for mutant in todo:
        if codes.get(mutant, "0") != "0":
            rechecked[mutant] = "killed"
    rechecked_file.write_text(json.dumps(rechecked, indent=1))
    print(f"recheck: {len(rechecked)} more mutants killed in all by {', '.join(files)}")


def worker(files: list[str], answer: IO[str]) -> None:
    """``recheck``'s runner, in the mutants folder: pytest imported and the files collected
    once, then one fork per mutant named on stdin, printing its name and pytest's exit code
    (a child still running after 300 s is killed and counted as a kill, as mutmut counts a
    timeout)."""
    import pytest

    sink = os.open(os.devnull, os.O_WRONLY)
    args = ["-x", "-q", "-p", "no:cacheprovider", *files]
    pytest.main(["--collect-only", *args[1:]])
    for mutant in sys.stdin.read().split():
        pid = os.fork()
        if pid == 0:
            os.environ["MUTANT_UNDER_TEST"] = mutant
            os.dup2(sink, 1)
            os.dup2(sink, 2)
            os._exit(int(pytest.main(args)))
        deadline = time.monotonic() + 300
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if done[0] == 0:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            code = 124
        else:
            code = os.waitstatus_to_exitcode(done[1])
        print(mutant, code, file=answer, flush=True)


def report(per_module: dict[str, Counter[str]]) -> float:
    """Print one line per module; return the lowest score."""
    lowest = 100.0
    for module, counts in sorted(per_module.items()):
        killed = counts["killed"] + counts["timeout"]
        total = sum(counts.values()) - counts["skipped"]
        pct = 100 * killed / max(total, 1)
        lowest = min(lowest, pct)
        print(
            f"{module:28} {killed:5} of {total:5} killed ({pct:5.1f} %)  survived "
            f"{counts['survived']}, no tests {counts['no tests']}, other "
            f"{total - killed - counts['survived'] - counts['no tests']}"
        )
    return lowest


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        answer = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)  # pytest's own output goes to stderr, off the answer
        worker(argv[1:], answer)
        return 0
    target = float(argv[argv.index("--target") + 1]) if "--target" in argv else None
    names = [a for a in argv if a in SETS] or list(SETS)
    extra = [a for a in argv if a.endswith(".py")]
    children = int(os.environ.get("MUTMUT_CHILDREN", "2"))
    lowest = 100.0
    for name in names:
        if "--recheck" in argv:
            only = argv[argv.index("--only") + 1] if "--only" in argv else ""
            recheck(workdir(name), extra, only)
            work = workdir(name)
        elif "--report" in argv:
            work = workdir(name)
        else:
            work = run(name, children)
        print(f"{name} ({work}):")
        lowest = min(lowest, report(score(results(work))))
    return 1 if target is not None and lowest < target else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
