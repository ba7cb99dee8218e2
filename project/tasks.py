"""The demo site's tasks."""

from __future__ import annotations

import os
import time
from typing import Any

from django.tasks import task

from slowjobs import jobfiles
from slowjobs.context import JobContext

# A resumed report loses at most this much work.
CHECKPOINT_SECONDS = 1.0


@task
def noop() -> None:
    """Does nothing: what benchmarks and smoke tests enqueue."""


# django-stubs types the context as TaskContext; slowjobs passes its subclass.
@task(takes_context=True)  # type: ignore[arg-type]
def generate_report(context: JobContext, rows: int, row_ms: int) -> dict[str, Any]:
    """A CSV of ``rows`` numbered rows, spending ``row_ms`` on each.

    Every second it makes the rows written so far durable and records how
    far it got; a resumed attempt cuts the file back to that point and goes
    on, so every row appears exactly once whatever happened in between.
    """
    path = jobfiles.result_path(context.ticket, ".csv")
    saved = context.checkpoint or {}
    done, size = int(saved.get("rows", 0)), int(saved.get("bytes", 0))
    with path.open("a+b") as handle:
        handle.truncate(size)
        handle.seek(size)
        if size == 0:
            handle.write(b"row,square\n")
        next_checkpoint = time.monotonic() + CHECKPOINT_SECONDS
        for row in range(done + 1, rows + 1):
            if row_ms:
                time.sleep(row_ms / 1000)
            handle.write(f"{row},{row * row}\n".encode())
            context.progress(row, rows, f"row {row} of {rows}")
            if time.monotonic() >= next_checkpoint or context.shutting_down:
                handle.flush()
                os.fsync(handle.fileno())
                context.save_checkpoint({"rows": row, "bytes": handle.tell()})
                next_checkpoint = time.monotonic() + CHECKPOINT_SECONDS
        handle.flush()
        os.fsync(handle.fileno())
    jobfiles.attach_result_file(context.ticket, path)
    return {"rows": rows, "file": path.name}
