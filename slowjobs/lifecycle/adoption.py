"""Taking over the jobs nobody runs: orphans of dead processes, handed-back jobs.

Every process that runs jobs (servers and ``run_jobs``) looks every
``SLOWJOBS_ADOPT_INTERVAL`` for as long as it lives, and claims what it
can start at once: as many jobs as it has idle job threads, so that the
processes that are up share the work instead of one queueing all of it.
A look that finds nothing costs one read of the unfinished jobs' owners
(an index of unfinished jobs); a claim happens only when there is work.
"""

from __future__ import annotations

from functools import partial

from slowjobs.lifecycle.identity import process_id
from slowjobs.lifecycle.liveness import gone_owners
from slowjobs.lifecycle.orphans import Claim, claim, orphaned
from slowjobs.models import Job


def other_owners(using: str = "default") -> set[str]:
    """The owners of unfinished jobs besides this process ("" for none)."""
    return set(
        Job.objects.using(using)
        .unfinished()
        .exclude(owner=process_id())
        .order_by()
        .values_list("owner", flat=True)
        .distinct()
    )


def adopt(room: int, *, using: str = "default", task_path: str | None = None) -> Claim:
    """Claim up to ``room`` orphaned or handed-back jobs for this process."""
    if room <= 0:
        return Claim()
    owners = other_owners(using)
    if not owners:
        return Claim()
    gone = gone_owners(owners, using)
    candidates = partial(orphaned, gone=gone)
    found = candidates(using)
    if task_path:
        found = found.filter(task_path=task_path)
    # A read first: a claim takes the write lock (SQLite) or locks rows.
    if not found.exists():
        return Claim()
    return claim(
        process_id(),
        limit=room,
        task_path=task_path,
        using=using,
        candidates=candidates,
    )
