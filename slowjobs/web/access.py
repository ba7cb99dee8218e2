"""Who may see a job: its submitter (user, or session), whoever holds the
job's key (``slowjobs.web.jobkeys``), and users with the
permission for what they ask: ``slowjobs.view_job`` to read any job (its
status, page, result and traceback), ``slowjobs.cancel_job`` to cancel it.
A staff flag alone grants nothing.

Anything else, including a malformed ticket, is "not found", so a ticket's
existence is never revealed to someone who may not act on it.
"""

from __future__ import annotations

import hmac
import uuid
from typing import Any

from django.http import Http404, HttpRequest

from slowjobs.models import Job
from slowjobs.progress.records import session_digest
from slowjobs.web.jobkeys import holds_key

VIEW_ANY = "slowjobs.view_job"
CANCEL_ANY = "slowjobs.cancel_job"


def may_view_any(request: HttpRequest) -> bool:
    """Whether this visitor may read every job (and see tracebacks)."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.has_perm(VIEW_ANY))


def is_the_session(request: HttpRequest, session: str) -> bool:
    """Whether the visitor's session is the one of this digest (no query)."""
    request_session = getattr(request, "session", None)
    digest = session_digest(
        request_session.session_key if request_session is not None else None
    )
    return bool(digest) and hmac.compare_digest(session, digest)


def may_see(
    request: HttpRequest, ticket: uuid.UUID, *, user_id: Any, session: str
) -> bool:
    """The rule, for a job known by its submitter's user id and session
    digest (a live record): no query, the same answer as ``get_visible_job``."""
    if holds_key(request, ticket) or is_the_session(request, session):
        return True
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if user_id is not None and user_id == user.pk:
        return True
    return bool(user.has_perm(VIEW_ANY))


def get_visible_job(
    request: HttpRequest, ticket: str, *, permission: str = VIEW_ANY
) -> Job:
    """The job, if it is the visitor's own or they hold ``permission``."""
    try:
        pk = uuid.UUID(ticket)
    except ValueError:
        raise Http404("No such job.") from None
    if holds_key(request, pk):
        job = Job.objects.filter(pk=pk).first()
        if job is None:
            raise Http404("No such job.")
        return job
    session = getattr(request, "session", None)
    jobs = Job.objects.visible_to(
        user=getattr(request, "user", None),
        session_key=session.session_key if session is not None else None,
        permission=permission,
    )
    job = jobs.filter(pk=pk).first()
    if job is None:
        raise Http404("No such job.")
    return job
