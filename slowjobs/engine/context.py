"""What a running task sees of its job.

Tasks declared ``@task(takes_context=True)`` receive a ``JobContext`` as
their first argument; other tasks (and code they call) reach the same
through the module-level functions here, which do nothing outside a job, so
task functions still run when called directly.

    @task(takes_context=True)
    def build(context, rows):
        start = (context.checkpoint or {}).get("done", 0)
        for row in range(start, rows):
            ...
            context.progress(row + 1, rows, "building")   # may raise JobCancelled
            if row % 100 == 0:
                context.save_checkpoint({"done": row + 1})
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from slowjobs.engine import running
from slowjobs.engine.running import RunningJob
from slowjobs.exceptions import JobCancelled
from slowjobs.tasksapi import TaskContext

_current: ContextVar[RunningJob | None] = ContextVar("slowjobs_job", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobContext(TaskContext):  # type: ignore[type-arg, misc]
    job: RunningJob
    # progress(current, total=None, message=None): report progress; raises
    # JobCancelled once a cancel is seen.  The job's own method, bound here
    # so that a task reporting on every row pays for one call, not two.
    progress: Callable[..., None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "progress", self.job.progress)

    @property
    def ticket(self) -> str:
        return str(self.job.ticket)

    def check_cancelled(self) -> None:
        """Raise JobCancelled if someone asked to cancel this job."""
        self.job.check_cancelled()

    @property
    def cancel_requested(self) -> bool:
        try:
            self.job.check_cancelled()
        except JobCancelled:
            return True
        return False

    @property
    def shutting_down(self) -> bool:
        """The server is stopping: save a checkpoint and return soon."""
        return running.stopping.is_set()

    @property
    def deadline_passed(self) -> bool:
        return self.job.deadline_passed

    @property
    def checkpoint(self) -> Any:
        """The checkpoint this attempt resumed from (None on a first run)."""
        return self.job.checkpoint

    def save_checkpoint(self, value: Any) -> bool:
        """Store ``value`` (JSON) durably; a resumed attempt starts from it.

        Returns False if this attempt no longer owns the job (it was handed
        to another process), in which case the task should stop.
        """
        return self.job.save_checkpoint(value)


@contextmanager
def running_as(job: RunningJob) -> Iterator[None]:
    token = _current.set(job)
    try:
        yield
    finally:
        _current.reset(token)


def current_job() -> RunningJob | None:
    return _current.get()


# -- the module-level API, for tasks without takes_context ------------------


def progress(
    current: int, total: int | None = None, message: str | None = None
) -> None:
    job = _current.get()
    if job is not None:
        job.progress(current, total, message)


def check_cancelled() -> None:
    job = _current.get()
    if job is not None:
        job.check_cancelled()


def shutting_down() -> bool:
    return running.stopping.is_set()


def checkpoint() -> Any:
    job = _current.get()
    return None if job is None else job.checkpoint


def save_checkpoint(value: Any) -> bool:
    job = _current.get()
    if job is None:
        return False
    return job.save_checkpoint(value)
