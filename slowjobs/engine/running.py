"""This process's running jobs: live progress, cancel requests, the deadline.

A task reports progress as often as it likes: each call only updates memory,
and the live store (every ``progress_interval``) and the Job row (every
``progress_db_interval``) are written when their time has come.  A cancel
request is looked for at most every ``cancel_check_interval``: in the live
store when it is shared and up, in the database otherwise (and there too,
less often, in case memcached lost the flag).
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.db import DatabaseError, connections

from slowjobs import conf
from slowjobs.exceptions import JobCancelled, JobInterrupted, JobTimedOut
from slowjobs.jobs import transitions
from slowjobs.jobs.jsonargs import storable_bigint, storable_text, to_json_value
from slowjobs.models import Job, JobStatus
from slowjobs.monitoring.joblog import JobLog
from slowjobs.progress import get_store
from slowjobs.progress.base import cancel_flagged, cancel_key, live_key, log_key
from slowjobs.progress.records import opened, sealed, session_digest

MESSAGE_LIMIT = 200
# With a shared store the database is still asked, this many times less often.
DB_CANCEL_CHECK_FACTOR = 4
# How often, in seconds, progress() reads the clock at most.
LOOK_SECONDS = 0.01
MAX_STRIDE = 1 << 16

# Set when this process starts shutting down; jobs can see it.
stopping = threading.Event()
# Set to cut the drain short (a second Ctrl+C): hand running jobs back now.
hurry = threading.Event()


@dataclass(eq=False, slots=True)
class RunningJob:
    ticket: uuid.UUID
    task_path: str
    owner: str
    attempt: int
    enqueued_at: datetime
    started_at: datetime
    using: str = "default"
    submitter_user: Any = None
    submitter_session: str = ""
    checkpoint: Any = None
    history: list[dict[str, Any]] = field(default_factory=list)
    task: Any = None
    current: int | None = None
    total: int | None = None
    message: str = ""
    cancel_requested: bool = False
    # Set when this process hands the job back: the task must stop.
    interrupted: bool = False
    # Set when another process took the job over (this one was silent past
    # its lease): the task must stop, and nothing of it may be written.
    lost: bool = False
    deadline: float | None = None
    timeout: float | None = None
    # Named by the task (jobfiles.attach_result_file): written with the outcome.
    result_file: str = ""
    _next_publish: float = 0.0
    _last_publish: float | None = None
    _next_mirror: float = 0.0
    _next_cancel_check: float = 0.0
    _cancel_checks: int = 0
    _last_look: float = 0.0
    _stride: int = 1
    _calls_left: int = 0
    _settings: conf.SlowjobsSettings = field(default_factory=conf.get)
    _publish_lock: threading.Lock = field(default_factory=threading.Lock)
    _ended: bool = False
    # Whether a live record was ever written (a job that ends before its
    # first report never touches the live store).
    _published: bool = False
    # Computed once (a keyed hash): records never hold the session's key.
    _session_digest: str = ""
    # What its code logged (slowjobs.monitoring.joblog), made on the first
    # line; the versions last written to the row and to the live store.
    log: JobLog | None = None
    _log_written: int = 0
    _log_published: int = 0

    def __post_init__(self) -> None:
        self._session_digest = session_digest(self.submitter_session)

    # -- progress -------------------------------------------------------

    def progress(
        self, current: int, total: int | None = None, message: str | None = None
    ) -> None:
        """Note the progress; now and then publish it and look for a cancel.

        The hot path is three assignments and a countdown: the clock is read
        only every ``_stride`` calls, a stride that adapts so that it is read
        about every ``LOOK_SECONDS``, however often the task reports.
        """
        self.current = current
        if total is not None:
            self.total = total
        if message is not None:
            self.message = message
        self._calls_left -= 1
        if self._calls_left <= 0:
            self._look()

    def report(
        self, current: int | None, total: int | None, message: str | None
    ) -> None:
        """Progress that a job process sent (a few times a second): look now."""
        self.current = current
        if total is not None:
            self.total = total
        if message is not None:
            self.message = message
        self._look()

    def _look(self) -> None:
        now = time.monotonic()
        elapsed = now - self._last_look
        if elapsed < LOOK_SECONDS / 2:
            self._stride = min(self._stride * 2, MAX_STRIDE)
        elif elapsed > LOOK_SECONDS * 2:
            self._stride = max(self._stride // 2, 1)
        self._last_look = now
        self._calls_left = self._stride
        if now >= self._next_publish:
            self.publish(now)
        if now >= self._next_cancel_check or (
            self.deadline is not None and now >= self.deadline
        ):
            self.check_cancelled(now)

    def live_record(self) -> dict[str, Any]:
        return {
            "ticket": str(self.ticket),
            "task": self.task_path,
            "status": JobStatus.RUNNING,
            "cancel_requested": self.cancel_requested,
            **self._progress_values(),
            "attempts": self.attempt,
            "enqueued_at": self.enqueued_at.isoformat(),
            "started_at": self.started_at.isoformat(),
            "user": self.submitter_user,
            "session": self._session_digest,
            # Who writes it, and when: a reader that finds it old asks
            # whether the writer still lives (slowjobs.status).
            "owner": self.owner,
            "seen": time.time(),
        }

    def publish(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._next_publish = now + self._settings.progress_interval
        if self._ended:
            return
        silent = self._last_publish is not None and (
            now - self._last_publish > self._settings.lease / 2
        )
        if silent and not self.still_owned():
            # Stopped or starved past the lease: another process may run
            # the job now, and its record must not be written over.
            self.lose()
            return
        self._last_publish = now
        # The heartbeat publishes too: never after the record was dropped.
        with self._publish_lock:
            if self._ended:
                return
            key = live_key(str(self.ticket))
            # Checked and written in one step: this thread may have slept
            # since the ownership check above (a stopped process), and a
            # newer attempt's record must never be written over.
            stored = get_store().set_unless(
                key,
                sealed(key, self.live_record()),
                ttl=live_ttl(),
                unless=partial(self._written_by_a_newer_attempt, key),
            )
            self._published = True
            if stored:
                self._publish_log()
        if stored is False:
            self.lose()
            return
        if now >= self._next_mirror and self.current is not None:
            self._next_mirror = now + self._settings.progress_db_interval
            transitions.write(
                self.using,
                self.ticket,
                transitions.report(self.owner, self.attempt, self.progress_fields()),
            )

    def _written_by_a_newer_attempt(self, key: str, stored: dict[str, Any]) -> bool:
        record = opened(key, stored)
        if record is None:
            return False  # not slowjobs' own: nothing to keep
        attempt = record.get("attempts")
        return isinstance(attempt, int) and (
            attempt > self.attempt
            or (attempt == self.attempt and record.get("owner") != self.owner)
        )

    def _progress_values(self) -> dict[str, Any]:
        """What the task reported, checked and bounded (off the hot path)."""
        return {
            "current": None if self.current is None else storable_bigint(self.current),
            "total": None if self.total is None else storable_bigint(self.total),
            "message": storable_text(str(self.message)[:MESSAGE_LIMIT]),
        }

    @property
    def reported(self) -> bool:
        """Whether the task reported any progress; if not, the row keeps its own."""
        return self.current is not None or self.total is not None or bool(self.message)

    def progress_fields(self) -> dict[str, Any]:
        values = self._progress_values()
        return {
            "progress_current": values["current"],
            "progress_total": values["total"],
            "progress_message": values["message"],
            **self.log_fields(),
        }

    # -- its log ----------------------------------------------------------

    def capture_log(self, level: str, logger: str, message: str, at: float) -> None:
        """A line its code logged (the job log handler, in the job's thread)."""
        if self.log is None:
            self.log = JobLog.from_settings()
        self.log.add(level, logger, message, at)
        self._log_added()

    def merge_log(self, lines: object, dropped: object) -> None:
        """Lines its job process captured and sent."""
        if not isinstance(lines, list) or not isinstance(dropped, int):
            return
        if not lines and not dropped:
            return
        if self.log is None:
            self.log = JobLog.from_settings()
        self.log.extend([line for line in lines if isinstance(line, dict)], dropped)

    def _log_added(self) -> None:
        now = time.monotonic()
        if now >= self._next_publish:
            self.publish(now)

    def log_fields(self, *, always: bool = False) -> dict[str, Any]:
        """The log's columns, when it changed since they were last written."""
        log = self.log
        if log is None or (not always and log.version == self._log_written):
            return {}
        self._log_written = log.version
        snapshot = log.snapshot()
        return {"log": snapshot["lines"], "log_dropped": snapshot["dropped"]}

    def _publish_log(self) -> None:
        log = self.log
        if log is None or log.version == self._log_published:
            return
        self._log_published = log.version
        key = log_key(str(self.ticket))
        record = {"attempts": self.attempt, "owner": self.owner, **log.snapshot()}
        get_store().set_unless(
            key,
            sealed(key, record),
            ttl=live_ttl(),
            unless=partial(self._written_by_a_newer_attempt, key),
        )

    def still_owned(self) -> bool:
        """Whether the row still names this process (True if it cannot tell)."""
        try:
            return (
                Job.objects.using(self.using)
                .filter(pk=self.ticket, owner=self.owner)
                .exists()
            )
        except DatabaseError:
            connection = connections[self.using]
            if not connection.in_atomic_block:
                connection.close()
            return True

    @property
    def task_title(self) -> str:
        """What people call the job: its task's title, else its path."""
        return getattr(self.task, "title", "") or self.task_path

    def lose(self) -> None:
        """Another process owns the job now: stop the task, write nothing more."""
        self.lost = True
        self.interrupted = True
        self.end()

    # -- cancellation and deadlines ---------------------------------------

    def check_cancelled(self, now: float | None = None) -> None:
        """Raise JobCancelled if a cancel was requested (looked up when due)."""
        now = time.monotonic() if now is None else now
        if self.lost:
            raise JobInterrupted("Another process took the job over; stopping.")
        if self.interrupted:
            raise JobInterrupted("The server stopped; the job was handed back.")
        if self.deadline is not None and now >= self.deadline:
            raise JobTimedOut(
                f"Timed out: still running {self.timeout:g} s after it started."
            )
        if not self.cancel_requested and now >= self._next_cancel_check:
            self._next_cancel_check = now + self._settings.cancel_check_interval
            self._cancel_checks += 1
            self.cancel_requested = self._look_for_cancel()
        if self.cancel_requested:
            raise JobCancelled("Cancelled while running.")

    def _look_for_cancel(self) -> bool:
        store = get_store()
        if cancel_flagged(store, str(self.ticket)):
            return True
        # The database is the truth. Ask it when the store cannot speak for
        # other processes (embedded, or memcached down) and, in case
        # memcached lost the flag (restart, flush), every fourth look anyway.
        if (
            not store.shared
            or not store.available
            or self._cancel_checks % DB_CANCEL_CHECK_FACTOR == 0
        ):
            return cancel_requested_in_database(self.ticket, self.using)
        return False

    def save_checkpoint(self, value: Any) -> bool:
        """Store ``value`` (JSON) durably; False if this attempt lost the job."""
        value = to_json_value(value, "the checkpoint")
        written = transitions.write_and_wait(
            self.using,
            self.ticket,
            transitions.save_checkpoint(
                self.owner, self.attempt, value, self.progress_fields()
            ),
        )
        if written:
            self.checkpoint = value
        return bool(written)

    @property
    def deadline_passed(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def end(self) -> None:
        """The task has returned: publish no more."""
        with self._publish_lock:
            self._ended = True

    def finished(self) -> None:
        """Drop the live record once the outcome is in the database."""
        key = str(self.ticket)
        with self._publish_lock:
            self._ended = True
            if self._published or self.cancel_requested:
                get_store().delete_many([live_key(key), cancel_key(key), log_key(key)])


def cancel_requested_in_database(ticket: uuid.UUID, using: str = "default") -> bool:
    """Whether the row asks for a cancel; False while the database is away
    (the job goes on, and looks again at its next check)."""
    try:
        return (
            Job.objects.using(using).filter(pk=ticket, cancel_requested=True).exists()
        )
    except DatabaseError:
        connection = connections[using]
        if not connection.in_atomic_block:
            connection.close()
        return False


def live_ttl() -> int:
    """Seconds a live record outlasts its last write: a heartbeat and a
    margin.  Every beat writes it again, so only a dead process's records
    lapse (and one that lapses for a slow beat only sends readers to the
    row, which is right too)."""
    return math.ceil(conf.get().heartbeat_interval) + 2


def timeout_for(task: Any) -> float | None:
    """The task's own timeout, else ``SLOWJOBS_JOB_TIMEOUT``."""
    timeout = getattr(task, "timeout", None)
    return conf.get().job_timeout if timeout is None else float(timeout)


# This process's running jobs by ticket, for cancel requests served here.
_lock = threading.Lock()
_running: dict[uuid.UUID, RunningJob] = {}


def register(job: RunningJob) -> None:
    with _lock:
        _running[job.ticket] = job


def unregister(job: RunningJob) -> None:
    with _lock:
        if _running.get(job.ticket) is job:
            del _running[job.ticket]


def get_running(ticket: uuid.UUID) -> RunningJob | None:
    with _lock:
        return _running.get(ticket)


def running_jobs() -> list[RunningJob]:
    with _lock:
        return list(_running.values())
