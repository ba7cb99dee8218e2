"""Views that parse the same small form: the plain floor, the floor plus one
durable INSERT, the design's floor (that INSERT and a hand-off of a no-op to
a thread pool in the same process), and slowjobs' enqueue of a no-op job."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from slowjobs.web.responses import submit
from slowjobs.web.submitter import submitted_by

from .models import BenchRow
from .tasks import noop


class SmallForm(forms.Form):
    name = forms.CharField(max_length=100)
    number = forms.IntegerField()


def parse_form(request: HttpRequest) -> SmallForm | JsonResponse:
    form = SmallForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    return form


@csrf_exempt
@require_POST
def plain(request: HttpRequest) -> HttpResponse:
    form = parse_form(request)
    if isinstance(form, JsonResponse):
        return form
    return JsonResponse({"name": form.cleaned_data["name"]}, status=202)


def plain_get(request: HttpRequest) -> HttpResponse:
    """The floor for a status poll: a GET answering a small JSON object."""
    return JsonResponse({"status": "running", "progress": {"percent": 50.0}})


@csrf_exempt
@require_POST
def insert(request: HttpRequest) -> HttpResponse:
    form = parse_form(request)
    if isinstance(form, JsonResponse):
        return form
    row = BenchRow.objects.create(**form.cleaned_data)
    return JsonResponse({"id": row.pk}, status=202)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _nothing() -> None:
    pass


def pool() -> ThreadPoolExecutor:
    """Four threads per server process, as slowjobs' default executor; made on
    first use, so after gunicorn's fork."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(4, thread_name_prefix="bench-floor")
        return _pool


@csrf_exempt
@require_POST
def floor(request: HttpRequest) -> HttpResponse:
    """What any design that writes every job and runs it in the server pays:
    one durable INSERT, then a hand-off to a thread that runs a no-op."""
    form = parse_form(request)
    if isinstance(form, JsonResponse):
        return form
    row = BenchRow.objects.create(**form.cleaned_data)
    pool().submit(_nothing)
    return JsonResponse({"id": row.pk}, status=202)


@csrf_exempt
@require_POST
def enqueue(request: HttpRequest) -> HttpResponse:
    form = parse_form(request)
    if isinstance(form, JsonResponse):
        return form
    # An API client with no session: no session row is written for it.
    with submitted_by():
        return submit(request, noop)


@csrf_exempt
@require_POST
def crunch_view(request: HttpRequest) -> HttpResponse:
    """Enqueue a CPU-bound job of ``seconds`` (bench/cpu_pages.py)."""
    # Imported here: its @task options are slowjobs', and bench.peers serves
    # these views beside other backends too.
    from project.tasks import crunch

    try:
        seconds = float(request.POST.get("seconds", ""))
    except ValueError:
        return JsonResponse({"errors": {"seconds": ["a number"]}}, status=400)
    with submitted_by():
        return submit(request, crunch, seconds=seconds)
