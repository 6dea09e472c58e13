"""The converter seam, and converters that misbehave: a first stage that hangs, one that tries the
network and the vault, one that lies about its output; and the Dangerzone implementation."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from tipline.desk.errors import UsageError
from tipline.desk.safe.converter import ConverterConfig, load_config, make_converter
from tipline.desk.safe.dangerzone import DangerzoneConverter
from tipline.desk.safe.export import Options, export, prepare
from tipline.desk.safe.own import SandboxConverter
from tipline.desk.vault import Vault

from ..conftest import PASS
from . import samples
from .conftest import Imported, vault_state

HANG = "import time\ntime.sleep(1000)\n"
# A first stage taken over by its input: it phones home, reaches for the vault, then answers
# with a pixel stream that claims more than any bound.
ROGUE = """
import os, socket, struct, sys
port, vault = int(sys.argv[-2]), sys.argv[-1]
for family, address in ((socket.AF_INET, ("127.0.0.1", port)), (socket.AF_INET6, ("::1", port))):
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.connect(address)
        s.sendall(b"ESCAPED")
    except OSError:
        pass
for path in (os.path.join(vault, "pwned"), "/usr/share/tipline-rogue", "/etc/tipline-rogue"):
    try:
        open(path, "w").write("x")
    except OSError:
        pass
sys.stdout.buffer.write(b"TLPIXEL1" + struct.pack(">I", 1) + b"P6\\n60000 60000\\n255\\n")
"""


def rogue_converter(tmp_path: Path, program: str, **config: object) -> SandboxConverter:
    script = tmp_path / "stage1.py"
    script.write_text(program)
    os.chmod(script, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    return SandboxConverter(ConverterConfig(**config), stage1=script)  # type: ignore[arg-type]


def export_first(
    vault_dir: Path, item: str, out: Path, converter: object, cancel: threading.Event | None = None
):  # type: ignore[no-untyped-def]
    with Vault.open(vault_dir, PASS) as vault:
        source = prepare(vault, vault.store.resolve(item))
    return export(source, out, converter, Options(), None, cancel)  # type: ignore[arg-type]


def test_a_hanging_converter_is_stopped_at_its_time_limit(
    imported: Imported, out: Path, vault_dir: Path, tmp_path: Path
) -> None:
    sub = imported([("a.pdf", samples.plain_pdf(1), "application/pdf")])
    converter = rogue_converter(tmp_path, HANG, seconds=3)
    started = time.monotonic()
    report = export_first(vault_dir, sub.item.id, out, converter)
    assert 3 <= time.monotonic() - started < 15
    (only,) = report.attachments
    assert only.problem == (
        "the conversion was stopped because it took too long, and nothing "
        "was written: it took longer than 3 seconds"
    )
    assert list(out.iterdir()) == []
    leftovers = [
        p
        for p in os.listdir("/proc")
        if p.isdigit() and _cmd(p).startswith(b"/usr/bin/python3\x00-I\x00-B\x00/opt/tipline")
    ]
    assert leftovers == []


def _cmd(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_a_rogue_converter_reaches_nothing_and_its_lie_is_refused(
    imported: Imported, out: Path, vault_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    request.addfinalizer(server.close)
    server.settimeout(0.1)
    port = server.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port)):  # control: the listener answers
        server.accept()[0].close()
    sub = imported([("a.pdf", samples.plain_pdf(1), "application/pdf")])
    before = vault_state(vault_dir)
    converter = rogue_converter(
        tmp_path,
        ROGUE.replace("sys.argv[-2]", str(port)).replace("sys.argv[-1]", repr(str(vault_dir))),
    )
    report = export_first(vault_dir, sub.item.id, out, converter)
    (only,) = report.attachments
    assert only.problem == (
        "the converter's output broke the desk's limits, so it was thrown "
        "away: a page of 60000 x 60000 pixels is out of bounds"
    )
    with pytest.raises(TimeoutError):
        server.accept()  # nobody connected
    assert vault_state(vault_dir) == before
    assert not Path("/usr/share/tipline-rogue").exists()
    assert not Path("/etc/tipline-rogue").exists()
    assert list(out.iterdir()) == []


def test_cancel_kills_the_conversion(
    imported: Imported, out: Path, vault_dir: Path, tmp_path: Path
) -> None:
    sub = imported(
        [
            ("a.pdf", samples.plain_pdf(1), "application/pdf"),
            ("b.pdf", samples.plain_pdf(1), "application/pdf"),
        ]
    )
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    started = time.monotonic()
    report = export_first(vault_dir, sub.item.id, out, rogue_converter(tmp_path, HANG), cancel)
    assert time.monotonic() - started < 10
    assert report.cancelled and not report.ok and len(report.attachments) == 1
    assert list(out.iterdir()) == []


def test_configuration_chooses_the_converter_once() -> None:
    assert load_config({}).converter == "sandbox"
    assert isinstance(make_converter(load_config({})), SandboxConverter)
    config = load_config(
        {
            "TIPLINE_CONVERTER": "dangerzone",
            "TIPLINE_CONVERT_SECONDS": "20",
            "TIPLINE_CONVERT_MEMORY_MIB": "512",
            "TIPLINE_OCR_LANGUAGE": "eng+fra",
        }
    )
    assert isinstance(make_converter(config), DangerzoneConverter)
    assert (config.seconds, config.memory, config.ocr_language) == (20, 512 << 20, "eng+fra")
    for bad in (
        {"TIPLINE_CONVERTER": "libreoffice"},
        {"TIPLINE_CONVERT_SECONDS": "0"},
        {"TIPLINE_CONVERT_MEMORY_MIB": "lots"},
        {"TIPLINE_OCR_LANGUAGE": "eng;rm"},
    ):
        with pytest.raises(UsageError):
            load_config(bad)


# Dangerzone is not installed on this machine (it needs Podman or Docker): these tests run the
# Dangerzone converter against a stand-in `dangerzone-cli` that records how it was called and
# writes what Dangerzone writes, to check the seam's side of the contract (arguments, the
# original removed afterwards, the time limit, a missing program). They do not test Dangerzone.
STAND_IN = """#!/usr/bin/python3
import json, os, sys, time
args = sys.argv[1:]
out = args[args.index("--output-filename") + 1]
original = args[-1]
json.dump({"args": args, "original": open(original, "rb").read().hex(),
           "mode": oct(os.stat(original).st_mode & 0o777)}, open(os.environ["LOG"], "w"))
if "SLOW" in os.environ:
    time.sleep(100)
open(out, "wb").write(b"%PDF-1.7 from the stand-in")
"""


def test_dangerzone_converter_calls_the_cli_and_removes_the_original(
    imported: Imported, out: Path, vault_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = tmp_path / "dangerzone-cli"
    program.write_text(STAND_IN)
    program.chmod(0o755)
    log = tmp_path / "log.json"
    monkeypatch.setenv("LOG", str(log))
    data = samples.plain_pdf(1)
    sub = imported([("a.pdf", data, "application/pdf")])
    converter = DangerzoneConverter(
        ConverterConfig(converter="dangerzone", seconds=3), program=str(program)
    )
    report = export_first(vault_dir, sub.item.id, out, converter)
    assert report.ok, report.attachments
    import json

    called = json.loads(log.read_text())
    assert called["original"] == data.hex() and called["mode"] == "0o600"
    assert called["args"][0] == "--output-filename" and called["args"][-1].endswith(".pdf")
    assert not Path(called["args"][-1]).exists()  # the original was removed after the run
    assert sorted(p.name.split("-", 1)[1] for p in out.iterdir()) == [
        "01-a.viewing.pdf",
        "01-a.viewing.pdf.provenance.json",
    ]

    monkeypatch.setenv("SLOW", "1")
    report = export_first(vault_dir, sub.item.id, tmp_path, converter)
    assert "took longer than 3 seconds" in (report.attachments[0].problem or "")
    missing = DangerzoneConverter(ConverterConfig(), program=str(tmp_path / "nothing"))
    with pytest.raises(Exception, match="dangerzone-cli is not installed"):
        missing.check()
