"""Writes the sandbox's seccomp filter, as classic BPF, to standard output.

This file is not imported by the desk: it is run by Debian's own ``/usr/bin/python3``, which has
libseccomp's binding (Debian package ``python3-seccomp``), and the desk hands the bytes to
bubblewrap (``--seccomp FD``). Building the filter with libseccomp, rather than writing BPF by
hand, gets the architecture checks right (a foreign or x32 system call number is killed).

The policy is a deny list on top of what bubblewrap already takes away (namespaces, every
capability, no new privileges). Everything listed is something a document renderer never needs
and an exploit often does: another socket family than AF_UNIX (so no network even if a network
namespace were ever shared), tracing or reading other processes, mounting, kernel keyrings, new
namespaces, loading kernel code, BPF, perf, userfaultfd and io_uring (both used to widen kernel
bugs), and pushing characters into a terminal (TIOCSTI).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sys

import seccomp

DENIED = (
    # tracing and other processes' memory
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    # file systems and namespaces
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "name_to_handle_at",
    "open_by_handle_at",
    "quotactl",
    "swapon",
    "swapoff",
    # kernel keyrings
    "keyctl",
    "add_key",
    "request_key",
    # the kernel itself
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "acct",
    "syslog",
    "iopl",
    "ioperm",
    "uselib",
    "personality",
    "lookup_dcookie",
    "vhangup",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    # memory policy calls that have served kernel exploits and that no renderer needs
    "move_pages",
    "migrate_pages",
    "mbind",
    "set_mempolicy",
    "get_mempolicy",
)
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
CLONE_NEWUSER = 0x10000000


def build() -> seccomp.SyscallFilter:
    """The filter: allow by default, refuse the calls above with EPERM."""
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED:
        with contextlib.suppress(RuntimeError, ValueError):  # not a call on this architecture
            f.add_rule(seccomp.ERRNO(errno.EPERM), name)
    # No socket family but AF_UNIX: EAFNOSUPPORT, which programs treat as "no network here".
    f.add_rule(
        seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.NE, socket.AF_UNIX)
    )
    f.add_rule(
        seccomp.ERRNO(errno.EAFNOSUPPORT),
        "socketpair",
        seccomp.Arg(0, seccomp.NE, socket.AF_UNIX),
    )
    for request in (TIOCSTI, TIOCLINUX):
        f.add_rule(seccomp.ERRNO(errno.EPERM), "ioctl", seccomp.Arg(1, seccomp.EQ, request))
    # A new user namespace through clone; clone3 passes its flags in memory, where seccomp
    # cannot look, so it answers ENOSYS and the C library falls back to clone.
    f.add_rule(
        seccomp.ERRNO(errno.EPERM),
        "clone",
        seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER),
    )
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    return f


if __name__ == "__main__":
    build().export_bpf(sys.stdout)
    sys.stdout.flush()
    os._exit(0)
