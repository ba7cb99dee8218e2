"""Who this process is, as recorded in ``Job.owner``, and whether one still runs.

The id is ``host:pid:start``.  It is worked out again in a forked child (a
gunicorn worker must not inherit its master's identity).

A dead owner on this machine is proved from the kernel, not waited for:
the process table says whether its pid still runs, and the pid's start time
(in clock ticks since boot, from ``/proc``) says whether it is still the
same process, so a recycled pid never looks alive.  "This machine" means
the same kernel boot and the same pid namespace (a container has its own):
``machine()`` names both, and the heartbeat records it with the pid.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from slowjobs import conf

_identity: str | None = None
_machine: str | None = None


def host_name() -> str:
    """``SLOWJOBS_HOST`` if set (a stable name for a container), else the host's."""
    return conf.get().host or socket.gethostname()


def process_id() -> str:
    global _identity
    if _identity is None:
        _identity = f"{host_name()}:{os.getpid()}:{time.time():.3f}"
    return _identity


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def machine() -> str:
    """Which process table this process's pid belongs to.

    Empty where it cannot be told (no ``/proc``): then no pid is trusted
    and owners there are proved dead by their lease alone.
    """
    global _machine
    if _machine is None:
        boot = _read("/proc/sys/kernel/random/boot_id")
        try:
            namespace = os.stat("/proc/self/ns/pid").st_ino
        except OSError:
            namespace = 0
        _machine = f"{host_name()}|{boot}|{namespace}" if boot and namespace else ""
    return _machine


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot; None if it does not run."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    # The command name (field 2) is in parentheses and may hold spaces.
    fields = stat.rpartition(")")[2].split()
    try:
        # Field 22 of the whole line; field 3 (the state) is fields[0] here.
        state, ticks = fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None
    return None if state in ("Z", "X") else ticks


def runs_here(pid: int, ticks: int | None) -> bool:
    """Whether the process recorded as (``pid``, ``ticks``) on this machine runs."""
    return ticks is not None and start_ticks(pid) == ticks


def _forget_identity() -> None:
    global _identity
    _identity = None


os.register_at_fork(after_in_child=_forget_identity)
