"""The import rules of STYLE.md, checked on the source: who may import what.

- ``tipline.crypto`` imports only the standard library, ``nacl`` and itself;
- ``tipline.server`` never touches a recipient secret key or anything that opens an envelope;
- ``tipline.desk`` imports neither Flask nor the server nor anything that opens a socket; it
  starts programs (``subprocess``) only in ``tipline/desk/safe/``, the converter, whose programs
  run in the sandbox (bubblewrap) or work on the desk's own files (qpdf).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tipline"


def imports_of(folder: Path) -> dict[str, set[str]]:
    """Every module imported by each file under ``folder``, with relative imports resolved."""
    result: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".")[: -node.level]  # __init__ counts as a part
                    prefix = ".".join(base)
                    target = f"{prefix}.{node.module}" if node.module else prefix
                    names.add(target)
                    names.update(f"{target}.{a.name}" for a in node.names)
                else:
                    names.add(node.module or "")
        result[str(path.relative_to(PACKAGE.parent))] = names
    return result


def test_crypto_imports_only_stdlib_and_nacl() -> None:
    found = imports_of(PACKAGE / "crypto")
    assert found
    for path, names in found.items():
        for name in names:
            top = name.split(".")[0]
            ok = (
                top in sys.stdlib_module_names or top == "nacl" or name.startswith("tipline.crypto")
            )
            assert ok, f"{path} imports {name}"
            assert top not in {"os", "socket", "pathlib", "io", "shutil"} or (
                top == "shutil" and path.endswith("envelope.py")
            ), f"{path} imports {name}"


def test_server_never_opens_envelopes() -> None:
    forbidden = (
        "tipline.crypto.envelope.open_envelope",
        "tipline.crypto.envelope.rewrap",
        "tipline.crypto.keys.RecipientSecret",
        "tipline.crypto.keys.unlock",
        "tipline.desk",
        "nacl.public.PrivateKey",
    )
    found = imports_of(PACKAGE / "server")
    assert found
    for path, names in found.items():
        for name in names:
            assert not name.startswith(forbidden), f"{path} imports {name}"


DESK_BANNED = (
    "flask",
    "werkzeug",
    "sqlalchemy",
    "socket",
    "http",
    "urllib",
    "requests",
    "ssl",
    "asyncio",
    "tipline.server",
    "gunicorn",
    "psycopg",
    "httpx",
    "aiohttp",
    "smtplib",
    "ftplib",
    "xmlrpc",
    "tipline.demo",
    "webbrowser",
    "subprocess",
)


# Not part of the desk's code: run by Debian's own Python, one inside the sandbox (stage 1), one
# to build the seccomp filter; the desk never imports them (checked below).
SANDBOX_SCRIPTS = ("tipline/desk/safe/stage1.py", "tipline/desk/safe/seccomp_filter.py")
MAY_START_PROGRAMS = "tipline/desk/safe/"


def test_desk_is_offline() -> None:
    folder = PACKAGE / "desk"
    found = imports_of(folder)
    assert found and set(SANDBOX_SCRIPTS) <= set(found)
    for path, names in found.items():
        if path in SANDBOX_SCRIPTS:
            continue
        for name in names:
            if name == "subprocess" and path.startswith(MAY_START_PROGRAMS):
                continue
            assert not name.startswith(DESK_BANNED), f"{path} imports {name}"
            assert not name.endswith((".stage1", ".seccomp_filter")), f"{path} imports {name}"


def test_desk_cli_loads_no_network_module() -> None:
    # The import graph as Python really loads it (transitive imports included): the CLI pulls
    # in no socket, HTTP or TLS module at all. (The TUI runs on asyncio, which imports the
    # socket module for its event loop; the TUI's own code is held to the check above.)
    import subprocess

    code = (
        "import sys, tipline.desk.cli, tipline.desk.cli_admin, tipline.desk.importer, "
        "tipline.desk.maintenance, tipline.desk.outgoing; "
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    network = (
        "socket",
        "_socket",
        "http",
        "urllib.request",
        "ssl",
        "_ssl",
        "asyncio",
        "selectors",
        "tipline.server",
        "flask",
        "requests",
        "httpx",
    )
    assert "tipline.desk.cli" in loaded
    assert not [m for m in loaded if m.startswith(network)]
    assert "subprocess" not in loaded  # only an export (or doctor) starts programs


def test_an_export_loads_no_network_module() -> None:
    import subprocess

    code = (
        "import sys, tipline.desk.safe.export, tipline.desk.safe.own, "
        "tipline.desk.safe.dangerzone, tipline.desk.safe.doctor; "
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    # subprocess waits on pipes with selectors; nothing here can reach a network.
    network = (
        "socket",
        "_socket",
        "http",
        "urllib.request",
        "ssl",
        "_ssl",
        "asyncio",
        "tipline.server",
        "flask",
        "requests",
        "httpx",
    )
    assert "tipline.desk.safe.own" in loaded and "subprocess" in loaded
    assert not [m for m in loaded if m.startswith(network)]
