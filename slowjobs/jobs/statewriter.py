"""Group commit of job state: many jobs' writes share one transaction.

Every job state is durable, but a commit per state change caps a process at
a few hundred jobs a second (each commit is a lock round and, on PostgreSQL,
an fsync).  So state changes go through one writer thread per process: it
takes everything queued since its last commit and writes it in a single
transaction.  Under load the batches grow and the commits per job fall;
when idle a write costs one commit, as before.

- It writes no new rows: ``enqueue`` commits its own INSERT on the
  request's connection, the quickest way to a durable row (see
  ``slowjobs.backend.backend._insert``), which is the one insert path.
- ``update`` does not block; ``on_written`` runs after the commit with the
  number of rows the conditional UPDATE matched (0 when the attempt no longer
  owns the job), on the writer's notifier thread (``slowjobs.jobs.notifier``),
  never on the writer's own.  Two updates of one job in one batch become
  one UPDATE.
- ``flush`` waits until everything queued so far is written, and its
  callbacks have run (shutdown).
- When the database is away (restarted, unreachable), the writer keeps the
  states and tries again, with growing pauses, until it is back: a job's
  outcome is never dropped for an outage.  Only a stopping writer gives up,
  leaving its jobs to recovery.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
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
from slowjobs.jobs.sql import statements_for
from slowjobs.jobs.writelock import sqlite_write_turn

logger = logging.getLogger("slowjobs.statewriter")

OnWritten = Callable[[int], None]

MAX_BATCH = 500
RETRIES = 3
# Longest pause, in seconds, between tries while the database is away.
OUTAGE_PAUSE = 2.0


class _Write:
    """One queued write: a conditional update (``ticket``), or a flush
    marker (no ticket)."""

    __slots__ = (
        "absorbed", "callbacks", "changes", "done", "error", "expect", "rows",
        "ticket",
    )  # fmt: skip

    def __init__(
        self,
        *,
        ticket: uuid.UUID | None = None,
        expect: dict[str, Any] | None = None,
        changes: dict[str, Any] | None = None,
        waited: bool = False,
    ) -> None:
        self.ticket = ticket
        self.expect = expect or {}
        self.changes = changes or {}
        self.callbacks: list[OnWritten] = []
        self.absorbed: list[_Write] = []
        # Only a caller that waits needs an Event; most updates are not waited for.
        self.done = threading.Event() if waited else None
        self.error: BaseException | None = None
        self.rows = 0

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
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        # Guards _thread and _stopped.
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._notifier = Notifier(f"slowjobs-notifier-{using}")
        self.commits = 0
        self.writes = 0

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
            self._queue.put(None)
            thread.join(timeout)
        self._notifier.stop(timeout)
        return flushed

    def _put(self, write: _Write) -> None:
        with self._lock:
            if self._stopped:
                # After stop (shutdown, or tests): write in the caller's thread.
                self._write_batch([write])
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="slowjobs-statewriter", daemon=True
                )
                self._thread.start()
        self._queue.put(write)

    def _loop(self) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                while len(batch) < MAX_BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        self._write_batch(batch)
                        return
                    batch.append(item)
                self._write_batch(batch)
        finally:
            dbhygiene.at_thread_exit()

    def _write_batch(self, batch: list[_Write]) -> None:
        merged: list[_Write] = []
        # The latest write of each job so far: only it can absorb the next.
        latest: dict[uuid.UUID, _Write] = {}
        for write in batch:
            if write.ticket is None:
                merged.append(write)  # a flush marker
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
        real = [w for w in merged if w.ticket is not None]
        if real:
            try:
                self._commit(real)
            except Exception as exc:  # not a database error: nothing can be written
                logger.exception("slowjobs: job states could not be written")
                for write in real:
                    write.error = exc
        self._finish(merged)

    def _commit(self, writes: list[_Write]) -> None:
        attempt = 0
        outage_since: float | None = None
        while True:
            try:
                with (
                    sqlite_write_turn(connections[self.using]),
                    transaction.atomic(using=self.using),
                ):
                    self._apply(writes)
                self.commits += 1
                if outage_since is not None:
                    logger.warning(
                        "slowjobs: the database is back after %.1f s; %d job "
                        "states written",
                        time.monotonic() - outage_since,
                        len(writes),
                    )
                return
            except (OperationalError, InterfaceError) as exc:
                # The database is away (or busy): the states wait for it.
                connections[self.using].close()
                if self._stopped:
                    self._apply_one_by_one(writes, exc)
                    return
                if outage_since is None:
                    outage_since = time.monotonic()
                    logger.warning(
                        "slowjobs: cannot write job states (%s); trying until "
                        "the database answers",
                        str(exc).strip().splitlines()[0] if str(exc) else exc,
                    )
                attempt += 1
                time.sleep(min(0.05 * 2**attempt, OUTAGE_PAUSE))
            except DatabaseError as exc:
                attempt += 1
                if attempt >= RETRIES:
                    self._apply_one_by_one(writes, exc)
                    return
                time.sleep(0.05 * attempt)

    def _apply(self, writes: list[_Write]) -> None:
        connection = connections[self.using]
        statements = statements_for(connection)
        with connection.cursor() as cursor:
            updates = [w for w in writes if w.ticket is not None]
            rows = statements.update_many(
                cursor, [(w.ticket, w.expect, w.changes) for w in updates if w.ticket]
            )
            for write, matched in zip(updates, rows, strict=True):
                write.rows = matched

    def _apply_one_by_one(self, writes: list[_Write], cause: BaseException) -> None:
        """The batch kept failing: find the write at fault, keep the others."""
        logger.warning("slowjobs: batch write failed (%s); writing one by one", cause)
        for write in writes:
            try:
                with transaction.atomic(using=self.using):
                    self._apply([write])
                self.commits += 1
            except DatabaseError as exc:
                write.error = exc
                logger.exception(
                    "Job %s: could not write its state %s",
                    write.ticket,
                    write.changes,
                    extra={"ticket": str(write.ticket)},
                )

    def _finish(self, writes: list[_Write]) -> None:
        self.writes += len(writes)
        for write in writes:
            for part in write.absorbed:
                part.rows, part.error = write.rows, write.error
                part.mark_done()
            write.mark_done()
            if write.error is not None:
                continue
            for callback in write.callbacks:
                self._notifier.post(partial(callback, write.rows))


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
