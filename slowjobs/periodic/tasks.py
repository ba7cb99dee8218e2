"""The tasks slowjobs schedules itself."""

from __future__ import annotations

from slowjobs.jobs.purge import purge
from slowjobs.tasksapi import task


@task
def purge_jobs() -> dict[str, int]:
    """``manage.py purge_jobs``, daily by default (``SLOWJOBS_PURGE_SCHEDULE``)."""
    purged = purge()
    return {"deleted": purged.jobs, "files": purged.files}
