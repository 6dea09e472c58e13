"""The sandbox every hostile file is opened in: bubblewrap, a seccomp filter, and limits.

One run is one program (the converter's first stage, mat2, Tesseract) in a fresh sandbox:

- bubblewrap with every namespace unshared (``--unshare-all``: no network, no other process,
  no IPC), a new session (no terminal to push keys into), ``--die-with-parent``, every
  capability dropped and no way back to root (a user namespace, uid 65534, no nested user
  namespaces), whether the desk runs as root or not;
- a read-only view of the system's programs and libraries (``/usr`` and a few files of
  ``/etc`` that fonts, LibreOffice and mat2 read), a fresh, size-bounded tmpfs as ``/tmp``, and
  nothing else: not the vault, not the home folder, not the export folder;
- the seccomp filter of ``seccomp_filter.py``;
- per run, a wall-clock deadline (the whole sandbox is killed when it passes), and, through
  ``prlimit``, an address-space limit per process, a CPU-time limit, a file-size limit and no
  core dumps.

The original goes in on standard input and the result comes out on standard output: that pipe
is the only way out, and whoever reads it checks every length before believing it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import CancelledError, ConversionError, SandboxUnavailableError, TimeLimitError

HERE = Path(__file__).resolve().parent
SANDBOX_UID = 65534  # "nobody" inside the sandbox's own user namespace
MAX_BPF = 64 << 10
PIPE_SIZE = 1 << 20  # the unprivileged maximum (/proc/sys/fs/pipe-max-size) by default
# Read-only files and folders of /etc that the programs in the sandbox read (fonts, LibreOffice's
# configuration, the MIME table mat2 chooses its parser by, the dynamic linker's cache). No
# secrets live in any of them.
ETC = (
    "/etc/fonts",
    "/etc/libreoffice",
    "/etc/ld.so.cache",
    "/etc/alternatives",
    "/etc/mime.types",
    "/etc/papersize",
)
FONT_CACHE = "/var/cache/fontconfig"
SYSTEM_LINKS = ("/bin", "/lib", "/lib64", "/sbin")


@dataclass(frozen=True)
class Limits:
    """What one run may use."""

    seconds: float  # wall clock, then the whole sandbox is killed
    memory: int  # address space per process (RLIMIT_AS), bytes
    tmpfs: int  # size of the sandbox's /tmp, bytes
    file_size: int  # largest file a process may write (RLIMIT_FSIZE), bytes

    @property
    def cpu_seconds(self) -> int:
        """CPU time per process: a backstop under the wall clock, never above it."""
        return max(int(self.seconds) + 1, 1)


@dataclass(frozen=True)
class Tools:
    """Where the sandbox's own programs are (Debian's paths by default)."""

    bwrap: str = "/usr/bin/bwrap"
    prlimit: str = "/usr/bin/prlimit"
    python: str = "/usr/bin/python3"  # Debian's, with python3-gi and python3-seccomp


@functools.cache
def seccomp_bpf(python: str) -> bytes:
    """The seccomp filter as BPF, built once per desk process by Debian's Python."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, our own script
            [python, "-I", "-B", str(HERE / "seccomp_filter.py")],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailableError(f"{python} could not build the seccomp filter") from exc
    bpf = done.stdout
    if done.returncode != 0 or not bpf or len(bpf) % 8 or len(bpf) > MAX_BPF:
        raise SandboxUnavailableError(
            "the seccomp filter could not be built (is python3-seccomp installed?)"
        )
    return bpf


def _system_view() -> list[str]:
    """bwrap arguments for a read-only view of the system's programs and libraries."""
    args = ["--ro-bind", "/usr", "/usr"]
    for path in SYSTEM_LINKS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in (*ETC, FONT_CACHE):
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


class Sandbox:
    """Runs programs in a fresh bubblewrap sandbox, one at a time per call to ``run``."""

    def __init__(self, tools: Tools | None = None, wrapper: Sequence[str] = ()) -> None:
        # ``wrapper`` runs the whole sandbox under another command (the tests use setpriv to
        # show that it works for an ordinary user as well as for root).
        self.tools = tools or Tools()
        self.wrapper = list(wrapper)

    def check(self) -> None:
        """Fail with one clear sentence when the sandbox cannot run on this machine."""
        for program in (self.tools.bwrap, self.tools.prlimit, self.tools.python):
            if not os.access(program, os.X_OK):
                raise SandboxUnavailableError(f"{program} is missing (see docs/DESK.md)")
        seccomp_bpf(self.tools.python)

    def argv(
        self, command: Sequence[str], limits: Limits, files: Sequence[tuple[Path, str]], fd: int
    ) -> list[str]:
        """The full command line: prlimit, then bwrap with its options, then ``command``.

        ``files`` are (host path, sandbox path) pairs bound read-only (the converter's own
        scripts; never anything from the vault). ``fd`` carries the seccomp filter.
        """
        prlimit = [
            self.tools.prlimit,
            f"--as={limits.memory}",
            f"--cpu={limits.cpu_seconds}",
            f"--fsize={limits.file_size}",
            "--core=0",
            "--nofile=1024",
            "--",
        ]
        bwrap = [
            self.tools.bwrap,
            "--unshare-all",
            "--unshare-user",  # explicit: --unshare-all only tries, and --disable-userns needs it
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_UID),
            "--disable-userns",
            "--hostname",
            "sandbox",
            *_system_view(),
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(limits.tmpfs),
            "--tmpfs",
            "/tmp",  # noqa: S108 - inside the sandbox: its own tmpfs
            "--chdir",
            "/tmp",  # noqa: S108 - inside the sandbox: its own tmpfs
            "--clearenv",
            "--setenv",
            "PATH",
            "/usr/bin:/bin",
            "--setenv",
            "HOME",
            "/tmp",  # noqa: S108 - inside the sandbox: its own tmpfs
            "--setenv",
            "TMPDIR",
            "/tmp",  # noqa: S108 - inside the sandbox: its own tmpfs
            "--setenv",
            "LANG",
            "C.UTF-8",
        ]
        for host, inside in files:
            bwrap += ["--ro-bind", str(host), inside]
        bwrap += ["--seccomp", str(fd), "--", *command]
        return [*self.wrapper, *prlimit, *bwrap]

    def start(
        self,
        command: Sequence[str],
        limits: Limits,
        files: Sequence[tuple[Path, str]] = (),
        cancel: threading.Event | None = None,
    ) -> Run:
        """Start ``command`` in a new sandbox; the caller feeds ``stdin`` and reads ``stdout``."""
        bpf = seccomp_bpf(self.tools.python)
        read_end, write_end = os.pipe()
        try:
            os.write(write_end, bpf)  # a few hundred bytes: the pipe holds them
            os.close(write_end)
            write_end = -1
            argv = self.argv(command, limits, files, read_end)
            proc = subprocess.Popen(  # noqa: S603 - argv built above, no shell
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # what a hostile file makes a program say stays there
                pass_fds=(read_end,),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise SandboxUnavailableError(f"{exc.strerror or exc}: {exc.filename}") from exc
        finally:
            os.close(read_end)
            if write_end >= 0:
                os.close(write_end)
        with contextlib.suppress(OSError, AttributeError):  # Linux only, and a hint only
            # Pages come out in megabytes: a 1 MiB pipe wakes the reader 16 times less often.
            fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)  # type: ignore[union-attr]
        return Run(proc, limits.seconds, cancel or threading.Event())


class Run:
    """One running sandbox: its pipes, and a watchdog that kills it at the deadline or on cancel.

    Killing bubblewrap kills everything inside: its child is the first process of a new PID
    namespace (and dies with its parent), and when that process ends the kernel kills the rest.
    """

    POLL = 0.05

    def __init__(self, proc: subprocess.Popen[bytes], seconds: float, cancel: threading.Event):
        self.proc, self.seconds, self.cancel = proc, seconds, cancel
        self.reason: str | None = None  # "timeout" or "cancelled" once the watchdog killed it
        self.deadline = time.monotonic() + seconds
        self._watchdog = threading.Thread(target=self._watch, name="sandbox-watchdog", daemon=True)
        self._watchdog.start()

    @property
    def stdin(self) -> IO[bytes]:
        """The original goes in here."""
        assert self.proc.stdin is not None
        return self.proc.stdin

    @property
    def stdout(self) -> IO[bytes]:
        """The only way out of the sandbox."""
        assert self.proc.stdout is not None
        return self.proc.stdout

    def _watch(self) -> None:
        while self.proc.poll() is None:
            if self.cancel.wait(self.POLL):
                self.kill("cancelled")
                return
            if time.monotonic() > self.deadline:
                self.kill("timeout")
                return

    def kill(self, reason: str) -> None:
        """Stop the whole sandbox now."""
        if self.proc.poll() is None:
            self.reason = self.reason or reason
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def close(self) -> int:
        """Wait for the sandbox to end; its exit status, or the error that stopped it."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()
        code = self.proc.wait()
        self._watchdog.join()
        self.check_stopped()
        return code

    def close_quietly(self) -> None:
        """Close after another error, which is the one worth reporting."""
        with contextlib.suppress(ConversionError):
            self.close()

    def check_stopped(self) -> None:
        """Raise the reason the watchdog stopped the sandbox, if it did."""
        if self.reason == "timeout":
            raise TimeLimitError(f"it took longer than {self.seconds:g} seconds")
        if self.reason == "cancelled":
            raise CancelledError()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.kill("cancelled")
            self.close_quietly()
