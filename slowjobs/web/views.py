"""The job views of the public contract: status page, status JSON, cancel, result."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
    HttpResponseRedirect,
    JsonResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import resolve, reverse
from django.utils import timezone
from django.utils.cache import get_conditional_response
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from slowjobs.engine.running import get_running
from slowjobs.jobs import files as jobfiles
from slowjobs.jobs.cancel import CancelOutcome, cancel
from slowjobs.models import Job, JobStatus
from slowjobs.web.access import (
    CANCEL_ANY,
    get_visible_job,
    is_the_session,
    may_view_any,
)
from slowjobs.web.csrf import csrf_protect_sessions
from slowjobs.web.errors import json_errors
from slowjobs.web.events import served_here
from slowjobs.web.jobkeys import key_query
from slowjobs.web.joblogs import log_for
from slowjobs.web.referer import came_from
from slowjobs.web.responses import database_outage_as_503, wants_json
from slowjobs.web.status import live_payload, row_payload


def safe_methods_only(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """GET and HEAD; any other method gets 405, not a CSRF 403: a read-only
    view has nothing to protect, and the client deserves the real answer."""
    return csrf_exempt(require_safe(view))


def _not_found() -> JsonResponse:
    return JsonResponse({"error": gettext("No such job.")}, status=404)


def current_status(request: HttpRequest, ticket: str) -> dict[str, Any]:
    """The live record when there is one (newest), else the row; Http404.

    With its ``log`` for a visitor who may read it (``slowjobs.web.joblogs``).
    """
    try:
        live = live_payload(request, uuid.UUID(ticket))
    except ValueError:
        raise Http404 from None
    job = None
    anonymous_owner = False
    if live is None:
        job = get_visible_job(request, ticket)
        payload = _row_status(request, job)
    else:
        payload = live
        user, session = payload.pop("_user"), payload.pop("_session")
        anonymous_owner = user is None and is_the_session(request, session)
    log = log_for(request, payload, job, anonymous_owner=anonymous_owner)
    if log is not None:
        payload["log"] = log
    return payload


def _row_status(request: HttpRequest, job: Job) -> dict[str, Any]:
    payload = row_payload(
        job,
        with_traceback=may_view_any(request),
        key_query=key_query(request, job.pk),
    )
    if payload["status"] == JobStatus.QUEUED:
        # Its start is written just after it starts: a job running in this
        # very process may still read queued in its row.
        here = get_running(job.pk)
        if here is not None:
            payload["status"] = JobStatus.RUNNING.value
            payload["started_at"] = here.started_at.isoformat()
            payload["attempts"] = here.attempt
    return payload


@json_errors
@never_cache
@database_outage_as_503
@safe_methods_only
def job_status(request: HttpRequest, ticket: str) -> HttpResponseBase:
    """The status JSON, with an ``ETag`` of its content: a poller that sends
    it back in ``If-None-Match`` gets ``304`` while nothing changed (for a
    running job, from the live store alone: no database query)."""
    try:
        response = JsonResponse(current_status(request, ticket))
    except Http404:
        return _not_found()
    etag = f'"{hashlib.blake2b(response.content, digest_size=12).hexdigest()}"'
    response["ETag"] = etag
    conditional = get_conditional_response(request, etag=etag, response=response)
    return response if conditional is None else conditional


CANCEL_DETAILS = {
    CancelOutcome.CANCELLED: _("Cancelled before it started."),
    CancelOutcome.REQUESTED: _("Cancel requested; the job stops at its next check."),
    CancelOutcome.FINISHED: _("The job had already finished; nothing was changed."),
}


@json_errors
@never_cache
@database_outage_as_503
@require_POST
@csrf_protect_sessions
def job_cancel(request: HttpRequest, ticket: str) -> HttpResponse:
    try:
        job = get_visible_job(request, ticket, permission=CANCEL_ANY)
    except Http404:
        return _not_found()
    outcome = (
        CancelOutcome.FINISHED
        if job.is_finished
        else cancel(job.pk, using=job._state.db or "default")
    )
    if not wants_json(request):  # the status page's button
        page = reverse("slowjobs:page", args=[job.pk]) + key_query(request, job.pk)
        return HttpResponseRedirect(page, status=303)
    now = Job.objects.using(job._state.db or "default").filter(pk=job.pk).first()
    if now is None:  # deleted meanwhile (a finished job, by the admin)
        return _not_found()
    # The row, not the live record: it has the cancel, and a user who may
    # cancel any job may not read every one's live record.
    payload = _row_status(request, now)
    payload["detail"] = str(CANCEL_DETAILS[outcome])
    return JsonResponse(payload, status=202)


def _duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    whole = round(seconds)
    hours, minutes, secs = whole // 3600, whole % 3600 // 60, whole % 60
    parts = ([f"{hours} h"] if hours else []) + (
        [f"{minutes} min"] if hours or minutes else []
    )
    return " ".join([*parts, f"{secs} s"])


def _timing(job: Job) -> tuple[str, str]:
    """Elapsed time and, from the progress so far, an estimate of time left."""
    if job.started_at is None:
        return "", ""
    end = job.finished_at or timezone.now()
    elapsed = (end - job.started_at).total_seconds()
    percent = job.percent
    left = None
    if not job.is_finished and percent and percent < 100:
        left = elapsed * (100 - percent) / percent
    return _duration(elapsed), _duration(left)


@json_errors
@never_cache
@database_outage_as_503
@safe_methods_only
def job_page(request: HttpRequest, ticket: str) -> HttpResponse:
    job = get_visible_job(request, ticket)
    query = key_query(request, job.pk)
    status = row_payload(job, with_traceback=may_view_any(request), key_query=query)
    log = log_for(request, status, job)
    job.status = status["status"]  # shown as the JSON says (never saved)
    elapsed, eta = _timing(job)
    return render(
        request,
        "slowjobs/job_page.html",
        {
            "job": job,
            "status": status,
            "elapsed": elapsed,
            "eta": eta,
            "result_json": json.dumps(status["result"], indent=2),
            # A visitor who came with the job's key keeps it in every link.
            "key_query": query,
            "status_labels": {value: str(label) for value, label in JobStatus.choices},
            "another_url": came_from(request),
            "log": log,
            "log_after": log["lines"][-1].get("n", 0) + 1
            if log and log["lines"]
            else 0,
            # Pushed where this server streams events; polled elsewhere.
            "events_url": (
                reverse("slowjobs:events", args=[job.pk]) + query
                if served_here(request)
                else ""
            ),
        },
    )


@json_errors
@never_cache
@database_outage_as_503
@safe_methods_only
def job_result(request: HttpRequest, ticket: str) -> HttpResponseBase:
    job = get_visible_job(request, ticket)
    path = jobfiles.resolve(job.result_file) if job.result_file else None
    if path is None or not path.is_file():
        raise Http404("This job has no result file.")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=path.name,
        content_type=content_type,
    )


@json_errors
@csrf_exempt
def no_such_page(request: HttpRequest, rest: str) -> HttpResponse:
    """404 for anything else under the mount; ``/jobs/<ticket>`` still goes
    to the page, as ``APPEND_SLASH`` would have sent it without this view."""
    if settings.APPEND_SLASH and not request.path_info.endswith("/"):
        match = resolve(request.path_info + "/")
        if match.func is not no_such_page and request.method in ("GET", "HEAD"):
            return HttpResponsePermanentRedirect(request.get_full_path(True))
    raise Http404("No such page.")
