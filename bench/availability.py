"""GET / latency through the shipped nginx and gunicorn, without and under a slow-body attack
(200 connections that send the headers and a few bytes of a no-JS submission, then nothing),
measured in the same run; the ratio of the two is the figure.

    make bench-availability        (.venv/bin/python bench/availability.py [ROUNDS] [--open])

``--open`` runs the same against the site with its limit_conn/limit_req lines taken out, for
comparison (requests that get no answer within 5 s are counted, not timed).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.deploy.conftest import serve_stack  # noqa: E402
from tests.deploy.test_availability import (  # noqa: E402
    SHIPPED,
    home_latencies,
    slow_body_attack,
    without_limits,
)


def summary(times: list[float | None]) -> tuple[float, float, int]:
    answered = sorted(t for t in times if t is not None)
    if not answered:
        return float("nan"), float("nan"), len(times)
    p95 = answered[min(len(answered) - 1, int(0.95 * len(answered)))]
    return statistics.median(answered), p95, len(times) - len(answered)


def main(rounds: int, open_site: bool) -> None:
    site = without_limits(SHIPPED) if open_site else SHIPPED
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve_stack(Path(tmp) / "stack", site_text=site) as served,
    ):
        home_latencies(served, 5, timeout=5)  # warm up
        quiet = home_latencies(served, rounds, timeout=5)
        with slow_body_attack(served):
            attacked = home_latencies(served, rounds, timeout=5)
    q_med, q_p95, q_lost = summary(quiet)
    a_med, a_p95, a_lost = summary(attacked)
    which = "WITHOUT its limits" if open_site else "as shipped"
    print(f"GET / over {rounds} requests, each on a new circuit, through nginx {which}")
    for name, (med, p95, lost) in (
        ("without attack", (q_med, q_p95, q_lost)),
        ("200 stalled bodies", (a_med, a_p95, a_lost)),
    ):
        print(f"  {name}: median {med * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, {lost} unanswered")
    print(f"  ratio under attack / without: median {a_med / q_med:.2f}, p95 {a_p95 / q_p95:.2f}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--open"]
    main(int(args[0]) if args else 50, "--open" in sys.argv[1:])
