"""Fair share at the door: how many unfinished jobs one submitter may have.

A cap counts the submitter's queued and running jobs in the database, so it
holds across every process and server.  Two submissions racing past the
count may both get in: a cap can be passed by as many jobs as one submitter
sends at the very same moment, never more.  Signed-in users count by user;
anonymous visitors by session and, since a client that drops its cookie
has a new session with every request, also by client address.

A job counts for its task's declared ``cost`` (``@task(cost=3)``), so a
cap can weigh an hour-long export against a quick preview.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext

from . import conf
from .exceptions import OverLimit
from .models import Job
from .submitter import Submitter


def check_room(submitter: Submitter, cost: int, using: str) -> None:
    """Raise ``OverLimit`` when this job would take its submitter over a cap."""
    settings = conf.get()
    if submitter.user_id is not None:
        _check(
            Q(submitted_by_id=submitter.user_id),
            settings.max_jobs_per_user,
            cost,
            using,
            "user",
            gettext("You have %(count)d unfinished jobs, the most one user may have."),
        )
        return
    if submitter.session_key:
        _check(
            Q(submitter_session=submitter.session_key),
            settings.max_jobs_per_session,
            cost,
            using,
            "session",
            gettext(
                "You have %(count)d unfinished jobs, the most one visitor may have."
            ),
        )
    if submitter.address:
        _check(
            Q(submitter_address=submitter.address, submitted_by__isnull=True),
            settings.max_jobs_per_address,
            cost,
            using,
            "address",
            gettext(
                "Visitors from your address have %(count)d unfinished jobs, "
                "the most one address may have."
            ),
        )


def _check(whose: Q, cap: int, cost: int, using: str, limit: str, message: str) -> None:
    if not cap:
        return
    # At most cap rows: each counts at least 1, so cap rows are over it.
    costs = list(
        Job.objects.using(using)
        .filter(whose, finished_at__isnull=True)
        .values_list("cost", flat=True)[:cap]
    )
    if sum(costs) + cost <= cap:
        return
    retry_after = conf.get().retry_after
    raise OverLimit(
        (message % {"count": len(costs)})
        + " "
        + gettext("Wait for one to finish, or cancel one, and try again."),
        retry_after=retry_after,
        limit=limit,
    )
