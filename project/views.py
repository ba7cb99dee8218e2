"""The demo site: forms that start slow jobs."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from slowjobs.csrf import csrf_protect_sessions
from slowjobs.responses import invalid, submit, wants_json

from .forms import ReportForm
from .tasks import generate_report


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"report_form": ReportForm()})


@require_POST
@csrf_protect_sessions
def submit_report(request: HttpRequest) -> HttpResponse:
    form = ReportForm(request.POST)
    if not form.is_valid():
        if wants_json(request):
            return invalid(
                request, {k: [str(e) for e in v] for k, v in form.errors.items()}
            )
        return render(request, "home.html", {"report_form": form}, status=400)
    return submit(
        request,
        generate_report,
        rows=form.cleaned_data["rows"],
        row_ms=form.cleaned_data["row_ms"],
    )
