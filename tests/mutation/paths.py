"""The mutation score of the suite over the desk's and the server's privacy paths (issue 11).

    .venv/bin/python tests/mutation/paths.py [SET ...] [--target PERCENT]

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


def prepare(name: str) -> Path:
    """A fresh copy of the repository for ``name`` with its own ``[tool.mutmut]``."""
    work = (
        Path(tempfile.gettempdir())
        / f"tipline-mutation-{name}-{hashlib.sha256(bytes(ROOT)).hexdigest()[:8]}"
    )
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


def score(work: Path) -> dict[str, Counter[str]]:
    results = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    per_module: dict[str, Counter[str]] = {}
    for line in results.splitlines():
        mutant, _, status = line.strip().rpartition(": ")
        if mutant:
            # e.g. tipline.desk.vault.xǁVaultǁcreate__mutmut_3: the module, then the function
            module = mutant.split("__mutmut_")[0].rsplit(".", 1)[0]
            per_module.setdefault(module, Counter())[status] += 1
    return per_module


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
    target = float(argv[argv.index("--target") + 1]) if "--target" in argv else None
    names = [a for a in argv if a in SETS] or list(SETS)
    children = int(os.environ.get("MUTMUT_CHILDREN", "2"))
    lowest = 100.0
    for name in names:
        lowest = min(lowest, report(score(run(name, children))))
    return 1 if target is not None and lowest < target else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
