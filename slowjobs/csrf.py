"""CSRF protection for submit views that API clients also call.

CSRF abuses the credentials a browser sends by itself.  A POST without the
session cookie carries none (an API client with no session yet), so a view
decorated with ``csrf_protect_sessions`` lets it through; any POST that
carries the session cookie needs the token, exactly as with Django's own
middleware.  Views without the decorator keep Django's full protection.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

View = Callable[..., HttpResponseBase]


def _unreachable(request: HttpRequest) -> HttpResponse:
    raise AssertionError("only process_view is used")


_checker = CsrfViewMiddleware(_unreachable)


def csrf_protect_sessions(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            if "CSRF_COOKIE" not in request.META:
                _checker.process_request(request)
            refusal = _checker.process_view(request, view, args, kwargs)
            if refusal is not None:
                return refusal
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapper)
