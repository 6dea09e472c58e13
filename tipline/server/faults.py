"""Named crash points for the fault-injection tests (tests/server/test_faults.py).

``point("finish-moved")`` kills this process with SIGKILL, exactly as ``kill -9`` would, when
and only when the environment variable ``TIPLINE_TEST_FAULT`` names that point. The variable is
read at each call, so a test can start a real gunicorn with it; nothing sets it in production
(the units and the installer never do), and with it unset or naming another point a call does
nothing at all.

The points (each between two steps whose order keeps storage crash-consistent):
- ``blob-written``: a no-JS blob is durable, its row not yet committed;
- ``upload-created``: an upload's partial file is written, its row not yet committed;
- ``finish-moved``: a finished upload was moved into the blob store, its row not committed;
- ``delete-committed``: deleted rows are committed, their files not yet removed.
"""

from __future__ import annotations

import os
import signal

ENV = "TIPLINE_TEST_FAULT"
POINTS = frozenset({"blob-written", "upload-created", "finish-moved", "delete-committed"})


def point(name: str) -> None:
    """Die here (SIGKILL) if the test environment asks for it; otherwise do nothing."""
    if name not in POINTS:
        raise ValueError("unknown fault point")
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
