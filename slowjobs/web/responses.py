"""Turning an enqueued job into the right HTTP answer, for any view.

    from slowjobs.responses import submit

    def my_view(request):
        return submit(request, my_task, request.POST["n"])

A browser form post gets ``303`` to the job's status page; a client that
asks for ``application/json`` gets ``202`` with ``{ticket, status_url,
page_url}`` and a ``Location`` header; a full executor (or a database that
does not answer) gets ``503`` with ``Retry-After``; a submitter over one of
their caps gets ``429`` with ``Retry-After``; a task's unique key held by
another submitter's unfinished job gets ``409`` with ``Retry-After``
(``slowjobs.web.unique``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from functools import wraps
from typing import Any, ParamSpec

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
)
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.utils.translation import gettext

from slowjobs import conf
from slowjobs.backend.backend import SlowJobsBackend
from slowjobs.checks import urls_mounted
from slowjobs.engine import endings
from slowjobs.exceptions import EnqueueRefused, InvalidTaskArguments, OverLimit
from slowjobs.jobs import files as jobfiles
from slowjobs.lifecycle.control import misconfigured
from slowjobs.models import JobStatus
from slowjobs.signals import submit_waited
from slowjobs.tasksapi import Task, TaskResult
from slowjobs.web import unique, waiting
from slowjobs.web.jobkeys import with_key
from slowjobs.web.joburls import job_url
from slowjobs.web.referer import came_from
from slowjobs.web.submitter import client_address, knows_submitter

P = ParamSpec("P")


def wants_json(request: HttpRequest) -> bool:
    accept = request.META.get("HTTP_ACCEPT", "")
    # What API clients and bare tools send, answered without parsing (as
    # Django's negotiation would: no header, or */*, prefers the page).
    if accept == "application/json":
        return True
    if accept in ("", "*/*"):
        return False
    return request.get_preferred_type(["text/html", "application/json"]) == (
        "application/json"
    )


def accepted(request: HttpRequest, result: TaskResult[..., Any]) -> HttpResponse:
    page_url = job_url("page", result.id) or ""
    if not wants_json(request):
        return HttpResponseRedirect(page_url, status=303)
    # The job's key rides in both URLs: a client that keeps no cookies
    # reads, cancels and downloads with it (see slowjobs.jobkeys).
    key = with_key("", result.id)
    status_url = f"{job_url('status', result.id)}{key}"
    page_url = f"{page_url}{key}"
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        # The client has a session (it owns the job through it), so its next
        # POST needs a CSRF token: hand one out with the ticket.
        get_token(request)
    absolute_status_url = request.build_absolute_uri(status_url)
    response = JsonResponse(
        {
            "ticket": result.id,
            "status_url": absolute_status_url,
            "page_url": request.build_absolute_uri(page_url),
        },
        status=202,
    )
    response["Location"] = absolute_status_url
    return response


def refused(request: HttpRequest, exc: EnqueueRefused) -> HttpResponse:
    """``429`` when the submitter is over a cap (it names which), else
    ``503``: the server has no room for anyone just now."""
    status = 429 if isinstance(exc, OverLimit) else 503
    if wants_json(request):
        body: dict[str, object] = {"error": str(exc), "retry_after": exc.retry_after}
        if isinstance(exc, OverLimit):
            body["limit"] = exc.limit
        response: HttpResponse = JsonResponse(body, status=status)
    else:
        # A browser gets a page that goes back to the form once it may retry.
        response = render(
            request,
            "slowjobs/refused.html",
            {
                "message": str(exc),
                "retry_after": exc.retry_after,
                "limit": getattr(exc, "limit", ""),
                "back_url": came_from(request),
            },
            status=status,
        )
    response["Retry-After"] = str(exc.retry_after)
    return response


def unavailable(request: HttpRequest, retry_after: int) -> HttpResponse:
    message = gettext("The job database is not answering; try again shortly.")
    if wants_json(request) or request.path.endswith("/status"):
        response: HttpResponse = JsonResponse(
            {"error": message, "retry_after": retry_after}, status=503
        )
    else:
        response = HttpResponse(message, status=503, content_type="text/plain")
    response["Retry-After"] = str(retry_after)
    return response


def database_outage_as_503(
    view: Callable[P, HttpResponseBase],
) -> Callable[P, HttpResponseBase]:
    """Answer ``503`` with ``Retry-After`` while the database does not answer.

    A read that failed on a connection kept from before a database restart
    is tried once more on a fresh one: otherwise every request thread would
    answer one 503 after each restart, long after the database was back.
    """

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        request = args[0]
        assert isinstance(request, HttpRequest)
        try:
            return view(*args, **kwargs)
        except (OperationalError, InterfaceError):
            if request.method not in ("GET", "HEAD") or not _reconnected():
                return unavailable(request, conf.get().retry_after)
        try:
            return view(*args, **kwargs)
        except (OperationalError, InterfaceError):
            return unavailable(request, conf.get().retry_after)

    return wrapper


def _reconnected() -> bool:
    """Close the connections a failure left unusable; False if one is held
    by a transaction (a retry would run outside it) or none was broken."""
    closed = False
    for connection in connections.all(initialized_only=True):
        if connection.connection is None or not connection.errors_occurred:
            continue
        if connection.in_atomic_block:
            return False
        # A connection that still answers (SQLite busy, a statement timeout)
        # would only fail again, after as long.
        if connection.is_usable():
            continue
        connection.close()
        closed = True
    return closed


def under_way_elsewhere(request: HttpRequest) -> HttpResponse:
    """``409`` with ``Retry-After``: the same job (its unique key) is under
    way for a submitter this visitor may not see the jobs of."""
    retry_after = conf.get().retry_after
    message = gettext(
        "The same job is already under way for someone else; "
        "try again once it has ended."
    )
    if wants_json(request):
        response: HttpResponse = JsonResponse(
            {"error": message, "retry_after": retry_after}, status=409
        )
    else:
        response = render(
            request,
            "slowjobs/refused.html",
            {
                "heading": gettext("This job is already under way"),
                "message": message,
                "retry_after": retry_after,
                "back_url": came_from(request),
            },
            status=409,
        )
    response["Retry-After"] = str(retry_after)
    return response


def invalid(request: HttpRequest, errors: dict[str, list[str]]) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"errors": errors}, status=400)
    lines = [f"{field}: {' '.join(messages)}" for field, messages in errors.items()]
    return HttpResponse(
        gettext("Invalid input.") + "\n" + "\n".join(lines),
        status=400,
        content_type="text/plain",
    )


def submit(
    request: HttpRequest,
    task: Task[..., Any],
    *args: Any,
    input_file: str = "",
    **kwargs: Any,
) -> HttpResponse:
    """Enqueue ``task`` and answer as the client asked.

    ``input_file``, a stored upload (``slowjobs.uploads.keep_upload``), is the
    job's input: removed when the job ends, or at once if the job is refused.
    It is not passed to the task.  A client that sends ``Prefer: wait=N``
    gets the finished job's status at once if it ends within N seconds
    (``slowjobs.web.waiting``).

    A site wired wrong (another backend, no job URLs, no submitter
    middleware) raises ``ImproperlyConfigured`` before anything is enqueued,
    and arguments that are not JSON raise ``InvalidTaskArguments``: both are
    the program's mistakes, a ``500`` that error tracking sees, not the
    visitor's.
    """
    try:
        refuse_miswired(request, task)
        seconds = _wait_asked(request, task)
        with (
            jobfiles.job_input(input_file) if input_file else nullcontext(),
            endings.Waiter() if seconds else nullcontext() as waiter,
        ):
            try:
                result = task.enqueue(*args, **kwargs)
            except EnqueueRefused as exc:
                jobfiles.remove_stored(input_file)
                return refused(request, exc)
            try:
                holder = unique.holder_of(task, result)
            except DatabaseError:
                return unavailable(request, conf.get().retry_after)
            if holder is not None:
                if input_file and holder["input_file"] != input_file:
                    # An earlier job holds the key, with its own input.
                    jobfiles.remove_stored(input_file)
                if unique.someone_elses(request, holder):
                    return under_way_elsewhere(request)
            if waiter is not None:
                return answer_after_wait(request, result, waiter, seconds)
    except (ImproperlyConfigured, InvalidTaskArguments):
        jobfiles.remove_stored(input_file)
        raise
    return accepted(request, result)


def _wait_asked(request: HttpRequest, task: Task[..., Any]) -> float:
    """The seconds the client would wait (0: answer at once)."""
    asked = waiting.preferred_wait(request.headers.get("Prefer", ""))
    seconds = min(float(asked or 0), conf.get().max_wait)
    if seconds and not waiting.can_wait(seconds, task.run_after):
        return 0.0
    return seconds


def answer_after_wait(
    request: HttpRequest,
    result: TaskResult[..., Any],
    waiter: endings.Waiter,
    seconds: float,
) -> HttpResponse:
    """``200`` (a browser: ``303``) with the status of a job that ended
    within ``seconds``, else the usual ``202``; ``202`` at once when no
    place to wait is free."""
    began = time.monotonic()
    with waiting.place(request, client_address(request)) as placed:
        if not placed:
            _tell_waited(result, "no_place", began)
            return accepted(request, result)
        waiter.follow(result.id)
        waiting.release_connections()
        ended = waiting.wait_for_end(waiter, result.id, seconds)
    response = finished(request, result) if ended else None
    _tell_waited(result, "timed_out" if response is None else "ended", began)
    if response is None:
        response = accepted(request, result)
    response["Preference-Applied"] = f"wait={int(seconds)}"
    return response


def _tell_waited(result: TaskResult[..., Any], outcome: str, began: float) -> None:
    submit_waited.send(
        None,
        task=result.task.module_path,
        outcome=outcome,
        seconds=time.monotonic() - began,
    )


def finished(request: HttpRequest, result: TaskResult[..., Any]) -> HttpResponse | None:
    """The answer about a job just ended: its status JSON, or for a browser
    ``303`` to its page; None if its row cannot be read just now."""
    from slowjobs.web.views import current_status

    try:
        payload = current_status(request, result.id)
    except (Http404, DatabaseError):
        return None
    if payload["status"] not in JobStatus.finished():
        return None
    if not wants_json(request):
        return HttpResponseRedirect(job_url("page", result.id) or "", status=303)
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        get_token(request)  # as with the ticket: the client may POST next
    if payload.get("result_url") and "?" not in payload["result_url"]:
        # As in the 202's links: a client without cookies needs the key.
        payload["result_url"] = with_key(payload["result_url"], result.id)
    response = JsonResponse(payload)
    status_url = f"{job_url('status', result.id)}{with_key('', result.id)}"
    # The body is the status resource's: say where it lives.
    response["Content-Location"] = request.build_absolute_uri(status_url)
    return response


def refuse_miswired(request: HttpRequest, task: Task[..., Any]) -> None:
    """Raise what ``manage.py check`` would have said, naming its check."""
    backend = task.get_backend()
    if not isinstance(backend, SlowJobsBackend):
        raise ImproperlyConfigured(
            f"submit() needs a slowjobs backend, but {task.module_path} runs on "
            f"TASKS[{task.backend!r}] = {type(backend).__qualname__} "
            "(slowjobs.W010): set its BACKEND to 'slowjobs.backend.SlowJobsBackend'."
        )
    if not urls_mounted():
        raise ImproperlyConfigured(
            "submit() cannot point the client at its job: slowjobs.urls is not "
            'in the URLconf (slowjobs.W002). Add path("jobs/", '
            'include("slowjobs.urls")).'
        )
    if not knows_submitter(request):
        raise ImproperlyConfigured(
            "submit() was called for a request that did not pass "
            "slowjobs.submitter.SubmitterMiddleware, so nobody could see the job "
            "(slowjobs.W001): add it to MIDDLEWARE after AuthenticationMiddleware."
        )
    if misconfigured():
        raise ImproperlyConfigured(f"slowjobs.E001: {conf.problem()}")
