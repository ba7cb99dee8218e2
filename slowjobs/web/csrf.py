"""CSRF protection for submit views that API clients also call.

CSRF abuses what a browser sends by itself.  Two rules close it:

- A POST that a browser made from another site is refused, cookie or not:
  ``Sec-Fetch-Site: cross-site``, or an ``Origin`` that is neither this
  site's nor in ``CSRF_TRUSTED_ORIGINS``.  (Without it, a page elsewhere
  could start jobs in a visitor's name, and the answer's new session
  cookie would replace the visitor's own.)  Clients that are not browsers
  send neither header.
- A POST that carries the session cookie needs the CSRF token, exactly as
  with Django's own middleware.  One without it carries no credential (an
  API client with no session yet, or one using a job's key), so it passes.

Views without the decorator keep Django's full protection.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt

from slowjobs.web.responses import wants_json

View = Callable[..., HttpResponseBase]
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


def _unreachable(request: HttpRequest) -> HttpResponse:
    raise AssertionError("only process_view is used")


class _Checker(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        # Django's failure page (and its log line), with the reason kept
        # for a JSON client's answer.
        response: HttpResponse = super()._reject(request, reason)  # type: ignore[misc]
        response.slowjobs_reason = reason  # type: ignore[attr-defined]
        return response


_checker = _Checker(_unreachable)


def from_another_site(request: HttpRequest) -> bool:
    """Whether a browser says this request comes from a page of another site."""
    if request.META.get("HTTP_SEC_FETCH_SITE", "").lower() == "cross-site":
        return True
    origin = request.META.get("HTTP_ORIGIN")
    if origin is None:
        return False
    if origin == "null":  # sandboxed frames, data: URLs, some redirects
        return True
    try:
        good = f"{request.scheme}://{request.get_host()}"
    except Exception:  # DisallowedHost: Django answers 400 elsewhere
        return True
    if origin == good:
        return False
    return not _trusted(origin)


def _trusted(origin: str) -> bool:
    parts = urlsplit(origin)
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        if trusted == origin:
            return True
        scheme, _, host = trusted.partition("://")
        if (
            host.startswith("*.")
            and scheme == parts.scheme
            and ("." + parts.netloc).endswith(host[1:])
        ):
            return True
    return False


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"error": message}, status=403)
    return HttpResponse(message, status=403, content_type="text/plain")


def csrf_protect_sessions(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method not in SAFE_METHODS and from_another_site(request):
            return _forbidden(
                request, gettext("A page of another site may not submit here.")
            )
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            if "CSRF_COOKIE" not in request.META:
                _checker.process_request(request)
            refusal = _checker.process_view(request, view, args, kwargs)
            if refusal is not None:
                if not wants_json(request):
                    return refusal  # Django's page (CSRF_FAILURE_VIEW)
                reason = getattr(refusal, "slowjobs_reason", "")
                message = gettext("CSRF check failed: %(reason)s")
                return _forbidden(request, message % {"reason": reason})
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapper)
