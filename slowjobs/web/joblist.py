"""``GET <mount>/``: a visitor's own jobs, newest first, a page at a time.

Own means submitted by the signed-in user or by this session, whatever
the visitor's permissions: ``slowjobs.view_job`` lets staff read any job
by its ticket, and the admin lists everyone's; this page is the
visitor's.  A visitor without a session has no jobs, and gets none made.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache

from slowjobs.models import Job, JobQuerySet, JobStatus
from slowjobs.web.errors import json_errors
from slowjobs.web.responses import database_outage_as_503, wants_json
from slowjobs.web.status import progress_payload
from slowjobs.web.views import safe_methods_only

PAGE_SIZE = 20
# The columns a list item shows: the rest (arguments, results, tracebacks)
# can be large, and belong to each job's own page.
COLUMNS = (
    "id", "task_path", "title", "status", "cancel_requested", "progress_current",
    "progress_total", "progress_message", "attempts", "enqueued_at", "started_at",
    "finished_at", "result_file",
)  # fmt: skip


def own_jobs(request: HttpRequest) -> JobQuerySet:
    user = getattr(request, "user", None)
    session = getattr(request, "session", None)
    session_key = session.session_key if session is not None else None
    mine = Q(pk__in=[])
    if user is not None and user.is_authenticated:
        mine |= Q(submitted_by=user)
    if session_key:
        mine |= Q(submitter_session=session_key)
    return Job.objects.filter(mine).order_by("-enqueued_at", "-pk")


def list_item(job: Job) -> dict[str, Any]:
    ticket = str(job.pk)
    return {
        "ticket": ticket,
        "task": job.task_path,
        "title": job.label,
        "status": job.status,
        "cancel_requested": job.cancel_requested,
        "progress": progress_payload(job),
        "attempts": job.attempts,
        "enqueued_at": job.enqueued_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "page_url": reverse("slowjobs:page", args=[ticket]),
        "status_url": reverse("slowjobs:status", args=[ticket]),
        "result_url": reverse("slowjobs:result", args=[ticket])
        if job.status == JobStatus.SUCCEEDED and job.result_file
        else None,
    }


def _page_url(number: int | None) -> str | None:
    if number is None:
        return None
    return reverse("slowjobs:list") + "?" + urlencode({"page": number})


@json_errors
@never_cache
@database_outage_as_503
@safe_methods_only
def job_list(request: HttpRequest) -> HttpResponse:
    paginator = Paginator(own_jobs(request).only(*COLUMNS), PAGE_SIZE)
    try:
        page = paginator.page(request.GET.get("page", "1"))
    except (PageNotAnInteger, EmptyPage):
        if wants_json(request):
            return JsonResponse({"error": gettext("No such page.")}, status=404)
        raise Http404("No such page.") from None
    jobs = [list_item(job) for job in page]
    next_url = _page_url(page.next_page_number() if page.has_next() else None)
    previous_url = _page_url(
        page.previous_page_number() if page.has_previous() else None
    )
    if wants_json(request):
        return JsonResponse(
            {
                "jobs": jobs,
                "count": paginator.count,
                "page": page.number,
                "pages": paginator.num_pages,
                "next": next_url,
                "previous": previous_url,
            }
        )
    return render(
        request,
        "slowjobs/job_list.html",
        {
            "jobs": jobs,
            "page": page,
            "count": paginator.count,
            "next_url": next_url,
            "previous_url": previous_url,
            "status_labels": dict(JobStatus.choices),
        },
    )
