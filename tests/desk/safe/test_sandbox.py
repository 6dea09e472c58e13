"""The sandbox itself, attacked from inside by programs written to escape it.

Each hostile program reports what it managed as JSON on standard output (the one way out); the
same program run outside the sandbox is the positive control, showing that each attempt would
have worked there (the listener is reachable, the vault file is readable and writable).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tipline.desk.safe.errors import CancelledError, TimeLimitError
from tipline.desk.safe.sandbox import Limits, Sandbox, seccomp_bpf

LIMITS = Limits(seconds=30, memory=1 << 30, tmpfs=64 << 20, file_size=64 << 20)

# Tries what a program taken over by a hostile file would; prints what worked. Run outside the
# sandbox as the positive control, so every attempt is one that harms nothing there: mounting
# on a folder of the test's own (unmounted at once), ptrace on itself (PTRACE_TRACEME), a user
# namespace for itself alone, a keyring query.
ESCAPE = r"""
import ctypes, errno, json, os, socket, sys
vault, port, mount_point, home, system = (sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(),
                                          sys.argv[4], sys.argv[5])
libc = ctypes.CDLL(None, use_errno=True)
out = {}
def attempt(name, fn):
    try:
        out[name] = fn()
    except OSError as exc:
        out[name] = "refused: " + (errno.errorcode.get(exc.errno) or str(exc))
def connect(family, address):
    def go():
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect(address)
        s.sendall(b"ESCAPED")
        return "connected"
    return go
def call(name, *args):
    def go():
        if getattr(libc, name)(*args) < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return "allowed"
    return go
def write(path):
    def go():
        with open(path, "w") as f:
            f.write("pwned")
        return "written"
    return go
attempt("inet", connect(socket.AF_INET, ("127.0.0.1", port)))
attempt("inet6", connect(socket.AF_INET6, ("::1", port)))
attempt("netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) and "opened")
attempt("unix", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) and "opened")
attempt("read_vault", lambda: open(os.path.join(vault, "vault.key"), "rb").read(4) and "read")
attempt("write_vault", write(os.path.join(vault, "pwned")))
attempt("write_usr", write(os.path.join(system, "pwned")))
attempt("write_home", write(os.path.join(home, "tipline-sandbox-test")))
attempt("write_tmp", write(os.path.join(os.environ.get("TMPDIR", "/tmp"), "tipline-fine")))
attempt("ptrace", call("ptrace", 0, 0, 0, 0))  # PTRACE_TRACEME
attempt("mount", call("mount", b"none", mount_point, b"tmpfs", 0, None))
if out["mount"] == "allowed":
    libc.umount2(mount_point, 2)  # MNT_DETACH: the control leaves nothing mounted
attempt("unshare_user", call("unshare", 0x10000000))
attempt("keyctl", call("syscall", 250, 0, -3, 0))  # KEYCTL_GET_KEYRING_ID, the session ring
status = open("/proc/self/status").read()
out["caps"] = [l.split()[1] for l in status.splitlines() if l.startswith("CapEff")][0]
out["uid"] = os.getuid()
out["processes"] = sorted(p for p in os.listdir("/proc") if p.isdigit())
print(json.dumps(out))
"""


@pytest.fixture
def listener() -> tuple[int, list[bytes]]:
    """A TCP listener on the host's loopback; it records what anyone sends it."""
    server = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def serve() -> None:
        server.settimeout(0.2)
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                got.append(conn.recv(100))

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], got
    server.close()


@pytest.fixture
def fake_vault(tmp_path: Path) -> Path:
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "vault.key").write_bytes(b"SECRET-KEY-MATERIAL")
    return vault


def run_inside(sandbox: Sandbox, script: str, *args: str, limits: Limits = LIMITS) -> dict:
    path = Path(tempfile.gettempdir()) / f"escape-{os.getpid()}.py"
    path.write_text(script)
    os.chmod(path, 0o644)
    try:
        with sandbox.start(
            ["/usr/bin/python3", "-I", "/opt/escape.py", *args],
            limits,
            files=[(path, "/opt/escape.py")],
        ) as run:
            run.stdin.close()
            data = run.stdout.read()
            assert run.close() == 0
    finally:
        path.unlink()
    return json.loads(data)


def test_escape_attempts_fail_inside_and_work_outside(
    listener: tuple[int, list[bytes]], fake_vault: Path, tmp_path: Path
) -> None:
    port, got = listener
    home, mount_point = tmp_path / "home", tmp_path / "mnt"
    home.mkdir()
    mount_point.mkdir()
    try:
        outside = subprocess.run(
            [
                "/usr/bin/python3",
                "-I",
                "-c",
                ESCAPE,
                str(fake_vault),
                str(port),
                str(mount_point),
                str(home),
                str(tmp_path),
            ],  # a stand-in for /usr: the control must harm nothing
            capture_output=True,
            text=True,
            check=True,
            stdin=subprocess.DEVNULL,
            env={"HOME": str(home), "TMPDIR": str(tmp_path)},
        )
    finally:
        assert str(mount_point) not in Path("/proc/self/mounts").read_text()
    control = json.loads(outside.stdout)
    assert control["inet"] == "connected" and control["read_vault"] == "read"
    assert control["write_vault"] == "written" and control["netlink"] == "opened"
    assert control["write_home"] == "written" and (home / "tipline-sandbox-test").exists()
    assert control["write_usr"] == "written"
    assert control["ptrace"] == "allowed" and control["unshare_user"] == "allowed"
    assert control["keyctl"] == "allowed"
    if os.getuid() == 0:
        assert control["mount"] == "allowed"
    assert got == [b"ESCAPED"]  # the listener sees a connection that gets through
    (fake_vault / "pwned").unlink()

    inside = run_inside(
        Sandbox(), ESCAPE, str(fake_vault), str(port), "/tmp", str(Path.home()), "/usr"
    )
    for name in ("inet", "inet6", "netlink"):
        assert inside[name] == "refused: EAFNOSUPPORT", (name, inside)  # the seccomp filter
    assert inside["unix"] == "opened"  # LibreOffice talks to itself this way
    for name in ("read_vault", "write_vault"):
        assert inside[name].startswith("refused: ENOENT"), inside  # the vault is not there
    assert inside["write_usr"] == "refused: EROFS"
    assert inside["write_home"].startswith("refused: ENOENT")  # no home folder in there
    assert inside["write_tmp"] == "written"  # its own tmpfs only
    for name in ("ptrace", "mount", "unshare_user", "keyctl"):
        assert inside[name] == "refused: EPERM", (name, inside)
    assert inside["caps"] == "0000000000000000" and inside["uid"] == 65534
    assert len(inside["processes"]) <= 3  # its own PID namespace: bwrap's init, python, no host
    time.sleep(0.3)
    assert got == [b"ESCAPED"] and not (fake_vault / "pwned").exists()
    assert (fake_vault / "vault.key").read_bytes() == b"SECRET-KEY-MATERIAL"


def test_the_sandbox_works_for_an_ordinary_user(
    fake_vault: Path, listener: tuple[int, list[bytes]]
) -> None:
    """The desk runs as root here and in CI; a journalist's desk does not. The same sandbox,
    started by uid 65534 on the host, holds the same way."""
    setpriv = shutil.which("setpriv")
    assert setpriv, "util-linux's setpriv is needed for this test"
    if os.getuid() != 0:
        wrapper: list[str] = []  # already an ordinary user
    else:
        wrapper = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    os.chmod(fake_vault, 0o755)
    inside = run_inside(
        Sandbox(wrapper=wrapper),
        ESCAPE,
        str(fake_vault),
        str(listener[0]),
        "/tmp",
        str(Path.home()),
        "/usr",
    )
    assert inside["inet"] == "refused: EAFNOSUPPORT" and inside["write_tmp"] == "written"
    assert inside["write_vault"].startswith("refused") and inside["ptrace"] == "refused: EPERM"
    assert inside["caps"] == "0000000000000000"
    assert listener[1] == []


def test_a_hanging_program_is_killed_at_the_deadline_with_everything_it_started() -> None:
    marker = f"{time.time_ns()}"
    limits = Limits(seconds=2, memory=1 << 30, tmpfs=1 << 20, file_size=1 << 20)
    started = time.monotonic()
    command = ["/bin/sh", "-c", f"sleep 1000{marker} & sleep 1001{marker}"]
    with (
        pytest.raises(TimeLimitError, match="longer than 2 seconds"),
        Sandbox().start(command, limits) as run,
    ):
        run.stdin.close()
        assert run.stdout.read() == b""
        run.close()
    assert time.monotonic() - started < 10
    time.sleep(0.5)
    leftovers = [p for p in os.listdir("/proc") if p.isdigit() and marker.encode() in _cmdline(p)]
    assert leftovers == []


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_cancel_stops_it_at_once() -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    with (
        pytest.raises(CancelledError),
        Sandbox().start(["/bin/sleep", "100"], LIMITS, cancel=cancel) as run,
    ):
        run.stdin.close()
        run.stdout.read()
        run.close()
    assert time.monotonic() - started < 5


def test_memory_file_and_tmpfs_limits_hold() -> None:
    grab = (
        "import sys\ntry:\n    b = bytearray(800 << 20)\n    print('allocated')\n"
        "except MemoryError:\n    print('refused')\n"
    )
    limits = Limits(seconds=30, memory=512 << 20, tmpfs=4 << 20, file_size=2 << 20)
    assert _python(grab, limits) == "refused"
    assert _python(grab, LIMITS) == "allocated"  # control: with 1 GiB it fits
    fill = (
        "import os\ntry:\n    open('/tmp/big','wb').write(os.urandom(3 << 20))\n"
        "    print('written')\nexcept OSError as e:\n    print('refused')\n"
    )
    assert _python(fill, limits) == "refused"  # over the file size limit (and the tmpfs)
    assert _python(fill, LIMITS) == "written"


def _python(code: str, limits: Limits) -> str:
    with Sandbox().start(["/usr/bin/python3", "-I", "-c", code], limits) as run:
        run.stdin.close()
        out = run.stdout.read().decode().strip()
        run.close()
    return out


def test_the_filter_is_classic_bpf_built_by_libseccomp() -> None:
    bpf = seccomp_bpf("/usr/bin/python3")
    assert len(bpf) % 8 == 0 and 100 < len(bpf) < 64 << 10
    assert sys.platform == "linux"
