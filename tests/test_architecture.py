"""The import rules of STYLE.md, checked on the source: who may import and use what.

- ``tipline.crypto`` imports only the standard library, ``nacl`` and itself, and nothing lazily;
- ``tipline.server``, and every module it imports (followed through ``tipline.*``), never uses a
  recipient secret key or anything that opens an envelope; the one sanctioned opener is
  ``tipline.source_replies`` (a source's own replies, keyed by the codename typed in the request),
  and the server may use only its three public names;
- ``tipline.desk``, and every module it imports, uses neither Flask nor the server nor anything
  that opens a socket; it starts programs (``subprocess``) only in ``tipline/desk/safe/``, the
  converter, whose programs run in the sandbox (bubblewrap) or work on the desk's own files (qpdf);
- nothing on either side reaches a module by a route the walk cannot see: ``importlib`` (but
  ``importlib.resources``, which reads package data), ``__import__``, ``sys.modules``, ``_socket``,
  ``ctypes``; and the modules both sides share (``tipline/*.py``, ``tipline/crypto``) import
  nothing inside a function.

A "use" is an import (``module`` and ``module.name`` both), an attribute reached through an
imported name (``envelope.open_envelope`` after ``from ..crypto import envelope``) or a
``getattr(module, "name")``. Each rule is a function of a source tree; the tests run it on the
real tree (no finding) and on a copy with a planted violation (the finding it must report).
The runtime half of the server rule is tests/server/tripwire.py.
"""

from __future__ import annotations

import ast
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # holds the ``tipline`` package

ALWAYS_BANNED = (
    "importlib",
    "__import__",
    "builtins.__import__",
    "sys.modules",
    "_socket",
    "ctypes",
    "_ctypes",
)
IMPORTLIB_ALLOWED = ("importlib.resources",)  # tipline/wordlist.py reads the packaged word list

SERVER_FORBIDDEN = (
    "tipline.crypto.envelope.open_envelope",
    "tipline.crypto.envelope.rewrap",
    "tipline.crypto.envelope._unwrap",
    "tipline.crypto.envelope._ChunkReader",
    "tipline.crypto.keys.RecipientSecret",
    "tipline.crypto.keys.unlock",
    "tipline.crypto.keys.load_key_file",
    "tipline.crypto.keys.OrgSecret",
    "tipline.desk",
    "nacl.public.PrivateKey",
    "nacl.public.SealedBox",
    "nacl.public.Box",
    "nacl.bindings.crypto_box_seal_open",
    "nacl.bindings.crypto_box_open",
    "nacl.bindings.crypto_box_beforenm",
    "nacl.bindings.crypto_scalarmult",
)
# What the server may use of the sanctioned opener (a re-export through it is not among them).
SOURCE_REPLIES_API = ("open_replies", "open_attachment", "OpenedReply")
OPENER = "tipline.source_replies"
# The demo key set (``tipline-server demo``, never for real use) writes unlocked demo keys.
SERVER_EXEMPT = ("tipline.demo",)

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
    "selectors",
    "multiprocessing",
    "tipline.source_replies",
)

# Not part of the desk's code: run by Debian's own Python, one inside the sandbox (stage 1), one
# to build the seccomp filter; the desk never imports them (checked below).
SANDBOX_SCRIPTS = ("tipline.desk.safe.stage1", "tipline.desk.safe.seccomp_filter")
MAY_START_PROGRAMS = "tipline.desk.safe."


@dataclass
class Module:
    """One source file: every dotted name it uses, and where it imports inside a function."""

    name: str
    path: Path
    uses: set[str] = field(default_factory=set)
    lazy: list[str] = field(default_factory=list)


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_path(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _chain(node: ast.expr) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]``; None if it does not start at a plain name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def scan(root: Path, path: Path) -> Module:
    """Every name ``path`` uses, relative imports resolved against its package."""
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    found = Module(name, path)
    aliases: dict[str, str] = {}  # a local name -> the dotted name it stands for
    top_level = {id(n) for n in tree.body}
    top_level |= {
        id(n)
        for n in ast.walk(tree)
        if isinstance(n, ast.If | ast.Try)
        for n in ast.iter_child_nodes(n)
    }  # `if TYPE_CHECKING:` / `try:` at the top
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in top_level:
            found.lazy.append(f"line {node.lineno}")
        if isinstance(node, ast.Import):
            for a in node.names:
                found.uses.add(a.name)
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.uses.add(target)
            for a in node.names:
                full = f"{target}.{a.name}"
                found.uses.add(full)
                aliases[a.asname or a.name] = full
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            parts = _chain(node)
            if parts and parts[0] in aliases:
                found.uses.add(".".join([aliases[parts[0]], *parts[1:]]))
        elif isinstance(node, ast.Name) and node.id == "__import__":
            found.uses.add("__import__")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            parts = _chain(node.args[0])
            if parts and parts[0] in aliases:
                found.uses.add(".".join([aliases[parts[0]], *parts[1:], node.args[1].value]))
    return found


def _module_of(root: Path, name: str) -> list[str]:
    """The ``tipline`` modules that using ``name`` loads: its longest module prefix and the
    packages above it."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if module_path(root, ".".join(parts[:end])):
            return [".".join(parts[:i]) for i in range(1, end + 1)]
    return []


def closure(root: Path, folder: str) -> dict[str, Module]:
    """Every file under ``folder`` and every ``tipline`` module they import, transitively."""
    todo = [module_name(root, p) for p in sorted((root / folder).rglob("*.py"))]
    seen: dict[str, Module] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_path(root, name)
        assert path is not None, name
        seen[name] = scan(root, path)
        for used in seen[name].uses:
            if used.startswith("tipline"):
                todo.extend(m for m in _module_of(root, used) if m not in seen)
    return seen


def _banned_everywhere(module: Module) -> list[str]:
    bad = [
        u
        for u in module.uses
        if u.startswith(ALWAYS_BANNED) and not u.startswith(IMPORTLIB_ALLOWED)
    ]
    if bad == ["importlib"] and any(u.startswith(IMPORTLIB_ALLOWED) for u in module.uses):
        bad = []  # `from importlib import resources` names the package too
    return [f"{module.name} uses {u}" for u in sorted(bad)]


def _shared(name: str) -> bool:
    top = name.count(".") <= 1 and not name.startswith(("tipline.server", "tipline.desk"))
    return top or name.startswith("tipline.crypto")


def crypto_findings(root: Path) -> list[str]:
    found = closure(root, "tipline/crypto")
    assert "tipline.crypto.envelope" in found
    out: list[str] = []
    for module in found.values():
        out += _banned_everywhere(module)
        out += [f"{module.name} imports inside a function ({w})" for w in module.lazy]
        for name in sorted(module.uses):
            top = name.split(".")[0]
            ok = (
                top in sys.stdlib_module_names or top == "nacl" or name.startswith("tipline.crypto")
            )
            if (
                not ok
                or top in {"os", "socket", "pathlib", "io"}
                or (top == "shutil" and module.name != "tipline.crypto.envelope")
            ):
                out.append(f"{module.name} uses {name}")
    return out


def server_findings(root: Path) -> list[str]:
    found = closure(root, "tipline/server")
    assert {"tipline.server.source_read", OPENER, "tipline.bundle"} <= set(found)
    out: list[str] = []
    for module in found.values():
        out += _banned_everywhere(module)
        if _shared(module.name):
            out += [f"{module.name} imports inside a function ({w})" for w in module.lazy]
        if module.name.startswith("tipline.crypto") or module.name in SERVER_EXEMPT:
            continue  # the library itself (held to its own rule above); the demo, see above
        for name in sorted(module.uses):
            if module.name == OPENER and name == "tipline.crypto.envelope.open_envelope":
                continue
            if name.startswith(SERVER_FORBIDDEN):
                out.append(f"{module.name} uses {name}")
            elif (
                name.startswith(OPENER + ".")
                and module.name != OPENER
                and name.removeprefix(OPENER + ".").split(".")[0] not in SOURCE_REPLIES_API
            ):
                out.append(f"{module.name} uses {name} (not the opener's API)")
    return out


def desk_findings(root: Path) -> list[str]:
    found = closure(root, "tipline/desk")
    assert set(SANDBOX_SCRIPTS) <= set(found) and "tipline.bundle" in found
    # The sandbox scripts are in the folder, so in the walk; nothing may import them.
    out: list[str] = []
    for module in found.values():
        if module.name in SANDBOX_SCRIPTS:
            continue
        out += _banned_everywhere(module)
        if _shared(module.name):
            out += [f"{module.name} imports inside a function ({w})" for w in module.lazy]
        for name in sorted(module.uses):
            if name.split(".")[0] == "subprocess" and module.name.startswith(MAY_START_PROGRAMS):
                continue
            if name.startswith(DESK_BANNED) or name.startswith(SANDBOX_SCRIPTS):
                out.append(f"{module.name} uses {name}")
    return out


def test_crypto_imports_only_stdlib_and_nacl() -> None:
    assert crypto_findings(ROOT) == []


def test_server_never_opens_envelopes() -> None:
    assert server_findings(ROOT) == []


def test_desk_is_offline() -> None:
    assert desk_findings(ROOT) == []


def test_scan_records_every_kind_of_use() -> None:
    found = scan(ROOT, ROOT / "tipline" / "server" / "source_read.py")
    assert "tipline.source_replies.open_replies" in found.uses  # attribute on an imported module
    assert "flask.redirect" in found.uses  # module.name of an absolute import
    assert "tipline.crypto.errors.CodenameError" in found.uses  # relative, resolved


# Planted violations: (file to change, code appended, rule, the finding it must report).
PLANTS = [
    (
        "tipline/server/source.py",
        "from tipline.crypto.envelope import open_envelope\n",
        server_findings,
        "tipline.server.source uses tipline.crypto.envelope.open_envelope",
    ),
    (
        "tipline/server/source.py",
        "from ..crypto import envelope\nX = envelope.open_envelope\n",
        server_findings,
        "tipline.server.source uses tipline.crypto.envelope.open_envelope",
    ),
    (
        "tipline/server/source.py",
        "import tipline.crypto.envelope as e\nX = e.rewrap\n",
        server_findings,
        "tipline.server.source uses tipline.crypto.envelope.rewrap",
    ),
    (
        "tipline/server/source.py",
        "from ..crypto import envelope\nX = getattr(envelope, 'rewrap')\n",
        server_findings,
        "tipline.server.source uses tipline.crypto.envelope.rewrap",
    ),
    (
        "tipline/server/source.py",
        "import importlib\n",
        server_findings,
        "tipline.server.source uses importlib",
    ),
    (
        "tipline/server/source.py",
        "X = __import__('tipline.crypto.envelope')\n",
        server_findings,
        "tipline.server.source uses __import__",
    ),
    (
        "tipline/server/source.py",
        "import sys\nX = sys.modules\n",
        server_findings,
        "tipline.server.source uses sys.modules",
    ),
    (
        "tipline/server/source.py",
        "import _socket\n",
        server_findings,
        "tipline.server.source uses _socket",
    ),
    (
        "tipline/server/source.py",
        "import ctypes\n",
        server_findings,
        "tipline.server.source uses ctypes",
    ),
    (
        "tipline/server/source.py",
        "import nacl.bindings\nX = nacl.bindings.crypto_box_seal_open\n",
        server_findings,
        "tipline.server.source uses nacl.bindings.crypto_box_seal_open",
    ),
    (
        "tipline/server/source.py",
        "from nacl.bindings import crypto_box_seal_open\n",
        server_findings,
        "tipline.server.source uses nacl.bindings.crypto_box_seal_open",
    ),
    (
        "tipline/server/source.py",
        "from ..crypto.keys import RecipientSecret\n",
        server_findings,
        "tipline.server.source uses tipline.crypto.keys.RecipientSecret",
    ),
    # A re-export through the opener, by name and by attribute.
    (
        "tipline/server/source.py",
        "from ..source_replies import open_envelope\n",
        server_findings,
        "tipline.server.source uses tipline.source_replies.open_envelope",
    ),
    (
        "tipline/server/source.py",
        "from .. import source_replies\nX = source_replies._secret\n",
        server_findings,
        "tipline.server.source uses tipline.source_replies._secret",
    ),
    # A module the server imports (followed, not only the folder), lazily and eagerly.
    (
        "tipline/bundle.py",
        "def f():\n    from .crypto.envelope import open_envelope\n",
        server_findings,
        "tipline.bundle uses tipline.crypto.envelope.open_envelope",
    ),
    (
        "tipline/bundle.py",
        "def f():\n    import json\n",
        server_findings,
        "tipline.bundle imports inside a function",
    ),
    (
        "tipline/wordlist.py",
        "from .crypto.keys import unlock\n",
        server_findings,
        "tipline.wordlist uses tipline.crypto.keys.unlock",
    ),
    (
        "tipline/source_replies.py",
        "from .crypto.keys import RecipientSecret\n",
        server_findings,
        "tipline.source_replies uses tipline.crypto.keys.RecipientSecret",
    ),
    # The desk: network by every route, and through a shared module.
    ("tipline/desk/text.py", "import socket\n", desk_findings, "tipline.desk.text uses socket"),
    ("tipline/desk/text.py", "import _socket\n", desk_findings, "tipline.desk.text uses _socket"),
    (
        "tipline/desk/text.py",
        "import importlib\nX = importlib.import_module\n",
        desk_findings,
        "tipline.desk.text uses importlib",
    ),
    (
        "tipline/desk/text.py",
        "def f():\n    import urllib.request\n",
        desk_findings,
        "tipline.desk.text uses urllib.request",
    ),
    (
        "tipline/desk/text.py",
        "import subprocess\n",
        desk_findings,
        "tipline.desk.text uses subprocess",
    ),
    (
        "tipline/desk/text.py",
        "from .safe import stage1\n",
        desk_findings,
        "tipline.desk.text uses tipline.desk.safe.stage1",
    ),
    ("tipline/bundle.py", "import socket\n", desk_findings, "tipline.bundle uses socket"),
    ("tipline/bundle.py", "import ctypes\n", desk_findings, "tipline.bundle uses ctypes"),
    # The crypto floor.
    ("tipline/crypto/padding.py", "import os\n", crypto_findings, "tipline.crypto.padding uses os"),
    (
        "tipline/crypto/padding.py",
        "def f():\n    import json\n",
        crypto_findings,
        "tipline.crypto.padding imports inside a function",
    ),
    (
        "tipline/crypto/padding.py",
        "import flask\n",
        crypto_findings,
        "tipline.crypto.padding uses flask",
    ),
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("tree")
    shutil.copytree(
        ROOT / "tipline", copy / "tipline", ignore=shutil.ignore_patterns("__pycache__")
    )
    return copy


@pytest.mark.parametrize(
    ("target", "code", "rule", "expected"),
    PLANTS,
    ids=[f"{i}-{p[3].split(' uses ')[-1][:40]}" for i, p in enumerate(PLANTS)],
)
def test_a_planted_violation_is_found(
    pristine: Path, tmp_path: Path, target: str, code: str, rule: object, expected: str
) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(pristine, tree)
    assert callable(rule)
    assert rule(tree) == []  # the copy alone is clean
    with (tree / target).open("a") as f:
        f.write("\n" + code)
    findings = rule(tree)
    assert any(f.startswith(expected) for f in findings), findings


# Modules that can reach a network, by name prefix (asyncio and selectors are checked where
# nothing should wait on a socket at all).
NETWORK = (
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


def _loaded(*modules: str) -> list[str]:
    """Every module Python really loads (transitive imports included) to import ``modules``."""
    import subprocess

    code = f"import sys, {', '.join(modules)}; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_desk_cli_loads_no_network_module() -> None:
    # The import graph as Python really loads it: the CLI pulls in no socket, HTTP or TLS
    # module at all. (The TUI runs on asyncio, which imports the socket module for its event
    # loop; the TUI's own code is held to the check above.)
    cli = ("tipline.desk.cli", "tipline.desk.cli_admin", "tipline.desk.importer")
    loaded = _loaded(*cli, "tipline.desk.maintenance", "tipline.desk.outgoing")
    assert "tipline.desk.cli" in loaded
    assert not [m for m in loaded if m.startswith((*NETWORK, "selectors"))]
    assert "subprocess" not in loaded  # only an export (or doctor) starts programs


def test_an_export_loads_no_network_module() -> None:
    safe = ("tipline.desk.safe.export", "tipline.desk.safe.own", "tipline.desk.safe.dangerzone")
    loaded = _loaded(*safe, "tipline.desk.safe.doctor")
    # subprocess waits on pipes with selectors; nothing here can reach a network.
    assert "tipline.desk.safe.own" in loaded and "subprocess" in loaded
    assert not [m for m in loaded if m.startswith(NETWORK)]
