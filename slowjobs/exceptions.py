"""Exceptions that callers of slowjobs are expected to catch."""

from __future__ import annotations

from slowjobs.tasksapi import TaskException


class EnqueueRefused(TaskException):
    """The job was not taken, for now; nothing was written.

    The caller may retry later.  Views answer ``503`` with ``Retry-After``
    (``retry_after`` seconds).
    """

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ExecutorFull(EnqueueRefused):
    """No room for another job in this process within the submit timeout."""


class DatabaseUnavailable(EnqueueRefused):
    """The database did not answer, so the job could not be recorded."""


class ExecutorShutDown(ExecutorFull):
    """This process is shutting down and takes no new jobs."""


class OverLimit(EnqueueRefused):
    """The submitter has as many unfinished jobs as one may; views answer 429.

    ``limit`` names the cap: ``"user"``, ``"session"``, ``"address"`` (or,
    for uploads, ``"upload_quota"``).
    """

    def __init__(self, message: str, *, retry_after: int, limit: str) -> None:
        super().__init__(message, retry_after=retry_after)
        self.limit = limit


class InvalidTaskArguments(TypeError):
    """A task's arguments cannot be stored as JSON.

    A ``TypeError`` like the one Django's own backends raise, but naming the
    argument, so the mistake is found at ``enqueue`` rather than in a worker.
    """


class InvalidTaskResult(TypeError):
    """A task returned a value that cannot be stored as JSON; its job fails.

    ``bytes`` are decoded as UTF-8 first, as Django's own backends do.
    """


class JobCancelled(Exception):
    """Raised inside a task to stop it; the job is recorded as cancelled."""


class JobInterrupted(Exception):
    """Raised inside a task whose process handed it back while stopping."""


class JobTimedOut(Exception):
    """Raised inside a task that ran past its timeout; the job fails.

    Cooperative like cancellation: raised by the task's next ``progress()``
    or ``check_cancelled()`` after the deadline.  Never retried.
    """


class JobProcessFailed(Exception):
    """A job process could not be started, or died while running a job.

    A job's recorded error class; it lives here, with the others a caller
    may see, so that its path stays put.
    """
