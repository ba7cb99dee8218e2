"""JSON for every error a JSON client gets from the job and submit views.

Django answers its own errors (a 400 for a malformed body, a 403 from the
CSRF check, a 404, a 405, a 500) with HTML pages; a client that asked for
``application/json`` gets ``{"error": ...}`` with the same status instead,
and the status JSON URL always answers JSON.  The exception still goes
through Django's own handling first, so it is logged (and a 500 reported)
exactly as for any view.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.handlers.exception import response_for_exception
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.utils.translation import gettext_lazy as _

from slowjobs.web.responses import wants_json

View = Callable[..., HttpResponseBase]

MESSAGES = {
    400: _("The request could not be understood."),
    403: _("This request is not allowed."),
    404: _("No such job."),
    405: _("This method is not allowed here."),
    411: _("Send the body with a Content-Length header."),
    413: _("The request body is too large."),
    500: _("Something went wrong on the server; the error has been logged."),
}


def json_errors(view: View) -> View:
    """Answer a JSON client's errors as JSON (put it outermost)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            response = view(request, *args, **kwargs)
        except Exception as exc:
            response = response_for_exception(request, exc)
        if response.status_code < 400 or not _wants_json_errors(request):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        return as_json(response)

    return wrapper


def _wants_json_errors(request: HttpRequest) -> bool:
    return request.path.endswith("/status") or wants_json(request)


def as_json(response: HttpResponseBase) -> JsonResponse:
    status = response.status_code
    message = MESSAGES.get(status) or MESSAGES[500 if status >= 500 else 400]
    converted = JsonResponse({"error": str(message)}, status=status)
    for header in ("Allow", "Retry-After", "Vary"):
        if header in response:
            converted[header] = response[header]
    for cookie in response.cookies.values():
        converted.cookies[cookie.key] = cookie
    return converted
