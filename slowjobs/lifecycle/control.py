"""A process's life with jobs: start (heartbeat, adoption) and graceful stop.

``start()`` runs once per process, with its first request or its first job
(or from a server hook, see ``slowjobs.gunicorn``), so any server recovers
jobs: gunicorn with or without the hooks, runserver, uvicorn, daphne.  It
takes the process's advisory lock (PostgreSQL), starts its heartbeat and
its scheduler which, with ``SLOWJOBS_ADOPT`` (on by default), adopts the
jobs of dead processes and handed-back ones, at once and for as long as the
process lives (a process started by a job enqueued outside a request, a
command or a script, adopts nothing until it serves one).  Nothing here
runs at import, before a fork, or in commands that do not run jobs.

``shutdown()`` is the talk's wait group with a deadline:

1. refuse new jobs (``503`` from then on) and tell running ones
   (``context.shutting_down``);
2. hand back the jobs still waiting in the queue (owner cleared: any process
   may take them at once);
3. wait up to the drain timeout for the running jobs;
4. interrupt the ones still running (their next ``progress()`` raises) and
   hand them back, queued again, with the attempt recorded as interrupted
   (or failed, or restarted, as their task's ``on_interrupt`` says);
5. commit every state the jobs left to write, and remove the process's row.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from dataclasses import dataclass, field

from django.utils import timezone

from slowjobs import conf
from slowjobs.backend.task import on_interrupt
from slowjobs.engine import running
from slowjobs.engine.executor.registry import current_executor, shutdown_executor
from slowjobs.engine.processes.pool import close_pool
from slowjobs.engine.runner import JobWork, start_claimed
from slowjobs.engine.spec import JobSpec
from slowjobs.jobs import transitions
from slowjobs.jobs.statewriter import stop_writers
from slowjobs.lifecycle import processlock, scheduler
from slowjobs.lifecycle.heartbeat import Heartbeat
from slowjobs.lifecycle.identity import process_id
from slowjobs.lifecycle.orphans import forget_live_records
from slowjobs.monitoring import joblog

logger = logging.getLogger("slowjobs.lifecycle")

# How long interrupted tasks get to notice before their rows are handed back.
INTERRUPT_GRACE = 1.0
# Seconds a drained executor's threads get to end, once their jobs have.
THREAD_EXIT_GRACE = 2.0

# Guards _heartbeat: the first job of two request threads may start together.
_lock = threading.Lock()
_heartbeat: Heartbeat | None = None
_exit_hook_registered = False
# Once shut down, a process stays down (a late request must not restart it).
_closed = False
# Whether this process has served a request (see start_with_requests).
_serving = False
# The settings problem last logged, so that each is said once.
_said: str | None = None


def start(*, adopt: bool | None = None, periodic: bool | None = None) -> None:
    """Make this process a known, beating job runner (once per process).

    ``periodic``: whether it keeps the periodic clock (default: as it adopts).
    """
    global _heartbeat, _exit_hook_registered
    with _lock:
        if _heartbeat is not None or _closed:
            return
        # Before any row names this process as its owner: a free lock must
        # mean a dead process, never one that has not taken it yet.
        processlock.hold_for(process_id())
        joblog.install()
        _heartbeat = Heartbeat()
        _heartbeat.start()
        scheduler.start(
            start_claimed=start_claimed,
            adopting=conf.get().adopt if adopt is None else adopt,
            periodic=periodic,
            ready=wait_until_known,
        )
        if not _exit_hook_registered:
            atexit.register(_at_exit)
            _exit_hook_registered = True


def start_with_requests(sender: object, **kwargs: object) -> None:
    """``request_started``: a serving process recovers jobs from its first
    request on, whatever server runs it (connected in ``AppConfig.ready``).

    One started by a job enqueued outside a request (a command, a script)
    adopts nothing until it serves one: a short-lived command must not
    claim other processes' jobs only to hand them back as it exits.
    """
    global _serving
    if _serving or _closed:
        return
    _serving = True
    if misconfigured():
        return
    if not conf.get().adopt:
        return
    if _heartbeat is None:
        start()
    else:
        scheduler.adopt_from_now()


def misconfigured() -> bool:
    """Whether the settings are wrong, said once in the log: the process
    serves its other pages, and ``submit()`` says why it takes no job."""
    global _said
    wrong = conf.problem()
    if wrong is not None and wrong != _said:
        _said = wrong
        logger.error(
            "slowjobs.E001: %s Jobs are refused until it is fixed "
            "(manage.py check says the same).",
            wrong,
        )
    return wrong is not None


def is_started() -> bool:
    return _heartbeat is not None or _closed


def reopen() -> None:
    """Allow a new start after a shutdown (tests; a process that goes on)."""
    global _closed
    with _lock:
        _closed = False
    running.stopping.clear()
    running.hurry.clear()


def wait_until_known(timeout: float = 10) -> bool:
    """Wait for this process's first heartbeat (needed before claiming)."""
    heartbeat = _heartbeat
    return heartbeat is not None and heartbeat.wait_first_beat(timeout)


@dataclass
class ShutdownReport:
    drained: bool = True
    handed_back: list[str] = field(default_factory=list)
    waited: float = 0.0


def shutdown(*, timeout: float | None = None) -> ShutdownReport:
    """Stop this process's job machinery gracefully (see the module notes)."""
    global _heartbeat, _closed
    drain = conf.get().drain_timeout if timeout is None else timeout
    began = time.monotonic()
    report = ShutdownReport()
    with _lock:
        _closed = True
    running.stopping.set()
    scheduler.stop()  # claims nothing more; what it claimed is handed back
    executor = current_executor()
    if executor is not None:
        executor.refuse_new()
        pending = [w.spec for w in executor.take_pending() if isinstance(w, JobWork)]
        _hand_back_queued(pending, report)
        report.drained = _drain(began + drain)
        if report.drained:
            # Told to stop by the drain: their last act is closing their
            # connections, which must be done when shutdown returns.
            executor.join(THREAD_EXIT_GRACE)
        else:
            still = running.running_jobs()
            for job in still:
                job.interrupted = True
            deadline = time.monotonic() + INTERRUPT_GRACE
            while running.running_jobs() and time.monotonic() < deadline:
                time.sleep(0.01)
            _hand_back_running(still, report)
    close_pool()
    stop_writers(timeout=30)
    with _lock:
        heartbeat, _heartbeat = _heartbeat, None
    if heartbeat is not None:
        heartbeat.stop(forget=True)
    report.waited = time.monotonic() - began
    if report.handed_back:
        count = len(report.handed_back)
        logger.warning(
            "slowjobs: stopped after %.1f s; handed back %d unfinished %s for "
            "the next process to run",
            report.waited,
            count,
            "job" if count == 1 else "jobs",
        )
    return report


def _drain(deadline: float) -> bool:
    """Wait for started jobs until the deadline (or a hurry request)."""
    executor = current_executor()
    shutdown_executor(wait=False)
    while executor is not None and executor.used:
        if time.monotonic() >= deadline or running.hurry.is_set():
            return False
        time.sleep(0.02)
    return True


def _hand_back_queued(specs: list[JobSpec], report: ShutdownReport) -> None:
    now = timezone.now()
    for spec in specs:
        transitions.write(
            spec.using,
            spec.ticket,
            transitions.hand_back_queued(spec.owner, spec.attempts, now),
        )
        report.handed_back.append(str(spec.ticket))


def _hand_back_running(jobs: list[running.RunningJob], report: ShutdownReport) -> None:
    now = timezone.now()
    for job in jobs:
        job.end()  # a task that did not stop must not publish again
        entry = transitions.history_entry(job.attempt, job.owner, "interrupted", now)
        transitions.write(
            job.using,
            job.ticket,
            transitions.interrupt(
                job.owner,
                job.attempt,
                now,
                [*job.history, entry],
                job.progress_fields(),
                on_interrupt(job.task),
            ),
        )
        report.handed_back.append(str(job.ticket))
    forget_live_records([job.ticket for job in jobs])


def _at_exit() -> None:
    """Interpreter exit without an explicit shutdown (any server, a script)."""
    if _heartbeat is not None:
        shutdown()


def _forget_after_fork() -> None:
    global _heartbeat, _lock, _closed, _serving
    # The parent's heartbeat thread did not come along.
    _heartbeat, _closed, _serving = None, False, False
    _lock = threading.Lock()
    running.stopping.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
