"""Render deploy/nginx/tipline.conf's body-size limits from the app's configuration.

nginx must refuse exactly what the app refuses, no sooner and no later: the app bounds each
request body per endpoint (``tipline.server.security._limit_body``), so each nginx
``client_max_body_size`` line carries a ``# tipline:NAME`` marker saying which app limit it
is, and this script writes the value from the installed configuration. The file in the
repository holds the values for the app's defaults (a test checks that).

    TIPLINE_CONFIG_FILE=/etc/tipline/tipline.toml python deploy/render.py nginx SRC > DEST
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MIB = 1 << 20
MARKED = re.compile(r"^(\s*client_max_body_size )(\d+)(;\s*# tipline:)(\S+)$", re.MULTILINE)


def limits(config: Mapping[str, Any]) -> dict[str, int]:
    """The app's body limits by marker name (the form limit includes the app's 2 MiB for the
    multipart framing and the message field, as in ``create_app``)."""
    from tipline.server.security import SMALL_BODY

    return {
        "SMALL_BODY": SMALL_BODY,
        "MAX_SUBMISSION_SIZE+2MiB": int(config["MAX_SUBMISSION_SIZE"]) + 2 * MIB,
        "MAX_CHUNK_SIZE": int(config["MAX_CHUNK_SIZE"]),
        "MAX_REPLY_BUNDLE+2MiB": int(config["MAX_REPLY_BUNDLE"]) + 2 * MIB,
    }


def render_nginx(text: str, config: Mapping[str, Any]) -> str:
    """``text`` with every marked ``client_max_body_size`` set from ``config``."""
    values = limits(config)

    def replace(match: re.Match[str]) -> str:
        name = match.group(4)
        if name not in values:
            raise SystemExit(f"render: unknown limit {name!r} in the nginx configuration")
        return f"{match.group(1)}{values[name]}{match.group(3)}{name}"

    return MARKED.sub(replace, text)


def main(argv: list[str]) -> int:
    """``render.py nginx FILE``: print FILE rendered with the configuration in effect."""
    if len(argv) != 2 or argv[0] != "nginx":
        print("usage: render.py nginx FILE", file=sys.stderr)
        return 2
    from tipline.crypto.errors import TiplineError
    from tipline.server.config import load_config

    try:
        config = load_config()
    except TiplineError as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(render_nginx(Path(argv[1]).read_text("utf-8"), config))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
