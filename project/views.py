"""The demo site: forms that start slow jobs."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from slowjobs import conf
from slowjobs.web.csrf import csrf_protect_sessions
from slowjobs.web.errors import json_errors
from slowjobs.web.responses import invalid, submit, wants_json
from slowjobs.web.uploads import keep_upload, limit_upload_size, require_length

from .forms import ChecksumForm, ReportForm
from .tasks import checksum_file, generate_report


def _home(request: HttpRequest, status: int = 200, **forms: object) -> HttpResponse:
    context = {"report_form": ReportForm(), "checksum_form": ChecksumForm(), **forms}
    context["max_upload_mb"] = conf.get().max_upload_mb
    return render(request, "home.html", context, status=status)


def home(request: HttpRequest) -> HttpResponse:
    return _home(request)


@json_errors
@require_POST
@require_length
@csrf_protect_sessions
def submit_report(request: HttpRequest) -> HttpResponse:
    form = ReportForm(request.POST)
    if not form.is_valid():
        if wants_json(request):
            return invalid(
                request, {k: [str(e) for e in v] for k, v in form.errors.items()}
            )
        return _home(request, 400, report_form=form)
    return submit(
        request,
        generate_report,
        rows=form.cleaned_data["rows"],
        row_ms=form.cleaned_data["row_ms"],
    )


@json_errors
@limit_upload_size
@require_POST
@csrf_protect_sessions
def submit_checksum(request: HttpRequest) -> HttpResponse:
    form = ChecksumForm(request.POST, request.FILES)
    if not form.is_valid():
        if wants_json(request):
            return invalid(
                request, {k: [str(e) for e in v] for k, v in form.errors.items()}
            )
        return _home(request, 400, checksum_form=form)
    name = keep_upload(form.cleaned_data["file"])
    # Its input: removed when the job ends (at once if it is refused).
    return submit(request, checksum_file, name, input_file=name)
