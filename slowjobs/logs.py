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

from .context import current_job

NO_TICKET = "-"


class JobTicketFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "ticket"):
            job = current_job()
            record.ticket = NO_TICKET if job is None else str(job.ticket)
        return True


def about(ticket: object) -> dict[str, str]:
    """The ``extra`` of a log call about one job."""
    return {"ticket": str(ticket)}
