"""The submit views of each system: the same small form as the plain view,
then one no-op job enqueued the way that system's users write it."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bench.views import parse_form
from slowjobs.exceptions import EnqueueRefused
from slowjobs.web.responses import submit
from slowjobs.web.submitter import submitted_by

from . import tasks


@csrf_exempt
@require_POST
def enqueue(request: HttpRequest) -> HttpResponse:
    if isinstance(form := parse_form(request), JsonResponse):
        return form
    system = settings.SYSTEM
    if system.startswith("slowjobs"):
        with submitted_by():
            return submit(request, tasks.noop)
    if system.startswith("celery"):
        ticket = tasks.celery_noop.delay().id
    elif system == "rq":
        import django_rq

        ticket = django_rq.get_queue("default").enqueue(tasks.rq_noop).id
    else:
        ticket = tasks.noop.enqueue().id
    return JsonResponse({"ticket": ticket}, status=202)


@csrf_exempt
@require_POST
def enqueue_many(request: HttpRequest) -> HttpResponse:
    """slowjobs: ``count`` no-op jobs in one transaction (one commit)."""
    count = int(request.POST.get("count", "100"))
    try:
        with submitted_by(), transaction.atomic():
            for _ in range(count):
                tasks.noop.enqueue()
    except EnqueueRefused as exc:
        return JsonResponse({"error": str(exc)}, status=503)
    return JsonResponse({"enqueued": count}, status=202)


@csrf_exempt
@require_POST
def enqueue_sleep(request: HttpRequest) -> HttpResponse:
    """slowjobs: one 100 ms job; 503 when this process has no room."""
    with submitted_by():
        return submit(request, tasks.sleep_100ms)
