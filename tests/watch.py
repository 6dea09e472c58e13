"""Watch writes, not leftovers: record what a real session writes to files and which sockets it
touches, while it runs.

Listing the files left at the end cannot see a temporary file that was unlinked at once (SQLite's
``etilqs_*``, ``tempfile.TemporaryFile``, Werkzeug's form spool), so this module watches the
writes themselves, two ways:

- ``strace``: a command runs under ``strace -f`` (every thread and child) and every ``open``,
  ``write``/``pwrite``/``writev``, ``rename``/``link``, ``fsync`` and socket call is parsed from
  its output, with the bytes written and the path each descriptor names (``-y``, even after the
  file was unlinked: ``(deleted)``). This sees C code (SQLite, gunicorn, libc) as well as Python.
- ``audit``: in a Python process, ``sys.addaudithook`` records every ``open`` for writing, every
  ``os.rename``/``os.link``/``shutil`` copy, every temporary file made by ``tempfile`` and every
  ``socket.*`` event, with its Python stack; it names paths but does not see the bytes.

Tests plant the leak each check looks for (its positive control) and assert the check sees it.
How to run them and what each control plants: docs/TESTING.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WRITE_CALLS = ("write", "pwrite64", "writev", "pwritev", "pwritev2")
COPY_CALLS = ("sendfile", "copy_file_range", "splice")
SOCKET_CALLS = (
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "sendto",
    "sendmsg",
    "sendmmsg",
)
PROCESS_CALLS = ("clone", "clone3", "fork", "vfork", "execve")
TRACED = (
    *PROCESS_CALLS,
    "open",
    "openat",
    "creat",
    *WRITE_CALLS,
    *COPY_CALLS,
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "fsync",
    "fdatasync",
    *SOCKET_CALLS,
)

_LINE = re.compile(r"^(\d+) +(\w+)\((.*)$")
_RESUMED = re.compile(r"^(\d+) +<\.\.\. (\w+) resumed>(.*)$")
_FD = re.compile(r"^(-?\d+)<((?:\\x[0-9a-f]{2}|[^>])*)>")
_STRING = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')
_PAIR = re.compile(r"UNIX-STREAM:\[(\d+)->\d+\]")
_SENT_ON = re.compile(r"^\d+ +\w+\(\d+<UNIX-STREAM:\[(\d+)->")
_RESULT = re.compile(r"\) += (-?\d+)(?: /\* (\d+) in strace's PID NS \*/)?")


def _unhex(text: str) -> bytes:
    return bytes.fromhex(text.replace("\\x", ""))


def _path(text: str) -> str:
    """A path as strace -xx prints it (hex escapes, maybe followed by ``(deleted)``)."""
    return _unhex(text).decode("utf-8", "replace") if text.startswith("\\x") else text


@dataclass
class Call:
    """One traced system call: its process, name, the path its descriptor names, its bytes."""

    pid: int
    name: str
    path: str = ""
    data: bytes = b""
    paths: tuple[str, ...] = ()
    result: int | None = None
    line: str = ""


@dataclass
class Trace:
    """Everything one ``strace -f`` run recorded."""

    calls: list[Call] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Trace:
        """Read strace's output (made with ``-f -y -yy -xx -s N``)."""
        trace = cls()
        unfinished: dict[tuple[int, str], Call] = {}
        for line in text.splitlines():
            match = _LINE.match(line)
            if not match:
                # The second half of a call another process interrupted ("<unfinished ...>"):
                # the first half has the data, this one the result (a child's pid, an exec's
                # outcome), which a busy machine makes common and the process tree needs.
                resumed = _RESUMED.match(line)
                if resumed and (int(resumed[1]), resumed[2]) in unfinished:
                    found = _RESULT.search(resumed[3])
                    if found:
                        call = unfinished.pop((int(resumed[1]), resumed[2]))
                        call.result = int(found[2] or found[1])
                continue
            pid, name, rest = int(match[1]), match[2], match[3]
            if name not in TRACED:
                continue
            call = Call(pid, name, line=line)
            result = _RESULT.search(rest)
            # a process made inside a PID namespace (the export sandbox): its pid as strace sees it
            call.result = int(result[2] or result[1]) if result else None
            if result is None and name in PROCESS_CALLS:
                unfinished[(pid, name)] = call
            fd = _FD.match(rest)
            if fd:
                call.path = _path(fd[2])
                rest = rest[fd.end() :]
            strings = _STRING.findall(rest)
            if name in WRITE_CALLS:
                call.data = b"".join(_unhex(s) for s in strings)
            elif name in (
                "execve",
                "open",
                "openat",
                "creat",
                "rename",
                "renameat",
                "renameat2",
                "link",
                "linkat",
            ):
                call.paths = tuple(_unhex(s).decode("utf-8", "replace") for s in strings)
            trace.calls.append(call)
        return trace

    def sandboxed(self) -> set[int]:
        """The processes (and threads) of the export sandbox: whatever ran ``bwrap``, and
        everything they started."""
        inside = {
            c.pid
            for c in self.calls
            if c.name == "execve" and c.result == 0 and c.paths and c.paths[0].endswith("/bwrap")
        }
        made = [
            (c.pid, int(c.result or 0))
            for c in self.calls
            if c.name in PROCESS_CALLS[:4] and (c.result or 0) > 0
        ]
        # Until nothing changes: strace may print a child's calls before its parent's clone
        # returns, so the order of the lines is not the order of the process tree.
        grew = True
        while grew:
            grew = False
            for parent, child in made:
                if parent in inside and child not in inside:
                    inside.add(child)
                    grew = True
        return inside

    def sandbox_offline(self) -> bool:
        """Whether every ``bwrap`` ran in a network namespace of its own (``--unshare-all`` or
        ``--unshare-net``): there its sockets (bwrap sets up the loopback over netlink) reach
        nothing outside, so ``network`` leaves them out."""
        runs = [
            c
            for c in self.calls
            if c.name == "execve" and c.result == 0 and c.paths and c.paths[0].endswith("/bwrap")
        ]
        return bool(runs) and all(
            "--unshare-all" in c.paths or "--unshare-net" in c.paths for c in runs
        )

    def written(self, sandbox_tmpfs: bool = False) -> dict[str, bytes]:
        """Every byte written, joined per file path (a temp file keeps its '(deleted)' name).

        Writes by the sandbox to its own /tmp (a size-bounded tmpfs in memory that ends with it,
        tipline/desk/safe/sandbox.py) are left out unless ``sandbox_tmpfs``; the sandbox sees no
        other /tmp, so its paths there are never the host's.
        """
        sandbox = set() if sandbox_tmpfs else self.sandboxed()
        out: dict[str, bytearray] = {}
        for call in self.calls:
            if call.name in WRITE_CALLS and call.data and _is_file(call.path):
                if call.pid in sandbox and call.path.startswith("/tmp/"):
                    continue
                out.setdefault(call.path, bytearray()).extend(call.data)
        return {path: bytes(data) for path, data in out.items()}

    def leaks(
        self, markers: Iterable[bytes], allowed: Sequence[Path] = ()
    ) -> list[tuple[str, bytes]]:
        """(path, marker) for each marker written to a file outside the ``allowed`` folders."""
        roots = [str(Path(p).resolve()) + "/" for p in allowed]
        found = []
        for path, data in self.written().items():
            if any(path.startswith(root) for root in roots):
                continue
            found.extend((path, marker) for marker in markers if marker in data)
        return found

    def sockets(self) -> list[Call]:
        """Every socket call (creating, connecting, binding, sending)."""
        return [c for c in self.calls if c.name in SOCKET_CALLS]

    def network(self) -> list[Call]:
        """Socket calls that could reach anything but this process: every ``socket()`` of any
        family, and every connect, bind or send, except sends on an anonymous ``socketpair``
        (asyncio's wake-up pair, which the Textual TUI's event loop makes)."""
        pairs = {  # the socket inodes made by socketpair: they connect only to each other
            int(inode)
            for c in self.calls
            if c.name == "socketpair"
            for inode in _PAIR.findall(c.line)
        }
        offline = self.sandboxed() if self.sandbox_offline() else set()

        def on_pair(call: Call) -> bool:
            sent = _SENT_ON.match(call.line)
            return sent is not None and int(sent[1]) in pairs

        return [
            c
            for c in self.sockets()
            if c.name != "socketpair"
            and c.pid not in offline
            and not (c.name in ("sendto", "sendmsg") and on_pair(c))
        ]

    def opened_for_writing(self) -> list[Call]:
        """Every successful open that could write (O_WRONLY, O_RDWR, O_CREAT or O_TMPFILE)."""
        return [
            c
            for c in self.calls
            if c.name in ("open", "openat", "creat")
            and (c.result or -1) >= 0
            and re.search(r"O_WRONLY|O_RDWR|O_CREAT|O_TMPFILE", c.line)
        ]

    def copies(self) -> list[Call]:
        """Kernel-side copies (their bytes are not in the trace; a test must account for them)."""
        return [c for c in self.calls if c.name in COPY_CALLS]


def _is_file(path: str) -> bool:
    """A descriptor path of a file (not a pipe, socket, terminal or anonymous inode)."""
    return path.startswith("/") and not path.startswith(("/dev/", "/proc/"))


def strace_command(out: Path, size: int = 1 << 20) -> list[str]:
    """The strace prefix that writes the trace ``Trace.parse`` reads to ``out``."""
    strace = shutil.which("strace")
    if strace is None:
        raise AssertionError("strace is not installed (Debian package strace, tools/test-deps.sh)")
    return [
        strace,
        "-f",
        "-qq",
        "--decode-pids=pidns",  # pids made in the sandbox's PID namespace, as strace sees them
        "-y",
        "-yy",
        "-xx",
        "-s",
        str(size),
        "-e",
        "trace=" + ",".join(TRACED),
        "-o",
        str(out),
    ]


def run_traced(
    args: Sequence[str],
    out: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    cwd: Path | None = None,
) -> tuple[subprocess.CompletedProcess[str], Trace]:
    """Run ``args`` to completion under strace; return its result and what it wrote."""
    done = subprocess.run(
        [*strace_command(out), *args],
        env=env,
        cwd=cwd,
        timeout=timeout,
        capture_output=True,
        text=True,
        check=False,
    )
    return done, Trace.parse(out.read_text(errors="replace"))


@contextmanager
def traced_popen(
    args: Sequence[str], out: Path, **kwargs: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a long-running ``args`` (a server) under strace; stopped (SIGTERM) on exit."""
    proc = subprocess.Popen([*strace_command(out), *args], **kwargs)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- in-process: audit hooks ---------------------------------------------------------------------

WRITE_FLAGS = (
    os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC | getattr(os, "O_TMPFILE", 0)
)
_AUDITED = (
    "os.rename",
    "os.link",
    "os.symlink",
    "os.truncate",
    "shutil.copyfile",
    "shutil.copymode",
    "shutil.move",
    "tempfile.mkstemp",
    "tempfile.mkdtemp",
    "sqlite3.connect",
    "subprocess.Popen",
    "os.posix_spawn",
    "os.exec",
    "os.fork",
)


@dataclass
class AuditLog:
    """What the audit hook saw while ``active``."""

    active: bool = False
    events: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "open":
            path, mode, flags = [*args, None, None, 0][:3]
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & WRITE_FLAGS
            )
            if writes:
                named = isinstance(path, (str, bytes, os.PathLike))
                self.events.append(
                    ("open", (os.fsdecode(path) if named else repr(path), mode, flags))
                )
        elif event.startswith("socket.") or event in _AUDITED:
            self.events.append((event, tuple(repr(a)[:200] for a in args)))

    def sockets(self) -> list[tuple[str, tuple[Any, ...]]]:
        """Every socket event (creating, connecting, resolving, binding, sending)."""
        return [e for e in self.events if e[0].startswith("socket.")]

    def network(self) -> list[tuple[str, tuple[Any, ...]]]:
        """Socket events but those of an anonymous AF_UNIX socketpair (asyncio's wake-up)."""
        return [
            e
            for e in self.sockets()
            if not (
                e[0] == "socket.__new__"
                and len(e[1]) > 1
                and str(e[1][1]) in (str(int(socket.AF_UNIX)), "AddressFamily.AF_UNIX")
            )
        ]

    def writes_outside(self, allowed: Sequence[Path]) -> list[tuple[str, tuple[Any, ...]]]:
        """Opens for writing and temp files whose path is in none of the ``allowed`` folders
        (``/dev/null`` and an already open descriptor, such as a pipe to a child, are not
        files). An unnamed temporary file is an open of its folder with ``O_TMPFILE``."""
        roots = [str(Path(p).resolve()) for p in allowed]
        out = []
        for event, args in self.events:
            if event in ("open", "tempfile.mkstemp", "tempfile.mkdtemp"):
                path = str(args[0]).strip("'\"")
                if path == "/dev/null" or path.isdigit():
                    continue
                real = os.path.realpath(path)
                if not any(real == r or real.startswith(r + "/") for r in roots):
                    out.append((event, args))
        return out

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps([[e, [str(a) for a in args]] for e, args in self.events]))


_LOG = AuditLog()
_INSTALLED = False


@contextmanager
def audited() -> Iterator[AuditLog]:
    """Record audit events for the duration of the block (the hook stays installed, as audit
    hooks cannot be removed, but records nothing outside such a block)."""
    global _INSTALLED
    if not _INSTALLED:
        sys.addaudithook(_LOG.hook)
        _INSTALLED = True
    _LOG.events = []
    _LOG.active = True
    try:
        yield _LOG
    finally:
        _LOG.active = False
