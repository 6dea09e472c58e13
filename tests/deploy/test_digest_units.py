"""The daily digest's timer fires at one fixed time of day, every day, and nothing else: no
random delay, no catching up at boot; its service runs the command in the app's sandbox."""

from __future__ import annotations

import re
import subprocess

from .conftest import DEPLOY, need
from .test_configs import directives


def test_the_timer_fires_at_one_fixed_time_every_day() -> None:
    timer = directives(DEPLOY / "systemd" / "tipline-digest.timer")
    (calendar,) = timer["OnCalendar"]
    assert timer["RandomizedDelaySec"] == ["0"] and timer["AccuracySec"] == ["1s"]
    assert timer["Persistent"] == ["false"]  # a boot never sends one at another time
    assert "OnBootSec" not in timer and "OnUnitActiveSec" not in timer
    done = subprocess.run(
        [need("systemd-analyze"), "calendar", "--iterations=5", calendar],
        capture_output=True,
        text=True,
        env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    elapses = re.findall(
        r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) UTC", done.stdout
    )
    assert len(elapses) == 5, done.stdout
    days = [day for day, _ in elapses]
    assert [time for _, time in elapses] == ["07:00:00"] * 5  # the same time...
    assert len(set(days)) == 5  # ...once on each of five days in a row


def test_the_service_runs_the_digest_command_and_retries_later() -> None:
    service = directives(DEPLOY / "systemd" / "tipline-digest.service")
    assert service["ExecStart"] == ["/opt/tipline/venv/bin/tipline-server digest"]
    assert service["Type"] == ["oneshot"] and service["Restart"] == ["on-failure"]
    assert service["PrivateNetwork"] == ["yes"]  # the relay only through Tor's Unix socket
    assert service["RestrictAddressFamilies"] == ["AF_UNIX"]


def test_the_installer_installs_and_enables_the_digest_timer() -> None:
    script = (DEPLOY / "install.sh").read_text()
    assert "tipline-digest.service tipline-digest.timer" in script
    assert re.search(r"for unit in [^;]*tipline-digest\.timer[^;]*; do", script)
    assert re.search(r"packages=\([^)]*\bage\b[^)]*\bgpg\b", script)
