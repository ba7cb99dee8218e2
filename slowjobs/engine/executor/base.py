"""Capacity accounting shared by both executor modes.

Room is taken in two steps: ``reserve`` takes a slot (waiting at most the
submit timeout, then raising ``ExecutorFull``) before the job row is written,
and ``start`` runs the job on that slot once the row is committed.  So a
refusal happens before anything is written, and an accepted job always has
room to run.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from django.utils.translation import gettext, ngettext

from slowjobs.exceptions import ExecutorFull, ExecutorShutDown

logger = logging.getLogger("slowjobs.executor")

Work = Callable[[], Any]
# (key, how many at once): a task's concurrency bound (slowjobs.backend.task).
Limit = tuple[str, int]


class Slot:
    """Room for one job; released when its work ends (or is never started)."""

    __slots__ = ("_executor", "_released")

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._released = False

    @property
    def executor(self) -> Executor:
        return self._executor

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._executor._free_slot()


class Executor(ABC):
    mode: str = ""

    def __init__(
        self, *, capacity: int | None, submit_timeout: float, retry_after: int
    ) -> None:
        self.capacity = capacity
        self.submit_timeout = submit_timeout
        self.retry_after = retry_after
        # Guards _used and _shutdown; waiters are woken when a slot frees.
        self._room = threading.Condition(threading.Lock())
        self._used = 0
        self._shutdown = False
        self.jobs_done = 0

    @property
    def used(self) -> int:
        return self._used

    def reserve(self, *, timeout: float | None = None) -> Slot:
        """Take room for one job, or raise ExecutorFull after the timeout."""
        wait = self.submit_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        with self._room:
            while True:
                if self._shutdown:
                    raise ExecutorShutDown(
                        gettext("This server is shutting down; try again shortly."),
                        retry_after=self.retry_after,
                    )
                if self.capacity is None or self._used < self.capacity:
                    self._used += 1
                    return Slot(self)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ExecutorFull(
                        full_message(self.capacity, self.retry_after),
                        retry_after=self.retry_after,
                    )
                self._room.wait(remaining)

    def force_slot(self) -> Slot:
        """Room beyond the bound, for a job whose row is already committed."""
        with self._room:
            self._used += 1
        return Slot(self)

    def _free_slot(self) -> None:
        with self._room:
            self._used -= 1
            self._room.notify()

    def _run(self, slot: Slot, work: Work) -> None:
        """Run one job's work; nothing it raises may kill the thread."""
        try:
            work()
        except BaseException:
            logger.exception("slowjobs: job work raised past its runner")
        finally:
            self.jobs_done += 1
            slot.release()

    def start(
        self,
        slot: Slot,
        work: Work,
        *,
        priority: int = 0,
        lane: str = "",
        limit: Limit | None = None,
    ) -> None:
        """Run ``work`` on ``slot``; the slot is released when it ends.

        ``lane`` names the submitter, whose jobs take turns with others';
        ``limit`` is (key, n): at most n jobs with that key run at once.
        """
        self._start(slot, work, priority, lane, limit)

    @abstractmethod
    def _start(
        self,
        slot: Slot,
        work: Work,
        priority: int,
        lane: str,
        limit: Limit | None,
    ) -> None: ...

    def refuse_new(self) -> None:
        """From now on ``reserve`` raises ExecutorShutDown (503)."""
        with self._room:
            self._shutdown = True

    def take_pending(self) -> list[Work]:
        """Remove and return the work that has not started (none by default)."""
        return []

    def shutdown(self, wait: bool = True, *, timeout: float | None = None) -> bool:
        """Refuse new jobs; with ``wait``, wait for started ones up to ``timeout``.

        Returns whether every started job ended in time.
        """
        with self._room:
            self._shutdown = True
        self._stop_threads()
        if not wait:
            return self._used == 0
        return self._join(timeout)

    @abstractmethod
    def _stop_threads(self) -> None: ...

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the threads of a shut-down executor to end (each closes
        its database connections on the way out)."""
        return self._join(timeout)

    def _join(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        # Never this thread itself (a job that shuts the process down).
        threads = [
            t for t in self._threads_to_join() if t is not threading.current_thread()
        ]
        for thread in threads:
            remaining = (
                None if deadline is None else max(0, deadline - time.monotonic())
            )
            thread.join(remaining)
        return not any(thread.is_alive() for thread in threads)

    @abstractmethod
    def _threads_to_join(self) -> list[threading.Thread]: ...

    def stats(self) -> dict[str, int | str | None]:
        return {
            "mode": self.mode,
            "capacity": self.capacity,
            "busy": self._used,
            "jobs_done": self.jobs_done,
        }


def full_message(capacity: int, retry_after: int) -> str:
    places = ngettext(
        "The server's only job place is taken",
        "All %(capacity)d job places of the server are taken",
        capacity,
    ) % {"capacity": capacity}
    wait = ngettext(
        "try again in %(seconds)d second.",
        "try again in %(seconds)d seconds.",
        retry_after,
    ) % {"seconds": retry_after}
    return f"{places}; {wait}"
