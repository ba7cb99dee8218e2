"""Work that comes from the database: due deferred jobs, retries and orphans.

Every process that runs jobs has one scheduler thread.  With
``SLOWJOBS_ADOPT`` (the default) it also adopts, at once when the process
starts and then every ``SLOWJOBS_ADOPT_INTERVAL`` for as long as it lives,
the jobs of processes that died and those handed back by stopping ones
(``slowjobs.lifecycle.adoption``), so that they finish with nobody's help.

Deferred jobs and retries: each runs when its time comes, in any process.

A deferred job (enqueued with ``run_after``, or a failed attempt waiting for
its retry) is a queued row with ``run_after`` set and no owner.  Every
process that runs jobs has a scheduler thread that claims the due ones, up
to its free room, and starts them: at the times it knows of (the jobs it
deferred itself) and, every ``SLOWJOBS_SCHEDULER_INTERVAL``, for the rest
(jobs deferred by another process, or by one that has stopped since).  The
row is the truth, so a restart loses nothing: whichever process runs jobs
next (a server, or ``resume_jobs``) takes them when they are due.

Periodic jobs: in a process that looks after jobs (one that adopts, and
``run_jobs``), the same thread keeps the clock of ``SLOWJOBS_PERIODIC``
(``slowjobs.periodic.clock``), waking at each slot.
"""

from __future__ import annotations

import heapq
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime

from django.db import DatabaseError
from django.utils import timezone

from slowjobs import conf
from slowjobs.engine.executor.registry import get_executor
from slowjobs.exceptions import ExecutorShutDown
from slowjobs.jobs import dbhygiene
from slowjobs.lifecycle.adoption import adopt
from slowjobs.lifecycle.identity import process_id
from slowjobs.lifecycle.orphans import claim, deferred_due
from slowjobs.models import Job
from slowjobs.periodic.clock import Clock

logger = logging.getLogger("slowjobs.scheduler")

StartClaimed = Callable[[list[Job]], None]

# A due job that found no room is looked for again this soon (seconds).
FULL_RETRY = 0.5


class Scheduler:
    def __init__(
        self,
        using: str = "default",
        *,
        adopting: bool = False,
        periodic: bool | None = None,
        ready: Callable[[], bool] = lambda: True,
        start_claimed: StartClaimed,
    ) -> None:
        self.using = using
        self.adopting = adopting
        # The periodic clock: in the processes that look after jobs.
        self.clock = (
            Clock(using) if (adopting if periodic is None else periodic) else None
        )
        # How claimed jobs get onto the executor (the engine's runner): given,
        # not imported, so that the runner may wake the scheduler.
        self._start_claimed = start_claimed
        # Adoption waits for this (the process's first heartbeat): a claimer
        # must be known alive before rows name it.
        self._ready = ready
        self._next_due_look = 0.0
        self._adopt_failing = False
        self._wakeups: list[float] = []  # POSIX times, a heap
        self._changed = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name="slowjobs-scheduler", daemon=True
        )
        self._thread.start()

    def wake_at(self, when: datetime) -> None:
        with self._changed:
            heapq.heappush(self._wakeups, when.timestamp())
            self._changed.notify()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join(10)

    def _next_wait(self) -> float:
        settings = conf.get()
        interval = (
            min(settings.adopt_interval, settings.scheduler_interval)
            if self.adopting
            else settings.scheduler_interval
        )
        if self.clock is not None:
            due = self.clock.due_in()
            if due is not None:
                interval = min(interval, due)
        if not self._wakeups:
            return interval
        return max(0.0, min(interval, self._wakeups[0] - timezone.now().timestamp()))

    def _loop(self) -> None:
        try:
            ready = self._ready() if (self.adopting or self.clock) else True
            if self.adopting and ready:
                self._adopt()
            self._keep_time()
            while True:
                with self._changed:
                    if self._stopped:
                        return
                    self._changed.wait(self._next_wait())
                    if self._stopped:
                        return
                    now = timezone.now().timestamp()
                    woken = bool(self._wakeups and self._wakeups[0] <= now)
                    while self._wakeups and self._wakeups[0] <= now:
                        heapq.heappop(self._wakeups)
                if self.adopting:
                    self._adopt()
                self._keep_time()
                if not woken and time.monotonic() < self._next_due_look:
                    continue
                self._next_due_look = time.monotonic() + conf.get().scheduler_interval
                try:
                    left = self.run_due()
                except ExecutorShutDown:
                    return  # the process is stopping: it takes nothing more
                except DatabaseError:
                    logger.exception("slowjobs: could not claim due jobs; trying again")
                    left = True
                if left:
                    with self._changed:
                        heapq.heappush(
                            self._wakeups, timezone.now().timestamp() + FULL_RETRY
                        )
        finally:
            dbhygiene.at_thread_exit()

    def _keep_time(self) -> None:
        """Enqueue the periodic slots that are due (none between slots)."""
        clock = self.clock
        due = clock.due_in() if clock is not None else None
        if clock is None or due is None or due > 0:
            return
        try:
            clock.look()
        except Exception:
            # A bug must not end the thread: deferred jobs depend on it too.
            logger.exception("slowjobs: enqueueing periodic jobs failed")

    def _adopt(self) -> int:
        """Claim orphaned and handed-back jobs for the idle job threads."""
        try:
            jobs = adopt(idle_room(), using=self.using)
            self._start_claimed(jobs.runnable)
        except DatabaseError as exc:
            # Said once per outage, not at every look.
            if not self._adopt_failing:
                logger.warning(
                    "slowjobs: could not look for orphaned jobs (%s); "
                    "looking again every %g s",
                    exc,
                    conf.get().adopt_interval,
                )
            self._adopt_failing = True
            return 0
        except ExecutorShutDown:
            return 0  # the process is stopping: it takes nothing more
        except Exception:
            # A bug must not end the thread: deferred jobs depend on it too.
            logger.exception("slowjobs: adopting orphaned jobs failed")
            return 0
        if self._adopt_failing:
            logger.info("slowjobs: looking for orphaned jobs again")
            self._adopt_failing = False
        if len(jobs):
            logger.info(
                "slowjobs: adopted %d orphaned or handed-back jobs (%d ended)",
                len(jobs),
                len(jobs.ended),
            )
        return len(jobs)

    def run_due(self) -> bool:
        """Claim and start due jobs; return whether some were left for lack of room."""
        # A read first: a claim takes the write lock (SQLite) or locks rows,
        # and most looks find nothing due.
        if not deferred_due(self.using).exists():
            return False
        room = free_room()
        if room == 0:
            return True
        jobs = claim(
            process_id(), limit=room, using=self.using, candidates=deferred_due
        )
        self._start_claimed(jobs.runnable)
        if jobs.runnable:
            logger.debug("slowjobs: started %d due jobs", len(jobs.runnable))
        return len(jobs) == room and deferred_due(self.using).exists()


def free_room() -> int:
    """How many more jobs this process's executor takes without waiting."""
    executor = get_executor()
    if executor.capacity is None:
        return conf.get().workers
    return max(executor.capacity - executor.used, 0)


def idle_room() -> int:
    """How many more jobs this process can start now (idle job threads)."""
    executor = get_executor()
    workers = getattr(executor, "workers", None)
    if workers is None:
        workers = executor.capacity or conf.get().workers
    return max(workers - executor.used, 0)


_lock = threading.Lock()
_scheduler: Scheduler | None = None


def start(
    *,
    start_claimed: StartClaimed,
    adopting: bool = False,
    periodic: bool | None = None,
    ready: Callable[[], bool] = lambda: True,
) -> None:
    global _scheduler
    with _lock:
        if _scheduler is None:
            _scheduler = Scheduler(
                adopting=adopting,
                periodic=periodic,
                ready=ready,
                start_claimed=start_claimed,
            )
            _scheduler.start()


def stop() -> None:
    global _scheduler
    with _lock:
        scheduler, _scheduler = _scheduler, None
    if scheduler is not None:
        scheduler.stop()


def adopt_from_now() -> None:
    """This process serves requests now: take orphaned jobs from here on."""
    scheduler = _scheduler
    if scheduler is not None and not scheduler.adopting:
        scheduler.adopting = True
        if scheduler.clock is None:
            scheduler.clock = Clock(scheduler.using)
        with scheduler._changed:
            scheduler._changed.notify()


def wake_at(when: datetime) -> None:
    """Have this process look for due jobs at ``when`` (if it runs jobs)."""
    scheduler = _scheduler
    if scheduler is not None:
        scheduler.wake_at(when)


def _forget_after_fork() -> None:
    global _scheduler, _lock
    _scheduler = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
