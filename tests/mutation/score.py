"""Print the mutation score of the last ``mutmut run`` (``make mutation``), overall and per module.

    .venv/bin/python tests/mutation/score.py [--target PERCENT]

Reads mutmut's CI/CD statistics (``mutmut export-cicd-stats`` writes them) and its per-mutant
results (``mutmut results --all true``). The score is killed (and timed-out) mutants over those a
test ran against: mutants no test reaches ("no tests") count as survivors here, since a line that
no test runs is a line whose breaking no test notices. Exits 1 under ``--target``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    target = float(argv[argv.index("--target") + 1]) if "--target" in argv else None
    stats = json.loads((ROOT / "mutants" / "mutmut-cicd-stats.json").read_text())
    results = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    per_module: dict[str, Counter[str]] = {}
    for line in results.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name:
            continue
        # e.g. tipline.crypto.envelope.x_open_envelope__mutmut_12: the module, then the function
        module = name.split("__mutmut_")[0].rsplit(".", 1)[0]
        per_module.setdefault(module, Counter())[status] += 1
    for module, counts in sorted(per_module.items()):
        killed = counts["killed"] + counts["timeout"]
        total = sum(counts.values()) - counts["skipped"]
        print(
            f"{module:32} {killed:5} of {total:5} killed ({100 * killed / max(total, 1):5.1f} %)"
            f"  survived {counts['survived']}, no tests {counts['no tests']}"
        )
    killed = int(stats.get("killed", 0)) + int(stats.get("timeout", 0))
    total = int(stats.get("total", 0)) - int(stats.get("skipped", 0))
    score = 100 * killed / max(total, 1)
    print(f"mutation score, tipline/crypto: {killed} of {total} mutants killed ({score:.1f} %)")
    print("stats: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.items())))
    return 1 if target is not None and score < target else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
