"""PostgreSQL: a lock each live process holds, so any host can prove it died.

A process that runs jobs takes a session-level advisory lock, keyed by its
id, on a connection of its own, before any row names it as an owner, and
holds it for its whole life.  When the process dies, PostgreSQL ends its
session and the lock is free: another process that can take the lock knows
that the owner's connection is gone, without waiting out the lease.

Two things free a lock while its process lives, and both are handled:

- the server restarts: every lock is gone at once.  Lock proofs are not
  trusted for one lease after the server started: by then every live
  process has beaten, and so taken its lock again, or is dead by its lease
  anyway;
- the lock's connection breaks: the heartbeat looks at it every beat and
  takes the lock again on a new connection.

A pooler in transaction mode (PgBouncer) shares sessions between clients
and so breaks session locks: turn them off there (``SLOWJOBS_ADVISORY_LOCKS``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Iterable

from django.db import DatabaseError, Error, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from slowjobs import conf

logger = logging.getLogger("slowjobs.processlock")

# The first key of the two-key form: slowjobs's locks never meet a
# project's own single-key locks, nor those of other apps using this class.
LOCK_CLASS = 0x534A6F62  # "SJob"


def lock_key(process_id: str) -> int:
    """A signed 32-bit key for a process id.  A collision only makes a dead
    process look alive (the lease still ends it), never the other way."""
    digest = hashlib.blake2b(process_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def supported(using: str = "default") -> bool:
    return conf.get().advisory_locks and connections[using].vendor == "postgresql"


class ProcessLock:
    """This process's lock, on a connection no other code uses."""

    def __init__(self, process_id: str, using: str = "default") -> None:
        self.process_id = process_id
        self.using = using
        self._connection: BaseDatabaseWrapper | None = None
        # The heartbeat thread and a starting request may both call hold().
        self._lock = threading.Lock()

    @property
    def held(self) -> bool:
        return self._connection is not None

    def hold(self) -> bool:
        """Take the lock if this process does not hold it (or lost it)."""
        with self._lock:
            if self._connection is not None:
                try:
                    with self._connection.cursor() as cursor:
                        cursor.execute("SELECT 1")
                    return True
                except DatabaseError:
                    logger.warning("slowjobs: the process lock's connection broke")
                    self._drop()
            connection = connections.create_connection(self.using)
            # Taken by whichever thread starts the process, then looked at by
            # the heartbeat's: one at a time, under self._lock.
            connection.inc_thread_sharing()
            try:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_try_advisory_lock(%s::int4, %s::int4)",
                        [LOCK_CLASS, lock_key(self.process_id)],
                    )
                    (taken,) = cursor.fetchone()
            except DatabaseError:
                connection.close()
                raise
            if not taken:
                # Another live process's id has the same key: no proof for
                # this one, its lease still works.
                logger.warning(
                    "slowjobs: the process lock of %s is taken; its death "
                    "will be known by its lease only",
                    self.process_id,
                )
                connection.close()
                return False
            self._connection = connection
            return True

    def release(self) -> None:
        """Let the lock go now: PostgreSQL ends a closed session a moment
        after the client leaves, and until then the lock looks held."""
        with self._lock:
            if self._connection is not None:
                # Error, not DatabaseError: a connection closed under
                # Django raises InterfaceError, and the close below is enough.
                with (
                    contextlib.suppress(Error),
                    self._connection.cursor() as cursor,
                ):
                    cursor.execute(
                        "SELECT pg_advisory_unlock(%s::int4, %s::int4)",
                        [LOCK_CLASS, lock_key(self.process_id)],
                    )
            self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(DatabaseError):
                connection.close()


def provably_gone(owners: Iterable[str], using: str = "default") -> set[str]:
    """Which of ``owners`` hold no lock: their sessions have ended.

    Only owners whose heartbeat rows say they took a lock should be asked
    (a process without one, e.g. on SQLite or with locks off, is not gone).
    A transaction-level try-lock is let go at once: nothing is held after.
    """
    owners = list(owners)
    if not owners:
        return set()
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT now() - pg_postmaster_start_time() > %s * interval '1 second'",
            [conf.get().lease],
        )
        (trusted,) = cursor.fetchone()
        if not trusted:
            return set()
        cursor.execute(
            "SELECT owner FROM unnest(%s::text[], %s::int[]) AS o(owner, key) "
            "WHERE pg_try_advisory_xact_lock(%s::int4, key)",
            [owners, [lock_key(owner) for owner in owners], LOCK_CLASS],
        )
        return {row[0] for row in cursor.fetchall()}


_lock = threading.Lock()
_held: ProcessLock | None = None


def hold_for(process_id: str, using: str = "default") -> bool:
    """Take (or check) this process's lock; False where there is none."""
    global _held
    if not supported(using):
        return False
    with _lock:
        if _held is None or _held.process_id != process_id:
            _held = ProcessLock(process_id, using)
        held = _held
    try:
        return held.hold()
    except DatabaseError:
        logger.exception("slowjobs: could not take the process lock; trying again")
        return False


def release() -> None:
    global _held
    with _lock:
        held, _held = _held, None
    if held is not None:
        held.release()


def _forget_after_fork() -> None:
    global _held, _lock
    # The parent's connection is the parent's: never close it from here.
    _held = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
