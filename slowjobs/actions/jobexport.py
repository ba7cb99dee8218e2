"""The job admin's "Export selected jobs as CSV", run as a job.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula, and a job's arguments, messages and errors are anyone's text: such
cells are written with a leading apostrophe, which spreadsheets show as
text (the OWASP advice for CSV injection).
"""

from __future__ import annotations

import csv
from typing import Any

from django.db.models import QuerySet

from slowjobs.engine.context import JobContext
from slowjobs.jobs import files as jobfiles
from slowjobs.models import Job

COLUMNS = [
    "ticket", "task", "title", "status", "submitted_by", "enqueued_at",
    "started_at", "finished_at", "attempts", "percent", "message",
    "error_class", "error_message",
]  # fmt: skip
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Rows between progress reports (each one also looks for a cancel).
REPORT_EVERY = 100


def export_jobs(context: JobContext, queryset: QuerySet[Job]) -> dict[str, Any]:
    total = queryset.count()
    path = jobfiles.result_path(context.ticket, ".csv")
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        jobs = queryset.select_related("submitted_by").order_by("enqueued_at", "pk")
        for rows, job in enumerate(jobs.iterator(chunk_size=500), 1):
            writer.writerow([_cell(value) for value in _values(job)])
            if rows % REPORT_EVERY == 0:
                context.progress(rows, total, f"{rows} of {total} jobs")
    context.progress(rows, total, f"{rows} of {total} jobs")
    jobfiles.attach_result_file(context.ticket, path)
    return {"jobs": rows, "file": path.name}


def _values(job: Job) -> list[Any]:
    return [
        job.pk,
        job.task_path,
        job.title,
        job.status,
        job.submitted_by.get_username() if job.submitted_by else "",
        job.enqueued_at.isoformat() if job.enqueued_at else "",
        job.started_at.isoformat() if job.started_at else "",
        job.finished_at.isoformat() if job.finished_at else "",
        job.attempts,
        "" if job.percent is None else job.percent,
        job.progress_message,
        job.error_class,
        job.error_message,
    ]


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
