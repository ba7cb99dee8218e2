"""Who may see a job: its submitter (user, or session) and staff.

Anything else, including a malformed ticket, is "not found", so a ticket's
existence is never revealed to someone who does not own it.
"""

from __future__ import annotations

import uuid

from django.http import Http404, HttpRequest

from .models import Job


def is_staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


def get_visible_job(request: HttpRequest, ticket: str) -> Job:
    try:
        pk = uuid.UUID(ticket)
    except ValueError:
        raise Http404("No such job.") from None
    session = getattr(request, "session", None)
    jobs = Job.objects.visible_to(
        user=getattr(request, "user", None),
        session_key=session.session_key if session is not None else None,
    )
    job = jobs.filter(pk=pk).first()
    if job is None:
        raise Http404("No such job.")
    return job
