"""Privileges and namespaces: the few Linux calls the lab needs beyond ``socket``.

``setns`` is not in Python 3.11's ``os``, so it goes through libc. A
namespace switch is per thread: :func:`in_netns` runs a function in a
short-lived thread that entered the namespace, so the calling thread never
leaves its own (sockets and TUN descriptors made there keep their namespace
for life, whichever thread uses them later).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import threading
from typing import Callable, TypeVar

T = TypeVar("T")

CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
CAP_SYS_ADMIN = 21
_CAP_NAMES = {CAP_NET_ADMIN: "CAP_NET_ADMIN", CAP_NET_RAW: "CAP_NET_RAW",
              CAP_SYS_ADMIN: "CAP_SYS_ADMIN"}
CLONE_NEWNET = 0x40000000


class LabPermissionError(PermissionError):
    """The lab needs a capability (or a tool) this process does not have."""


def effective_capabilities() -> int:
    """The CapEff bit mask of this process (from /proc/self/status)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def require_capabilities(*caps: int, why: str) -> None:
    """Raise LabPermissionError naming every capability in ``caps`` that is missing."""
    have = effective_capabilities()
    missing = [_CAP_NAMES[c] for c in caps if not have & (1 << c)]
    if missing:
        raise LabPermissionError(
            f"{why} needs {' and '.join(missing)} (run as root, or grant "
            f"{', '.join(m.lower() for m in missing)} to python)")


def require_tools(*names: str) -> None:
    """Raise LabPermissionError naming the first missing command-line tool."""
    for name in names:
        if shutil.which(name) is None:
            raise LabPermissionError(f"the lab needs the '{name}' command, which is not on PATH")


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """Move the calling thread into the namespace open at ``fd``."""
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def enter_netns(name: str) -> None:
    """Move the calling thread into network namespace ``name`` (from ``ip netns add``)."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        setns(fd)
    finally:
        os.close(fd)


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """Run ``fn()`` inside network namespace ``name`` (from ``ip netns add``) and return its result."""
    result: list[T] = []
    error: list[BaseException] = []

    def body() -> None:
        try:
            enter_netns(name)
            result.append(fn())
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    t = threading.Thread(target=body, name=f"netns-{name}")
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]
