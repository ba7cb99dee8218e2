"""A queue in the kernel for SQLite's one write lock.

Each process's state writer commits batches; with several server processes
on one SQLite file, their writers meet at SQLite's write lock, and SQLite
makes the loser sleep in steps of 1, 2, 5, 10 ms... before it tries again:
most of a batch's time went to those sleeps.  Taking an ``flock`` on a file
beside the database first (and, within the process, a lock: threads share
the process's flock), the loser instead sleeps in the kernel and wakes the
moment the winner is done.  The state writer and the enqueue's own INSERT
take it; other writers (the heartbeat, a cancel) do not, and fall back on
SQLite's own waiting, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator

from django.db.backends.base.base import BaseDatabaseWrapper

_lock = threading.Lock()
_files: dict[str, tuple[int, threading.Lock]] = {}


def _lock_file(database: str) -> tuple[int, threading.Lock] | None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    with _lock:
        found = _files.get(database)
        if found is None:
            try:
                fd = os.open(f"{database}-slowjobs.lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                return None
            found = _files[database] = (fd, threading.Lock())
        return found


@contextlib.contextmanager
def sqlite_write_turn(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """Hold this process's turn at the database's write lock (SQLite only)."""
    found = None
    if connection.vendor == "sqlite":
        found = _lock_file(str(connection.settings_dict["NAME"]))
    if found is None:
        yield
        return
    fd, in_process = found
    with in_process:
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
    for fd, _ in _files.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _files.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
