"""Log lines that say which job they are about.

Every line slowjobs logs about a job passes its ticket as ``extra={"ticket":
...}`` (and names it in the message).  ``JobTicketFilter`` gives every other
record a ``ticket`` attribute too: the job running on the logging thread (a
task's own ``logger.info(...)``), or ``"-"``.  Attach it to a handler and
put ``%(ticket)s`` in its format::

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

# Set while slowjobs sends a job's signals (Django's own task log lines).
_ticket: ContextVar[str | None] = ContextVar("slowjobs_log_ticket", default=None)


@contextmanager
def about_job(ticket: object) -> Iterator[None]:
    """Lines logged inside are about this job (signal receivers, say)."""
    token = _ticket.set(str(ticket))
    try:
        yield
    finally:
        _ticket.reset(token)


class JobTicketFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "ticket"):
            # Imported here: logging is configured before the apps are loaded.
            from slowjobs.engine.context import current_job

            job = current_job()
            if job is not None:
                record.ticket = str(job.ticket)
            else:
                record.ticket = _ticket.get() or NO_TICKET
        return True


def about(ticket: object) -> dict[str, str]:
    """The ``extra`` of a log call about one job."""
    return {"ticket": str(ticket)}
