"""What a hostile plan or model would try from inside agentd's tool sandbox.

Each probe prints one JSON line: {"probe": NAME, "refused": BOOL, "detail": TEXT}. Nothing here changes
the host even where a probe is allowed: the /proc/sys files are only opened (or written with the value
they already hold), the hostname is set to itself inside the sandbox's own UTS namespace, and the fork
bomb is bounded (FORKS children that sleep, then are killed).

Usage: python3 sandbox_probe.py [FORKS]
"""
import ctypes
import json
import os
import platform
import signal
import socket
import sys
import time

LIBC = ctypes.CDLL(None, use_errno=True)
# System call numbers the C library has no wrapper for, per architecture.
SYSCALLS = {
    "x86_64": {"keyctl": 250, "bpf": 321},
    "aarch64": {"keyctl": 219, "bpf": 280},
}
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
PTRACE_ATTACH = 16


def report(name, refused, detail):
    print(json.dumps({"probe": name, "refused": refused, "detail": detail}), flush=True)


def libc_call(name, call):
    """Reports a C call that returns -1 with errno on failure."""
    ctypes.set_errno(0)
    result = call()
    if result == -1:
        report(name, True, os.strerror(ctypes.get_errno()))
    else:
        report(name, False, f"returned {result}")


def open_for_writing(name, path, same_value=False):
    try:
        current = open(path, "rb").read() if same_value else None
        fd = os.open(path, os.O_WRONLY)
    except OSError as error:
        return report(name, True, f"open: {error.strerror}")
    try:
        if same_value:
            os.write(fd, current)
            return report(name, False, "opened for writing and written")
        report(name, False, "opened for writing")
    except OSError as error:
        report(name, False, f"opened for writing; write: {error.strerror}")
    finally:
        os.close(fd)


def read_file(name, path):
    try:
        with open(path, "rb") as f:
            f.read(1)
        report(name, False, "read")
    except OSError as error:
        report(name, True, error.strerror)


def seccomp_mode():
    for line in open("/proc/self/status"):
        if line.startswith("Seccomp:"):
            mode = line.split()[1]
            return report("seccomp", mode == "2", f"Seccomp: {mode} (2 is a filter)")
    report("seccomp", False, "no Seccomp line in /proc/self/status")


def fork_bomb(forks):
    children = []
    refusal = None
    for _ in range(forks):
        try:
            pid = os.fork()
        except OSError as error:
            refusal = error.strerror
            break
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    detail = f"{len(children)} of {forks} forks succeeded" + (f"; then: {refusal}" if refusal else "")
    report("fork_bomb", len(children) < forks, detail)


def main():
    forks = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    print(json.dumps({"probe": "identity", "uid": os.getuid(), "gid": os.getgid()}), flush=True)
    open_for_writing("write /proc/sys/kernel/hostname", "/proc/sys/kernel/hostname")
    open_for_writing("write /proc/sys/kernel/core_pattern", "/proc/sys/kernel/core_pattern")
    open_for_writing("write /proc/sys/vm/drop_caches", "/proc/sys/vm/drop_caches")
    open_for_writing("write /proc/sys/kernel/printk_ratelimit", "/proc/sys/kernel/printk_ratelimit", same_value=True)
    open_for_writing("write /proc/sysrq-trigger", "/proc/sysrq-trigger")
    try:
        socket.sethostname(socket.gethostname())
        report("sethostname", False, "the hostname was set")
    except OSError as error:
        report("sethostname", True, error.strerror)
    read_file("read /etc/shadow", "/etc/shadow")
    libc_call("unshare user namespace", lambda: LIBC.unshare(CLONE_NEWUSER))
    libc_call("unshare mount namespace", lambda: LIBC.unshare(CLONE_NEWNS))
    libc_call("mount tmpfs", lambda: LIBC.mount(b"none", b"/tmp", b"tmpfs", 0, None))
    libc_call("ptrace attach", lambda: LIBC.ptrace(PTRACE_ATTACH, 1, None, None))
    numbers = SYSCALLS.get(platform.machine(), {})
    if "keyctl" in numbers:
        # KEYCTL_GET_KEYRING_ID of the session keyring: allowed to any process without a filter.
        libc_call("keyctl", lambda: LIBC.syscall(numbers["keyctl"], 0, -3, 0))
    seccomp_mode()
    fork_bomb(forks)


main()
