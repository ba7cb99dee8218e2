"""Fair share at the door: how many unfinished jobs one submitter may have.

A cap counts the submitter's queued and running jobs in the database, so it
holds across every process and server.  Two submissions racing past the
count may both get in: a cap can be passed by as many jobs as one submitter
sends at the very same moment, never more.  Signed-in users count by user;
anonymous visitors by session and, since a client that drops its cookie
has a new session with every request, also by client address.  One query
counts both (the partial indexes of unfinished jobs by session and by
address find the rows; caps keep them few).

A job counts for its task's declared ``cost`` (``@task(cost=3)``), so a
cap can weigh an hour-long export against a quick preview.
"""

from __future__ import annotations

from django.db.models import Count, Q, Sum
from django.utils.translation import gettext

from slowjobs import conf
from slowjobs.exceptions import OverLimit
from slowjobs.models import Job
from slowjobs.web.submitter import Submitter


def check_room(submitter: Submitter, cost: int, using: str) -> None:
    """Raise ``OverLimit`` when this job would take its submitter over a cap."""
    settings = conf.get()
    caps: dict[str, tuple[Q, int]] = {}
    if submitter.user_id is not None:
        if settings.max_jobs_per_user:
            caps["user"] = (
                Q(submitted_by_id=submitter.user_id),
                settings.max_jobs_per_user,
            )
    else:
        if submitter.session_key and settings.max_jobs_per_session:
            caps["session"] = (
                Q(submitter_session=submitter.session_key),
                settings.max_jobs_per_session,
            )
        if submitter.address and settings.max_jobs_per_address:
            caps["address"] = (
                Q(submitter_address=submitter.address, submitted_by__isnull=True),
                settings.max_jobs_per_address,
            )
    if not caps:
        return
    whose = Q()
    for condition, _ in caps.values():
        whose |= condition
    totals = (
        Job.objects.using(using)
        .filter(whose, finished_at__isnull=True)
        .aggregate(
            **{f"{name}_cost": Sum("cost", filter=c) for name, (c, _) in caps.items()},
            **{f"{name}_jobs": Count("pk", filter=c) for name, (c, _) in caps.items()},
        )
    )
    for name, (_, cap) in caps.items():
        if (totals[f"{name}_cost"] or 0) + cost > cap:
            raise OverLimit(
                _message(name, totals[f"{name}_jobs"]),
                retry_after=settings.retry_after,
                limit=name,
            )


def _message(limit: str, count: int) -> str:
    whose = {
        "user": gettext(
            "You have %(count)d unfinished jobs, the most one user may have."
        ),
        "session": gettext(
            "You have %(count)d unfinished jobs, the most one visitor may have."
        ),
        "address": gettext(
            "Visitors from your address have %(count)d unfinished jobs, "
            "the most one address may have."
        ),
    }[limit]
    return (
        (whose % {"count": count})
        + " "
        + gettext("Wait for one to finish, or cancel one, and try again.")
    )
