"""The watcher itself (tests/watch.py): each of its checks sees the thing it looks for."""

from __future__ import annotations

import socket
import sys
import tempfile
from pathlib import Path

from tests.watch import Trace, audited, run_traced


def test_audit_hook_sees_writes_temp_files_and_sockets(tmp_path: Path) -> None:
    allowed, other = tmp_path / "allowed", tmp_path / "other"
    allowed.mkdir()
    other.mkdir()
    with audited() as log:
        (allowed / "fine.txt").write_text("x")
        (allowed / "fine.txt").read_text()  # reading is not writing
        (other / "leak.txt").write_text("x")
        with tempfile.TemporaryFile(dir=other):  # unnamed: O_TMPFILE on the folder
            pass
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect_ex(("127.0.0.1", 9))
        a, b = socket.socketpair()
        a.close()
        b.close()
    outside = [str(args[0]) for _, args in log.writes_outside([allowed])]
    assert str(other / "leak.txt") in outside
    assert str(other) in outside  # the unnamed temporary file's folder
    assert not [p for p in outside if p.startswith(str(allowed))]
    events = [e for e, _ in log.network()]
    assert "socket.__new__" in events and "socket.connect" in events
    # the anonymous AF_UNIX pair is not network; the AF_INET socket is
    assert sum(1 for e, _ in log.network() if e == "socket.__new__") == 1
    with audited() as quiet:
        pass
    assert quiet.events == []  # nothing recorded outside a block


def test_strace_sees_unlinked_files_kernel_writes_and_sockets(tmp_path: Path) -> None:
    code = (
        "import os, socket, tempfile\n"
        "with tempfile.TemporaryFile() as f: f.write(b'MARK-one')\n"
        "fd = os.open('x', os.O_WRONLY | os.O_CREAT); os.pwrite(fd, b'MARK-two', 5); "
        "os.unlink('x')\n"
        "os.writev(fd, [b'MARK-', b'three'])\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'hi', ('127.0.0.1', 9))\n"
    )
    done, trace = run_traced(
        [sys.executable, "-c", code],
        tmp_path / "t.txt",
        cwd=tmp_path,
        env={"TMPDIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    leaks = trace.leaks([b"MARK-one", b"MARK-two", b"MARK-three"])
    assert {m for _, m in leaks} == {b"MARK-one", b"MARK-two", b"MARK-three"}
    assert trace.leaks([b"MARK-two"], [tmp_path]) == []  # an allowed folder is allowed
    assert {c.name for c in trace.network()} >= {"socket", "sendto"}


def test_parse_reads_namespaced_pids_and_hex_paths() -> None:
    text = (
        '10 execve("\\x2f\\x75\\x73\\x72\\x2f\\x62\\x69\\x6e\\x2f\\x62\\x77\\x72\\x61\\x70", '
        '["\\x62\\x77\\x72\\x61\\x70", "\\x2d\\x2d\\x75\\x6e\\x73\\x68\\x61\\x72\\x65\\x2d'
        '\\x61\\x6c\\x6c"], 0x0 /* 1 var */) = 0\n'
        "10 clone(child_stack=NULL, flags=CLONE_NEWPID|SIGCHLD) = 11\n"
        "11 clone(child_stack=NULL, flags=SIGCHLD) = 2 /* 12 in strace's PID NS */\n"
        '12 write(3</tmp/work/x>, "\\x4d\\x41\\x52\\x4b", 4) = 4\n'
        '13 write(3</tmp/host>(deleted), "\\x4d\\x41\\x52\\x4b", 4) = 4\n'
    )
    trace = Trace.parse(text)
    assert trace.sandboxed() == {10, 11, 12}
    assert trace.sandbox_offline()
    assert trace.written() == {"/tmp/host": b"MARK"}  # the sandbox's own tmpfs is left out
    assert set(trace.written(sandbox_tmpfs=True)) == {"/tmp/work/x", "/tmp/host"}


def test_network_leaves_out_only_sends_on_a_socketpair() -> None:
    trace = Trace.parse(
        "20 socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0, [4<UNIX-STREAM:[100->101]>, "
        "5<UNIX-STREAM:[101->100]>]) = 0\n"
        '21 sendto(5<UNIX-STREAM:[101->100]>, "\\x00", 1, 0, NULL, 0) = 1\n'  # another thread
        '21 sendto(7<UNIX-STREAM:[300->301]>, "\\x00", 1, 0, NULL, 0) = 1\n'  # someone else's
        "21 socket(AF_UNIX, SOCK_STREAM, 0) = 8<UNIX:[400]>\n"
    )
    assert [c.line.split("(")[1][:1] for c in trace.network()] == ["7", "A"]


def test_the_sandbox_is_followed_through_interrupted_calls() -> None:
    """On a busy machine strace splits calls ("<unfinished ...>" then "<... resumed>") and may
    print a child's writes before its parent's clone returns: the process tree still holds."""
    bwrap = (
        '10 execve("\\x2f\\x75\\x73\\x72\\x2f\\x62\\x69\\x6e\\x2f\\x62\\x77\\x72\\x61\\x70", '
        '["\\x62\\x77\\x72\\x61\\x70"], 0x0 /* 1 var */ <unfinished ...>\n'
        "10 <... execve resumed>) = 0\n"
    )
    split_clone = (
        "10 clone(child_stack=NULL, flags=CLONE_NEWPID|SIGCHLD <unfinished ...>\n"
        '11 write(3</tmp/work/original.pdf>, "\\x4d\\x41\\x52\\x4b", 4) = 4\n'
        "10 <... clone resumed>) = 11\n"
    )
    trace = Trace.parse(bwrap + split_clone)
    assert trace.sandboxed() == {10, 11}
    assert trace.written() == {}  # the sandbox's tmpfs, as in one piece
    # Control: without the resumed halves nothing ties pid 11 to the sandbox, and its write
    # counts as the host's.
    lines = (bwrap + split_clone).splitlines()
    cut = "".join(line + "\n" for line in lines if "resumed" not in line)
    assert Trace.parse(cut).written() == {"/tmp/work/original.pdf": b"MARK"}
