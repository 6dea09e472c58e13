"""The two `curl` commands of docs/JOURNALIST.md, run as written with the real curl against the
app served over real HTTP: the export lands as a bundle, "nothing new" leaves no file (that is
what `-f` is for: the control runs the same command without it), and the reply bundle is taken.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tipline import bundle
from tipline.server import accounts, db
from tipline.server.models import new_id

from .conftest import Keys, make_staff
from .test_journalist import reply_bundle, reply_count, reply_envelope, store_source

DOC = Path(__file__).parents[2] / "docs" / "JOURNALIST.md"


def curl_lines() -> list[str]:
    block = re.search(r"```sh\n(curl .*?)```", DOC.read_text(), re.S)
    assert block
    return [ln.strip() for ln in block.group(1).replace("\\\n", " ").splitlines() if ln.strip()]


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


def test_journalist_md_curl_commands_run_as_written(
    app: Flask, served: str, org_keys: Keys, tmp_path: Path
) -> None:
    export, replies = curl_lines()
    assert export.startswith("curl -f ") and replies.startswith("curl -f ")
    make_staff(app, "jo")
    with app.app_context():
        jo = accounts.by_username(db.session(), "jo")
        assert jo is not None
        token = accounts.new_token(db.session(), jo, "script")
    alice = org_keys.alice.public.public_key
    stored = store_source(app, [alice], count=2)
    env = {**os.environ, "TOKEN": token}

    def curl(line: str) -> subprocess.CompletedProcess[str]:
        # $TOKEN as the shell would expand it, SERVER as the reader would fill it in
        args = shlex.split(line.replace("https://SERVER", served).replace("$TOKEN", token))
        return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=60)  # fmt: skip

    got = curl(export)
    assert got.returncode == 0, got.stderr
    out = tmp_path / "tipline-export.tlb"
    with out.open("rb") as f:
        items = list(bundle.BundleReader(f, bundle.KIND_EXPORT))
    assert len(items) == 2

    out.unlink()
    nothing = curl(export)  # everything was downloaded: the server says there is nothing new
    assert nothing.returncode == 22 and not out.exists()
    without_f = curl(export.replace("curl -f ", "curl "))  # the control: what -f prevents
    assert without_f.returncode == 0 and b"nothing new" in out.read_bytes()

    pub = bytes(stored.reply_key.public_key)
    (tmp_path / "replies.tlb").write_bytes(
        reply_bundle([(new_id(), stored.source_id, reply_envelope(pub, alice, "thanks"))])
    )
    before = reply_count(app)
    sent = curl(replies)
    assert sent.returncode == 0, sent.stderr
    assert reply_count(app) == before + 1
