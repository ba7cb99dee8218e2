"""Where jobs keep their files: under one folder, named by ticket.

Files are stored relative to ``SLOWJOBS_FILES_DIR`` (default:
``MEDIA_ROOT/slowjobs``) so rows stay valid when the folder moves, and a
stored name can never point outside it.

The file names reach the row through the state writer, like every job
state, so a database that is away for a moment delays them instead of
failing the job; a result file named by the running job itself is written
with its outcome, in the same UPDATE.

Files live as long as they are of use: a job's input is removed when the
job ends (unless its task says ``keep_input=True``), and the result files
of a job that failed or was cancelled (``results/<ticket>*``: what it had
written so far) go with its end; ``purge_jobs`` removes the rest with their
rows.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from django.conf import settings

from slowjobs.engine.context import current_job
from slowjobs.jobs import transitions

logger = logging.getLogger("slowjobs.files")

# The stored upload that the job being enqueued takes as its input.
_pending_input: ContextVar[str] = ContextVar("slowjobs_input", default="")


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
    transitions.write_and_wait(
        "default", uuid.UUID(str(ticket)), transitions.attach_result(name)
    )


@contextmanager
def job_input(name: str) -> Iterator[None]:
    """Jobs enqueued inside take the stored upload ``name`` as their input.

    The name (and size) is written in the job's own INSERT, so the job
    knows its input from its first moment, and removes it when it ends.
    """
    token = _pending_input.set(name)
    try:
        yield
    finally:
        _pending_input.reset(token)


def pending_input() -> str:
    return _pending_input.get()


def size_of(name: str) -> int:
    path = resolve(name) if name else None
    try:
        return path.stat().st_size if path is not None else 0
    except OSError:
        return 0


def remove_stored(name: str) -> None:
    """Delete a stored file, and its per-upload folder once empty."""
    path = resolve(name) if name else None
    if path is None or path == root():
        return
    try:
        path.unlink(missing_ok=True)
    except OSError:
        logger.warning("slowjobs: could not remove %s", path, exc_info=True)
        return
    if path.parent.parent == root() / "inputs":
        shutil.rmtree(path.parent, ignore_errors=True)


def remove_results(ticket: uuid.UUID | str) -> None:
    """Delete what a failed or cancelled job wrote: ``results/<ticket>*``."""
    folder = root() / "results"
    for path in folder.glob(f"{uuid.UUID(str(ticket))}*"):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            logger.warning("slowjobs: could not remove %s", path, exc_info=True)
