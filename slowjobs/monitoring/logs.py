"""Log lines that say which job they are about.

Every line slowjobs logs about a job passes its ticket as ``extra={"ticket":
...}`` (and names it in the message).  ``JobTicketFilter`` gives every other
record a ``ticket`` attribute too: the job running on the logging thread (a
task's own ``logger.info(...)``), or ``"-"``; and ``job_title``, the job's
``@task(title=...)`` (else its task's path, or ``"-"``).  Attach it to a
handler and put ``%(ticket)s`` (or ``%(job_title)s``) in its format::

    LOGGING = {
        "version": 1,
        "filters": {"ticket": {"()": "slowjobs.logs.JobTicketFilter"}},
        "formatters": {
            "jobs": {"format": "%(asctime)s %(levelname)s [%(ticket)s] %(message)s"}
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "filters": ["ticket"],
                "formatter": "jobs",
            }
        },
        "root": {"handlers": ["console"], "level": "INFO"},
    }
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

NO_TICKET = "-"

# Set while slowjobs sends a job's signals (Django's own task log lines):
# the job's ticket and title.
_about: ContextVar[tuple[str, str] | None] = ContextVar(
    "slowjobs_log_job", default=None
)


def title_of(task: object) -> str:
    """What people call a task's jobs: its title, else its dotted path."""
    return getattr(task, "title", "") or getattr(task, "module_path", "") or NO_TICKET


@contextmanager
def about_job(ticket: object, task: object = None) -> Iterator[None]:
    """Lines logged inside are about this job (signal receivers, say)."""
    token = _about.set((str(ticket), title_of(task)))
    try:
        yield
    finally:
        _about.reset(token)


class JobTicketFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "ticket"):
            # Imported here: logging is configured before the apps are loaded.
            from slowjobs.engine.context import current_job

            job = current_job()
            if job is not None:
                record.ticket = str(job.ticket)
                record.job_title = job.task_title
            else:
                ticket, title = _about.get() or (NO_TICKET, NO_TICKET)
                record.ticket, record.job_title = ticket, title
        elif not hasattr(record, "job_title"):
            record.job_title = NO_TICKET
        return True


def about(ticket: object, task: object = None) -> dict[str, str]:
    """The ``extra`` of a log call about one job."""
    return {"ticket": str(ticket), "job_title": title_of(task)}
