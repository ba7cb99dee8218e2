"""Running one job in a job process, from the job thread that owns it.

The job thread stays the job's owner: it writes the start and the outcome,
publishes progress, saves checkpoints and looks for cancels, exactly as for
a job it runs itself.  It only waits on the socket (the interpreter lock is
free meanwhile), so the CPU the task burns is the job process's, at its
lower priority.

Stopping: a cancel, a timeout or a shutdown's interrupt is passed on to the
process, whose task sees it at its next ``progress()`` or check, as in a
thread.  A task that does not look is stopped for real: after
``SLOWJOBS_PROCESS_STOP_GRACE`` seconds its process is killed and replaced.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from django.utils.translation import gettext

from slowjobs import conf
from slowjobs.engine import running
from slowjobs.engine.calling import Outcome, error_fields, stopped
from slowjobs.engine.processes.pool import JobProcess, ProcessPool, get_pool
from slowjobs.engine.processes.wire import ChannelBroken, ChannelClosed, Message
from slowjobs.engine.spec import JobSpec, run_message
from slowjobs.exceptions import (
    JobCancelled,
    JobInterrupted,
    JobProcessFailed,
    JobTimedOut,
)
from slowjobs.jobs import files as jobfiles
from slowjobs.models import JobStatus

logger = logging.getLogger("slowjobs.processes")

# How long the job thread waits on the socket before it looks for a cancel.
TICK = 0.05
STOP_MESSAGES = {
    JobCancelled: "cancel",
    JobInterrupted: "interrupt",
    JobTimedOut: "timeout",
}

Stop = JobCancelled | JobInterrupted | JobTimedOut


def call_in_process(spec: JobSpec, job: running.RunningJob) -> Outcome:
    pool = get_pool()
    waiting = False

    def look() -> None:
        """Called while every process is busy: say so, and heed a cancel."""
        nonlocal waiting
        if not waiting and not job.message:
            waiting = True
            job.message = gettext("Waiting for a free job process")
            job.publish()
        job.check_cancelled()

    try:
        process = pool.acquire(look)
    except (JobCancelled, JobInterrupted, JobTimedOut) as exc:
        return stopped(exc)
    except JobProcessFailed as exc:
        return Outcome(JobStatus.FAILED, error_fields(exc))
    if waiting:
        job.message = ""
    try:
        process.channel.send(run_message(spec, job))
    except ChannelClosed:
        pool.replace(process)
        return Outcome(JobStatus.FAILED, error_fields(_died(process)))
    try:
        return _follow(pool, process, job)
    except Exception as exc:
        # The job thread must end the job whatever broke (a checkpoint that
        # could not be written, say): the process is ended with it.
        logger.exception("Job %s: relaying its process failed", job.ticket)
        pool.replace(process)
        return Outcome(JobStatus.FAILED, error_fields(exc))


def _follow(pool: ProcessPool, process: JobProcess, job: running.RunningJob) -> Outcome:
    """Relay the process's messages until its job ends, or stop it."""
    grace = conf.get().process_stop_grace
    stop: Stop | None = None
    kill_at = 0.0
    told_stopping = False
    ticket = str(job.ticket)
    while True:
        try:
            message = process.channel.receive(timeout=TICK)
        except ChannelClosed as exc:
            pool.replace(process)
            if stop is not None:
                return stopped(stop)
            if isinstance(exc, ChannelBroken):
                failure = JobProcessFailed(
                    f"The job's process sent {exc}; it was ended and replaced."
                )
            else:
                failure = _died(process)
            return Outcome(JobStatus.FAILED, error_fields(failure))
        try:
            if message is not None:
                if message.get("op") == "done":
                    outcome = _done(job, message)
                    pool.release(process)
                    return outcome
                _relay(process, job, message)
            if not told_stopping and running.stopping.is_set():
                told_stopping = True
                process.channel.send({"op": "stopping"})
            if stop is None:
                job.check_cancelled()
        except (JobCancelled, JobInterrupted, JobTimedOut) as exc:
            if stop is None:
                stop, kill_at = exc, time.monotonic() + grace
                _tell(process, ticket, STOP_MESSAGES[type(exc)])
        except ChannelClosed:
            continue  # the next receive sees the end
        if stop is not None and time.monotonic() >= kill_at:
            logger.info(
                "Job %s did not stop within %g s (%s): its process %d is killed",
                ticket,
                grace,
                type(stop).__name__,
                process.pid,
            )
            pool.replace(process)
            return stopped(stop)


def _relay(process: JobProcess, job: running.RunningJob, message: Message) -> None:
    op = message.get("op")
    if op == "progress":
        job.merge_log(message.get("log", []), message.get("log_dropped", 0))
        job.report(message.get("current"), message.get("total"), message.get("message"))
    elif op == "checkpoint":
        job.current = message.get("current", job.current)
        job.total = message.get("total", job.total)
        job.message = message.get("message", job.message) or ""
        saved = job.save_checkpoint(message.get("value"))
        process.channel.send(
            {"op": "checkpoint_saved", "ticket": str(job.ticket), "saved": saved}
        )


def _done(job: running.RunningJob, message: Message) -> Outcome:
    job.merge_log(message.get("log", []), message.get("log_dropped", 0))
    progress = message.get("progress")
    if isinstance(progress, dict):
        job.current = progress.get("current")
        job.total = progress.get("total")
        job.message = progress.get("message") or ""
    name = message.get("result_file")
    if isinstance(name, str) and name and jobfiles.resolve(name) is not None:
        job.result_file = name
    fields: dict[str, Any] = message.get("fields") or {}
    return Outcome(
        str(message.get("status", JobStatus.FAILED)),
        fields,
        bool(message.get("retryable")),
    )


def _tell(process: JobProcess, ticket: str, op: str) -> None:
    # A process that is gone already: the next receive says so.
    with contextlib.suppress(ChannelClosed):
        process.channel.send({"op": op, "ticket": ticket})


def _died(process: JobProcess) -> JobProcessFailed:
    code = process.popen.poll()
    how = "was killed" if code is not None and code < 0 else f"exit code {code}"
    return JobProcessFailed(
        f"The job's process ended while running it ({how}); "
        "its error output is in the server's log."
    )
