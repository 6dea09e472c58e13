"""README's first command, `make run`: the Makefile's target runs `tipline-server demo`, and that
command, started for real, serves the tip line on its embedded defaults (SQLite, a local blob
folder, a demo key set): the pages answer, a no-JS tip is stored, and the demo journalist key
opens it."""

from __future__ import annotations

import io
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from tipline.crypto import envelope, keys

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_readme_and_makefile_agree_on_make_run() -> None:
    readme = (REPO / "README.md").read_text()
    assert re.search(r"(?m)^make run\b", readme)
    target = re.search(r"(?m)^run:.*\n((?:\t.*\n)+)", (REPO / "Makefile").read_text())
    assert target and "tipline-server demo" in target.group(1)


def test_the_demo_serves_and_stores_a_tip_the_demo_key_opens(tmp_path: Path) -> None:
    port, data = free_port(), tmp_path / "instance"
    log = (tmp_path / "demo.log").open("wb")
    server = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "tipline-server"), "demo", "--data-dir", str(data),
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                with urllib.request.urlopen(f"{base}/", timeout=2) as first:
                    first.read()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError((tmp_path / "demo.log").read_text()[-2000:])
        cookie_jar = urllib.request.HTTPCookieProcessor()
        opener = urllib.request.build_opener(cookie_jar)
        with opener.open(f"{base}/submit", timeout=5) as form:
            page = form.read().decode()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert token
        boundary = "tiplineboundary"
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
            f"{token.group(1)}\r\n--{boundary}\r\nContent-Disposition: form-data; "
            f'name="message"\r\n\r\ndemo tip marker\r\n--{boundary}--\r\n'
        ).encode()
        request = urllib.request.Request(
            f"{base}/submit", data=body, method="POST",
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )  # fmt: skip
        with opener.open(request, timeout=30) as answer:
            assert answer.status == 200
    finally:
        server.terminate()
        server.wait(10)
        log.close()
    blobs = [p for p in (data / "blobs").rglob("*") if p.is_file() and len(p.name) == 32]
    assert len(blobs) == 1, sorted(str(p) for p in (data / "blobs").rglob("*"))
    secret = keys.load_key_file((data / "demo-keys" / "journalist.secret.json").read_bytes())
    assert isinstance(secret, keys.RecipientSecret)
    inner = envelope.open_envelope(io.BytesIO(blobs[0].read_bytes()), [secret.secret_key])
    assert inner.message == "demo tip marker"
