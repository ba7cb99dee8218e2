"""Group commit of job rows and states: many jobs' writes share one transaction.

Every job row and state is durable, but a commit per write caps a process at
a few hundred jobs a second (each commit is a lock round and, on PostgreSQL,
an fsync), and a thread woken for every write costs as much again in thread
switches.  So every write of a job outside the caller's own transaction goes
through one writer per process and database, and commits with whatever else
is queued:

- ``insert`` (a new job's row, from ``enqueue``) returns once the row is
  committed.  The caller's thread commits it itself, with every row and state
  queued before it, under one lock: concurrent requests' rows share a commit
  (the first to take the lock commits for those queued behind it), and a
  lone request pays no thread hop.  A database that does not answer fails
  the insert at once, so its client hears ``503`` and retries; the states
  that rode with it go back to the head of the queue.
- ``update`` does not block.  The state waits up to ``LINGER`` for a commit
  to ride with (a new row's, or the writer thread's, which then writes
  everything queued), so a job's start and finish, and many jobs' states,
  share one commit, and the writer wakes at most once a ``LINGER`` under
  load.  ``on_written`` runs after the commit with the number of rows the
  conditional UPDATE matched (0 when the attempt no longer owns the job), on
  the writer's notifier thread (``slowjobs.jobs.notifier``), never on a
  committing thread.  Two updates of one job in one batch become one UPDATE.
- ``update_and_wait`` and ``flush`` do not linger: someone is waiting.
- When the database is away (restarted, unreachable), the writer keeps the
  states and tries again, with growing pauses, until it is back: a job's
  outcome is never dropped for an outage.  Only a stopping writer gives up,
  leaving its jobs to recovery.  A batch the database rolled back to break
  a deadlock (or a serialization failure) is no outage: it is written again
  at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from typing import Any

from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    connections,
    transaction,
)

from slowjobs.jobs import dbhygiene
from slowjobs.jobs.notifier import Notifier
from slowjobs.jobs.sql import INSERT_CHUNK, JobStatements, statements_for
from slowjobs.jobs.writelock import sqlite_write_turn

logger = logging.getLogger("slowjobs.statewriter")

OnWritten = Callable[[int], None]

MAX_BATCH = 500
RETRIES = 3
# Longest pause, in seconds, between tries while the database is away.
OUTAGE_PAUSE = 2.0
# How long a state may wait for company before the writer commits it.
LINGER = 0.005


class _Write:
    """One queued write: a new row (``row``), a conditional update
    (``ticket``), or a flush marker (neither)."""

    __slots__ = (
        "absorbed", "callbacks", "changes", "done", "error", "expect", "row",
        "rows", "ticket",
    )  # fmt: skip

    def __init__(
        self,
        *,
        ticket: uuid.UUID | None = None,
        expect: dict[str, Any] | None = None,
        changes: dict[str, Any] | None = None,
        row: dict[str, Any] | None = None,
        waited: bool = False,
    ) -> None:
        self.ticket = ticket
        self.expect = expect or {}
        self.changes = changes or {}
        self.row = row
        self.callbacks: list[OnWritten] = []
        self.absorbed: list[_Write] = []
        # Only a caller that waits needs an Event; most updates are not waited for.
        self.done = threading.Event() if waited else None
        self.error: BaseException | None = None
        self.rows = 0

    @property
    def is_marker(self) -> bool:
        return self.ticket is None and self.row is None

    def absorbs(self, later: _Write) -> bool:
        """Whether ``later`` (an update of the same job) expects exactly the
        state this update leaves.

        Then the two become one UPDATE with this write's conditions: the
        later one could only have matched after this one did.
        """
        after = {**self.expect, **self.changes}
        return all(k in after and after[k] == v for k, v in later.expect.items())

    def wait(self, timeout: float | None = None) -> bool:
        assert self.done is not None
        return self.done.wait(timeout)

    def mark_done(self) -> None:
        if self.done is not None:
            self.done.set()


class StateWriter:
    def __init__(self, using: str = "default") -> None:
        self.using = using
        self._pending: deque[_Write] = deque()
        # Guards _pending, _thread and _stopped.
        self._lock = threading.Lock()
        # Held by whoever commits: batches are written one at a time, in
        # the order they were queued.
        self._commit_lock = threading.Lock()
        self._has_work = threading.Event()
        self._urgent = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._notifier = Notifier(f"slowjobs-notifier-{using}")
        self._outage_since: float | None = None
        self._outage_tries = 0
        self.commits = 0
        self.writes = 0

    def insert(self, row: dict[str, Any]) -> None:
        """Write a new job's row; return once it is committed, or raise."""
        connection = connections[self.using]
        if connection.vendor != "sqlite":
            # Concurrent commits share their WAL flush in the database
            # itself: measured, queueing rows here for a shared commit only
            # added a wait.  One statement in autocommit is one round trip.
            with connection.cursor() as cursor:
                statements_for(connection).insert(cursor, [row])
            self._count_commit()
            return
        write = _Write(row=row, waited=True)
        with self._lock:
            stopped = self._stopped
            if not stopped:
                self._pending.append(write)
        with self._commit_lock:
            # Whoever held the lock before may have written ours.
            while not write.wait(0):
                self._write_batch([write]) if stopped else self._commit_queued()
        if write.error is not None:
            raise write.error

    def update(
        self,
        ticket: uuid.UUID,
        *,
        expect: dict[str, Any],
        changes: dict[str, Any],
        on_written: OnWritten | None = None,
    ) -> None:
        write = _Write(ticket=ticket, expect=expect, changes=changes)
        if on_written is not None:
            write.callbacks.append(on_written)
        self._put(write)

    def update_and_wait(
        self, ticket: uuid.UUID, *, expect: dict[str, Any], changes: dict[str, Any]
    ) -> int:
        """As ``update``, but return once written: the rows it matched."""
        write = _Write(ticket=ticket, expect=expect, changes=changes, waited=True)
        self._put(write)
        write.wait()
        if write.error is not None:
            raise write.error
        return write.rows

    def flush(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        marker = _Write(waited=True)
        self._put(marker)
        if not marker.wait(timeout):
            return False
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self._notifier.flush(left)

    def stop(self, timeout: float | None = None) -> bool:
        flushed = self.flush(timeout)
        with self._lock:
            self._stopped = True
            thread = self._thread
        if thread is not None:
            self._urgent.set()
            self._has_work.set()
            thread.join(timeout)
        self._notifier.stop(timeout)
        return flushed

    def _put(self, write: _Write) -> None:
        with self._lock:
            stopped = self._stopped
            if not stopped:
                self._pending.append(write)
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._loop, name="slowjobs-statewriter", daemon=True
                    )
                    self._thread.start()
        if stopped:
            # After stop (shutdown, or tests): write in the caller's thread.
            with self._commit_lock:
                self._write_batch([write])
            return
        if write.done is not None:
            self._urgent.set()
        if not self._has_work.is_set():
            self._has_work.set()

    def _loop(self) -> None:
        try:
            while True:
                self._has_work.wait()
                if not self._urgent.is_set():
                    self._urgent.wait(LINGER)
                # Cleared before the queue is taken: a write queued from now
                # on sets them again, one queued before is in this turn.
                self._has_work.clear()
                self._urgent.clear()
                with self._commit_lock:
                    # What came during the commit lingers in its turn, unless
                    # a full batch is waiting already.
                    while self._commit_queued() and self._backlog() >= MAX_BATCH:
                        pass
                with self._lock:
                    if self._stopped and not self._pending:
                        return
                if self._outage_since is not None:
                    time.sleep(min(0.05 * 2**self._outage_tries, OUTAGE_PAUSE))
                    self._has_work.set()
        finally:
            dbhygiene.at_thread_exit()

    def _backlog(self) -> int:
        with self._lock:
            return len(self._pending)

    def _commit_queued(self) -> bool:
        """Write one batch of what is queued (the commit lock held); whether
        there was anything to write and it was written."""
        with self._lock:
            batch = [
                self._pending.popleft()
                for _ in range(min(MAX_BATCH, len(self._pending)))
            ]
        if not batch:
            return False
        return self._write_batch(batch)

    def _write_batch(self, batch: list[_Write]) -> bool:
        merged: list[_Write] = []
        # The latest write of each job so far: only it can absorb the next.
        latest: dict[uuid.UUID, _Write] = {}
        for write in batch:
            if write.ticket is None or write.row is not None:
                merged.append(write)  # a new row, or a flush marker
                continue
            target = latest.get(write.ticket)
            if target is None or not target.absorbs(write):
                merged.append(write)
                latest[write.ticket] = write
            else:
                target.changes = {**target.changes, **write.changes}
                target.callbacks.extend(write.callbacks)
                write.callbacks = []
                target.absorbed.append(write)
        real = [w for w in merged if not w.is_marker]
        if real:
            try:
                if not self._commit(real):
                    self._hand_back(merged)
                    return False
            except Exception as exc:  # not a database error: nothing can be written
                logger.exception("slowjobs: job states could not be written")
                for write in real:
                    write.error = exc
        self._finish(merged)
        return True

    def _commit(self, writes: list[_Write]) -> bool:
        """Commit the writes; False when the database is away (the new rows
        then carry the error, the states are to be tried again)."""
        attempt = 0
        # New rows that make one statement need no transaction around it.
        alone = (
            all(w.row is not None for w in writes)
            and len(writes) <= INSERT_CHUNK
            and len(JobStatements.insert_groups([w.row for w in writes if w.row])) == 1
        )
        while True:
            try:
                with (
                    sqlite_write_turn(connections[self.using]),
                    nullcontext() if alone else transaction.atomic(using=self.using),
                ):
                    self._apply(writes)
                self._count_commit()
                self._back_from_outage(len(writes))
                return True
            except (OperationalError, InterfaceError) as exc:
                if _lost_a_conflict(exc) and attempt < RETRIES:
                    # A deadlock (the heartbeat's multi-row renewal can lock
                    # the same rows in another order) or a serialization
                    # failure: the database rolled this transaction back
                    # whole and let the other go on, so it is tried again.
                    logger.info("slowjobs: a batch lost a conflict (%s); again", exc)
                    attempt += 1
                    time.sleep(0.01 * attempt)
                    continue
                # The database is away (or busy): the states wait for it.
                connections[self.using].close()
                if self._stopped:
                    self._apply_one_by_one(writes, exc)
                    return True
                self._note_outage(exc)
                for write in writes:
                    if write.row is not None:
                        write.error = exc
                        write.mark_done()
                return False
            except DatabaseError as exc:
                attempt += 1
                if attempt >= RETRIES:
                    self._apply_one_by_one(writes, exc)
                    return True
                time.sleep(0.05 * attempt)

    def _count_commit(self) -> None:
        with self._lock:  # committing threads may run side by side
            self.commits += 1

    def _note_outage(self, exc: BaseException) -> None:
        self._outage_tries += 1
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            logger.warning(
                "slowjobs: cannot write job states (%s); trying until the "
                "database answers",
                str(exc).strip().splitlines()[0] if str(exc) else exc,
            )

    def _back_from_outage(self, written: int) -> None:
        if self._outage_since is not None:
            logger.warning(
                "slowjobs: the database is back after %.1f s; %d job states written",
                time.monotonic() - self._outage_since,
                written,
            )
            self._outage_since = None
            self._outage_tries = 0

    def _hand_back(self, writes: list[_Write]) -> None:
        """Put the writes an outage kept back at the head of the queue, in
        their order, for the writer thread to try again."""
        kept = [w for w in writes if w.row is None]
        with self._lock:
            self._pending.extendleft(reversed(kept))
        self._has_work.set()

    def _apply(self, writes: list[_Write]) -> None:
        connection = connections[self.using]
        statements = statements_for(connection)
        with connection.cursor() as cursor:
            rows = [w.row for w in writes if w.row is not None]
            if rows:
                # A job's updates only follow its row's commit, so the new
                # rows may go first.
                statements.insert(cursor, rows)
            updates = [w for w in writes if w.row is None and w.ticket is not None]
            matched = statements.update_many(
                cursor, [(w.ticket, w.expect, w.changes) for w in updates if w.ticket]
            )
            for write, count in zip(updates, matched, strict=True):
                write.rows = count

    def _apply_one_by_one(self, writes: list[_Write], cause: BaseException) -> None:
        """The batch kept failing: find the write at fault, keep the others."""
        logger.warning("slowjobs: batch write failed (%s); writing one by one", cause)
        for write in writes:
            try:
                with transaction.atomic(using=self.using):
                    self._apply([write])
                self._count_commit()
            except DatabaseError as exc:
                write.error = exc
                if write.row is not None:
                    continue  # its caller hears of it
                logger.exception(
                    "Job %s: could not write its state %s",
                    write.ticket,
                    write.changes,
                    extra={"ticket": str(write.ticket)},
                )

    def _finish(self, writes: list[_Write]) -> None:
        self.writes += len(writes)
        notices: list[Callable[[], None]] = []
        for write in writes:
            for part in write.absorbed:
                part.rows, part.error = write.rows, write.error
                part.mark_done()
            write.mark_done()
            if write.error is not None:
                continue
            notices.extend(partial(done, write.rows) for done in write.callbacks)
        if notices:
            # One hand-over for the whole batch: the notifier wakes once a
            # commit, not once a job.
            self._notifier.post_all(notices)


# SQLSTATEs of a transaction the database rolled back to resolve a conflict
# with another one: deadlock detected, serialization failure.
CONFLICTS = frozenset({"40P01", "40001"})


def _lost_a_conflict(exc: BaseException) -> bool:
    cause = exc.__cause__
    code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return code in CONFLICTS


# One writer per process, made on first use and forgotten in a forked child.
_lock = threading.Lock()
_writers: dict[str, StateWriter] = {}


def get_writer(using: str = "default") -> StateWriter:
    with _lock:
        writer = _writers.get(using)
        if writer is None:
            writer = _writers[using] = StateWriter(using)
        return writer


def stop_writers(timeout: float | None = None) -> bool:
    """Write everything queued, then stop; the next write starts a new writer."""
    with _lock:
        writers = list(_writers.values())
        _writers.clear()
    return all([writer.stop(timeout) for writer in writers])


def _forget_after_fork() -> None:
    global _lock
    _writers.clear()
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
