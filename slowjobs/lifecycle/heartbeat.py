"""A process's heartbeat: its WorkerProcess row and its jobs' heartbeat_at.

Beats every ``SLOWJOBS_HEARTBEAT_INTERVAL`` from a thread of its own, started
with the process's first request or job (never at import, never before a
fork).  Each beat:

1. keeps this process's advisory lock (PostgreSQL), taking it again if its
   connection broke;
2. makes sure this process still owns the jobs it runs: one that another
   process took (this one was stopped or cut off past its lease) is told to
   stop and publishes nothing more;
3. re-publishes the live record of every running job, so a job that
   reports nothing for a while still shows as running (the records expire
   soon after a process dies, so a dead one's jobs never look alive);
4. records the process (with what proves it alive: its machine, pid and
   pid start time, whether it holds its lock) and its jobs' heartbeat.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta

from django.db import DatabaseError
from django.utils import timezone

from slowjobs import conf
from slowjobs.engine.executor.registry import current_executor
from slowjobs.engine.running import RunningJob, running_jobs
from slowjobs.jobs import dbhygiene, transitions
from slowjobs.lifecycle import processlock
from slowjobs.lifecycle.identity import host_name, machine, process_id, start_ticks
from slowjobs.models import Job, WorkerProcess

logger = logging.getLogger("slowjobs.heartbeat")


class Heartbeat:
    def __init__(self, using: str = "default") -> None:
        self.using = using
        self.started_at = timezone.now()
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start beating, on a thread and connection of the heartbeat's own.

        It returns at once: the caller may hold a transaction (SQLite's write
        lock) that the first beat has to wait for.
        """
        self._thread = threading.Thread(
            target=self._loop, name="slowjobs-heartbeat", daemon=True
        )
        self._thread.start()

    def wait_first_beat(self, timeout: float = 10) -> bool:
        """Before claiming jobs: this process's row must say it is alive."""
        return self._first.wait(timeout)

    def _loop(self) -> None:
        try:
            while True:
                try:
                    self.beat()
                except DatabaseError:
                    logger.exception("slowjobs: heartbeat failed; trying again")
                self._first.set()
                if self._stop.wait(conf.get().heartbeat_interval):
                    return
        finally:
            dbhygiene.at_thread_exit()

    def beat(self, *, stopping: bool = False) -> None:
        me = process_id()
        locked = processlock.hold_for(me, self.using)
        jobs = running_jobs()
        try:
            _stop_lost(jobs, me, self.using)
        finally:
            # Even with the database away: the live records must not lapse.
            for job in jobs:
                job.publish()
        now = timezone.now()
        executor = current_executor()
        stats = executor.stats() if executor is not None else {}
        WorkerProcess.objects.using(self.using).update_or_create(
            id=me,
            defaults={
                "host": host_name(),
                "pid": os.getpid(),
                "machine": machine(),
                "pid_start": start_ticks(os.getpid()),
                "locked": locked,
                "started_at": self.started_at,
                "last_seen": now,
                "mode": stats.get("mode") or conf.get().executor,
                "capacity": stats.get("capacity"),
                "busy": stats.get("busy") or 0,
                "queued": stats.get("queued") or 0,
                "jobs_done": stats.get("jobs_done") or 0,
                "stopping": stopping,
            },
        )
        # Only rows whose heartbeat is half a lease old: a short job is
        # never touched, and a backlog is not rewritten at every beat
        # (which would also contend with the state writer for the rows).
        half_lease = timedelta(seconds=conf.get().lease / 2)
        transitions.renew_leases(
            Job.objects.using(self.using), me, now, now - half_lease
        )

    def stop(self, *, forget: bool = True) -> None:
        """Stop beating; with ``forget``, remove this process's row."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if forget:
            WorkerProcess.objects.using(self.using).filter(id=process_id()).delete()
        processlock.release()


def _stop_lost(jobs: list[RunningJob], me: str, using: str) -> None:
    """Stop the running jobs whose rows another process owns now."""
    if not jobs:
        return
    mine = set(
        Job.objects.using(using)
        .filter(pk__in=[job.ticket for job in jobs], owner=me)
        .values_list("pk", flat=True)
    )
    for job in jobs:
        if job.ticket not in mine:
            job.lose()
