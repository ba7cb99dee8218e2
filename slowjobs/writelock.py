"""A queue in the kernel for SQLite's one write lock.

Each process's state writer commits batches; with several server processes
on one SQLite file, their writers meet at SQLite's write lock, and SQLite
makes the loser sleep in steps of 1, 2, 5, 10 ms... before it tries again:
most of a batch's time went to those sleeps.  Taking an ``flock`` on a file
beside the database first, the loser instead sleeps in the kernel and wakes
the moment the winner is done.  Other writers (the heartbeat, a cancel) do
not take it and fall back on SQLite's own waiting, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator

from django.db.backends.base.base import BaseDatabaseWrapper

_lock = threading.Lock()
_files: dict[str, int] = {}


def _lock_file(database: str) -> int | None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    with _lock:
        fd = _files.get(database)
        if fd is None:
            try:
                fd = os.open(f"{database}-slowjobs.lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                return None
            _files[database] = fd
        return fd


@contextlib.contextmanager
def sqlite_write_turn(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """Hold this process's turn at the database's write lock (SQLite only)."""
    fd = None
    if connection.vendor == "sqlite":
        fd = _lock_file(str(connection.settings_dict["NAME"]))
    if fd is None:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _forget_after_fork() -> None:
    # A forked child shares the parent's open file (and so its flock): it
    # opens its own on first use.
    global _lock
    _lock = threading.Lock()
    for fd in _files.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _files.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
