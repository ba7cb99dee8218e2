"""Who is submitting: the request's user, or its session for anonymous visitors.

``Task.enqueue(*args)`` passes only the task's own arguments, so the backend
learns the submitter from the request being served, which
``SubmitterMiddleware`` makes known for the duration of each request.  Code
outside a request (a shell, a command) may name a submitter with
``submitted_by``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase


@dataclass(frozen=True, slots=True)
class Submitter:
    user_id: Any = None
    session_key: str = ""


_request: ContextVar[HttpRequest | None] = ContextVar("slowjobs_request", default=None)
_explicit: ContextVar[Submitter | None] = ContextVar("slowjobs_submitter", default=None)


def current_submitter() -> Submitter:
    explicit = _explicit.get()
    if explicit is not None:
        return explicit
    request = _request.get()
    if request is None:
        return Submitter()
    return submitter_of(request)


def submitter_of(request: HttpRequest) -> Submitter:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Submitter(user_id=user.pk)
    session = getattr(request, "session", None)
    if session is None:
        return Submitter()
    if not session.session_key:
        # Anonymous visitors own their jobs through their session, so it
        # must exist and reach the browser as a cookie.
        session.save()
        session.modified = True
    return Submitter(session_key=session.session_key or "")


@contextmanager
def submitted_by(*, user: Any = None, session_key: str = "") -> Iterator[None]:
    token = _explicit.set(
        Submitter(user_id=getattr(user, "pk", user), session_key=session_key)
    )
    try:
        yield
    finally:
        _explicit.reset(token)


class SubmitterMiddleware:
    """Makes the current request's user or session the submitter of its jobs."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[..., Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        token = _request.set(request)
        try:
            response: HttpResponseBase = self.get_response(request)
            return response
        finally:
            _request.reset(token)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        token = _request.set(request)
        try:
            response: HttpResponseBase = await self.get_response(request)
            return response
        finally:
            _request.reset(token)
