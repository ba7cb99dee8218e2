"""The job views of the public contract: status page, status JSON, result."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import jobfiles
from .access import get_visible_job, is_staff
from .status import status_payload


def _not_found() -> JsonResponse:
    return JsonResponse({"error": "No such job."}, status=404)


@never_cache
@require_safe
def job_status(request: HttpRequest, ticket: str) -> JsonResponse:
    try:
        job = get_visible_job(request, ticket)
    except Http404:
        return _not_found()
    return JsonResponse(status_payload(job, staff=is_staff(request)))


@never_cache
@require_safe
def job_page(request: HttpRequest, ticket: str) -> HttpResponse:
    job = get_visible_job(request, ticket)
    return render(
        request,
        "slowjobs/job_page.html",
        {"job": job, "status": status_payload(job, staff=is_staff(request))},
    )


@never_cache
@require_safe
def job_result(request: HttpRequest, ticket: str) -> FileResponse:
    job = get_visible_job(request, ticket)
    path = jobfiles.resolve(job.result_file) if job.result_file else None
    if path is None or not path.is_file():
        raise Http404("This job has no result file.")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(
        Path(path).open("rb"),
        as_attachment=True,
        filename=path.name,
        content_type=content_type,
    )
