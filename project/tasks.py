"""The demo site's tasks."""

from __future__ import annotations

import csv
import time
from typing import Any

from django.tasks import TaskContext, task

from slowjobs import jobfiles


@task
def noop() -> None:
    """Does nothing: what benchmarks and smoke tests enqueue."""


@task(takes_context=True)
def generate_report(
    context: TaskContext[..., Any], rows: int, row_ms: int
) -> dict[str, object]:
    """A CSV of ``rows`` numbered rows, spending ``row_ms`` on each."""
    ticket = context.task_result.id
    path = jobfiles.result_path(ticket, ".csv")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "square"])
        for row in range(1, rows + 1):
            if row_ms:
                time.sleep(row_ms / 1000)
            writer.writerow([row, row * row])
    jobfiles.attach_result_file(ticket, path)
    return {"rows": rows, "file": path.name}
