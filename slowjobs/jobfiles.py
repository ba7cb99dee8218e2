"""Where jobs keep their files: under one folder, named by ticket.

Files are stored relative to ``SLOWJOBS_FILES_DIR`` (default:
``MEDIA_ROOT/slowjobs``) so rows stay valid when the folder moves, and a
stored name can never point outside it.

The file names reach the row through the state writer, like every job
state, so a database that is away for a moment delays them instead of
failing the job; a result file named by the running job itself is written
with its outcome, in the same UPDATE.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.db import connection

from .context import current_job
from .models import Job
from .statewriter import get_writer


def root() -> Path:
    configured = getattr(settings, "SLOWJOBS_FILES_DIR", None)
    base = Path(configured) if configured else Path(settings.MEDIA_ROOT) / "slowjobs"
    return base.resolve()


def result_path(ticket: uuid.UUID | str, suffix: str) -> Path:
    """A fresh path for a job's result file; its folder exists."""
    folder = root() / "results"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{ticket}{suffix}"


def resolve(name: str) -> Path | None:
    """The absolute path of a stored name, or None if it leaves the folder."""
    base = root()
    path = (base / name).resolve()
    return path if path.is_relative_to(base) else None


def stored_name(path: Path) -> str:
    """How a row names ``path`` (inside the files folder): relative to it."""
    return str(Path(path).resolve().relative_to(root()))


def attach_result_file(ticket: uuid.UUID | str, path: Path) -> None:
    """Record ``path`` (inside the files folder) as the job's result file."""
    name = stored_name(path)
    job = current_job()
    if job is not None and str(job.ticket) == str(ticket):
        job.result_file = name  # written with the outcome
        return
    get_writer().update_and_wait(
        uuid.UUID(str(ticket)), expect={}, changes={"result_file": name}
    )


def attach_input_file(ticket: uuid.UUID | str, name: str) -> None:
    """Record a stored upload as the job's input (kept while the job is)."""
    if connection.in_atomic_block:
        # The row may not be committed yet: only this transaction sees it.
        Job.objects.filter(pk=ticket).update(input_file=name)
    else:
        get_writer().update(
            uuid.UUID(str(ticket)), expect={}, changes={"input_file": name}
        )
