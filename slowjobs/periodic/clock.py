"""Each process's clock: at every slot, enqueue it, unless another did.

The scheduler thread of every process that looks after jobs (a server
with ``SLOWJOBS_ADOPT``, a ``run_jobs`` worker) owns one ``Clock``.  It
sleeps until the next slot of any schedule (no query in between), then
reads the schedules' rows and, for each enabled one, INSERTs a job per due
slot with ``ON CONFLICT DO NOTHING`` on the unique (schedule, slot) key: the
first process there enqueues it, every other one's attempt is a no-op.
There is no leader to elect and no lock to lose, and a process that dies
takes nothing with it: the others are at the next slot as before.

A slot up to ``grace`` seconds late still runs (a process that was busy or
restarting).  Older ones were missed (every process was down): the
schedule's ``missed`` policy runs the newest of them once (``"latest"``, the
default) or none (``"skip"``); ``slots_missed`` is sent either way.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from slowjobs.exceptions import EnqueueRefused
from slowjobs.jobs.jsonargs import check_arguments
from slowjobs.models import Schedule
from slowjobs.periodic import declared
from slowjobs.periodic.declared import BadSchedule, Declared
from slowjobs.signals import slots_missed
from slowjobs.tasksapi import Task, task_backends

logger = logging.getLogger("slowjobs.periodic")

# Slots one look enqueues for a schedule at most (a short interval with a
# long grace); the rest are the next look's, at once.
MOST_PER_LOOK = 100
# Missed slots counted for the log and the signal at most.
MOST_COUNTED = 1000
# Seconds before a look that failed (database away) is tried again.
RETRY = 1.0


@dataclass
class Look:
    """What one look did: for the log, the tests and the benchmarks."""

    enqueued: list[tuple[str, datetime | None]] = field(default_factory=list)
    missed: dict[str, int] = field(default_factory=dict)


def task_for(schedule: Declared) -> Task[..., Any]:
    """The schedule's task, on a slowjobs backend, checked with its
    arguments; ``BadSchedule`` says why it cannot run."""
    task = _find_task(schedule)
    try:
        check_arguments(schedule.args, schedule.kwargs)
        task.get_backend().validate_task(task)
    except Exception as exc:  # the task's own validation, or not JSON
        raise BadSchedule(f"Schedule {schedule.name!r}: {exc}") from exc
    return task


def _find_task(schedule: Declared) -> Task[..., Any]:
    from slowjobs.backend.backend import SlowJobsBackend

    try:
        found = import_string(schedule.task_path)
    except ImportError as exc:
        raise BadSchedule(
            f"Schedule {schedule.name!r}: cannot import task "
            f"{schedule.task_path!r} ({exc})."
        ) from exc
    if not isinstance(found, Task):
        raise BadSchedule(
            f"Schedule {schedule.name!r}: {schedule.task_path!r} is not a task "
            "(decorate the function with @task)."
        )
    if isinstance(found.get_backend(), SlowJobsBackend):
        return found
    for alias in task_backends:
        if isinstance(task_backends[alias], SlowJobsBackend):
            return found.using(backend=alias)
    raise BadSchedule(f"Schedule {schedule.name!r}: no TASKS backend is slowjobs.")


def run_now(schedule: Declared) -> Any:
    """Enqueue the schedule's job at once, outside its slots (the admin)."""
    task = task_for(schedule)
    return task.get_backend().enqueue_for_schedule(  # type: ignore[attr-defined]
        task, schedule.args, schedule.kwargs, schedule=schedule.name, slot=None
    )


class Clock:
    def __init__(self, using: str = "default") -> None:
        self.using = using
        # POSIX time of the next look; 0: at once (slots missed while no
        # process was up are found by the first look).
        self._next_look: float | None = 0.0
        self._said: set[str] = set()
        self._failing = False

    def due_in(self) -> float | None:
        """Seconds until the next look; None: there are no schedules."""
        if self._next_look is None:
            return None
        return max(0.0, self._next_look - time.time())

    def look(self, now: datetime | None = None) -> Look:
        """Enqueue every due slot; sleep until the next one."""
        now = now or timezone.now()
        look = Look()
        schedules = self._runnable()
        if not schedules:
            self._next_look = None
            return look
        try:
            rows = self._rows(schedules, now)
            behind = False
            for schedule in schedules:
                row = rows.get(schedule.name)
                if row is not None and row.enabled:
                    behind |= self._run_due(schedule, row, now, look)
        except (DatabaseError, EnqueueRefused) as exc:
            if not self._failing:
                logger.warning(
                    "slowjobs: could not enqueue periodic jobs (%s); trying "
                    "again every %g s",
                    exc,
                    RETRY,
                )
            self._failing = True
            self._next_look = time.time() + RETRY
            return look
        if self._failing:
            logger.info("slowjobs: enqueueing periodic jobs again")
            self._failing = False
        upcoming = min(schedule.next_after(now) for schedule in schedules)
        self._next_look = 0.0 if behind else upcoming.timestamp()
        return look

    def _runnable(self) -> list[Declared]:
        """The declared schedules whose task resolves (the others said once)."""
        good, bad = declared.load()
        runnable = []
        for schedule in good:
            try:
                task_for(schedule)
            except BadSchedule as exc:
                bad.append(exc)
                continue
            runnable.append(schedule)
        for problem in bad:
            if str(problem) not in self._said:
                self._said.add(str(problem))
                logger.error("slowjobs.E004: %s It does not run.", problem)
        return runnable

    def _rows(self, schedules: list[Declared], now: datetime) -> dict[str, Schedule]:
        """Each schedule's row; a new one starts at its newest slot (no backlog)."""
        names = [schedule.name for schedule in schedules]
        table = Schedule.objects.using(self.using)
        rows = {row.name: row for row in table.filter(name__in=names)}
        new = [s for s in schedules if s.name not in rows]
        if new:
            table.bulk_create(
                [
                    Schedule(name=s.name, last_slot=s.at_or_before(now), created_at=now)
                    for s in new
                ],
                ignore_conflicts=True,
            )
            rows.update(
                (row.name, row) for row in table.filter(name__in=[s.name for s in new])
            )
        return rows

    def _run_due(
        self, schedule: Declared, row: Schedule, now: datetime, look: Look
    ) -> bool:
        """Enqueue the schedule's due slots; whether some are left for the
        next look (more than ``MOST_PER_LOOK``)."""
        since = row.last_slot or row.created_at
        newest = schedule.at_or_before(now)
        if newest <= since:
            return False
        late = now - timedelta(seconds=schedule.grace)
        on_time = list(islice(schedule.slots(max(since, late), now), MOST_PER_LOOK))
        to_run = on_time
        newest_missed = schedule.at_or_before(late)
        if newest_missed > since:
            count = sum(1 for _ in islice(schedule.slots(since, late), MOST_COUNTED))
            if schedule.missed == "latest" and not on_time:
                to_run = [newest_missed]
            self._say_missed(
                schedule, count, newest_missed, ran=to_run == [newest_missed]
            )
            look.missed[schedule.name] = count
            slots_missed.send(
                schedule.name, slots=count, newest=newest_missed, policy=schedule.missed
            )
        task = task_for(schedule)
        backend = task.get_backend()
        for slot in to_run:
            result = backend.enqueue_for_schedule(  # type: ignore[attr-defined]
                task, schedule.args, schedule.kwargs, schedule=schedule.name, slot=slot
            )
            if result is not None:
                look.enqueued.append((schedule.name, slot))
        reached = to_run[-1] if len(on_time) == MOST_PER_LOOK else newest
        # Slots before it are done with, by this process or another.
        Schedule.objects.using(self.using).filter(
            Q(last_slot__isnull=True) | Q(last_slot__lt=reached), name=schedule.name
        ).update(last_slot=reached)
        return reached != newest

    @staticmethod
    def _say_missed(
        schedule: Declared, count: int, newest: datetime, *, ran: bool
    ) -> None:
        shown = f"{count}+" if count == MOST_COUNTED else str(count)
        logger.warning(
            "slowjobs: schedule %r missed %s slot(s) while no process ran it "
            "(newest %s); %s",
            schedule.name,
            shown,
            newest.isoformat(),
            "running the newest once" if ran else "skipping them",
        )
