"""Removing finished jobs, and their files, once they are past retention.

Shared by ``manage.py purge_jobs`` and the ``slowjobs.purge_jobs`` schedule
(``SLOWJOBS_PURGE_SCHEDULE``), which runs it daily with nobody's help.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from slowjobs import conf
from slowjobs.models import Job, JobQuerySet
from slowjobs.web.uploads import remove_stored

# Jobs deleted per statement: a short lock each, whatever the backlog.
BATCH = 500


@dataclass(frozen=True)
class Purged:
    jobs: int
    files: int


def old_jobs(days: int | None = None) -> JobQuerySet:
    """Finished jobs that ended more than ``days`` (default: the setting) ago."""
    keep = conf.get().retention_days if days is None else days
    cutoff = timezone.now() - timedelta(days=keep)
    return Job.objects.finished().filter(finished_at__lt=cutoff)


def purge(days: int | None = None) -> Purged:
    old = old_jobs(days)
    deleted = files = 0
    while True:
        batch = list(old.values_list("pk", "input_file", "result_file")[:BATCH])
        if not batch:
            break
        for _, *names in batch:
            for name in filter(None, names):
                remove_stored(name)
                files += 1
        deleted += Job.objects.filter(pk__in=[pk for pk, *_ in batch]).delete()[0]
    return Purged(jobs=deleted, files=files)
