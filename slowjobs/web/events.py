"""``GET <mount>/<ticket>/events``: a job's changes pushed as Server-Sent Events.

Served under ASGI (uvicorn workers for gunicorn, daphne...): each watcher
is a coroutine of the server's event loop that reads the job's state a few
times a second (the live store for a running job, the row at most once a
second otherwise) and sends what changed, so that watchers cost no thread
each.  Under WSGI a streamed answer would hold a request thread for as
long as it is watched: there the URL answers ``404`` and the status page
polls ``/status`` instead.

Events: ``status`` (the status JSON, without its log, whenever it
changes), ``log`` (new lines, for a visitor who may read them, with their
next line number as the event's id, so that a reconnecting ``EventSource``
resumes from ``Last-Event-ID``), ``end`` (the final status; the stream
closes); a comment every ``KEEPALIVE`` seconds keeps proxies from timing
the stream out.  Who may watch is decided as for the status JSON: at the
start, and at each read of the row (the visitor's session and user as they
were when the stream began, until it ends and the browser reconnects).
Streams are bounded per process (``SLOWJOBS_MAX_WATCHERS``), per client
address (``SLOWJOBS_MAX_WATCHERS_PER_VISITOR``, ``429`` past it) and in
length (``SLOWJOBS_WATCH_SECONDS``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.db import DatabaseError, close_old_connections
from django.http import Http404, HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt

from slowjobs import conf
from slowjobs.models import JobStatus
from slowjobs.web.submitter import client_address

# Seconds between reads of a running job's live record, and of a row.
LIVE_EVERY = 0.25
ROW_EVERY = 1.0
# Seconds of silence after which a keep-alive comment is sent.
KEEPALIVE = 15.0
FINISHED = frozenset(JobStatus.finished())
# Threads that read jobs' states for every watcher of this process: a
# watcher holds none of its own (Django would give each request one).
READERS = 4

_watching = 0
# Streams per client address (an IPv6 one as its /64): one visitor must not
# take every place of the process.  The event loop's thread alone changes it.
_by_visitor: dict[str, int] = {}
_readers: ThreadPoolExecutor | None = None
_readers_lock = threading.Lock()


def _reader_pool() -> ThreadPoolExecutor:
    global _readers
    with _readers_lock:
        if _readers is None:
            _readers = ThreadPoolExecutor(READERS, thread_name_prefix="slowjobs-events")
        return _readers


def _release_request_thread() -> None:
    """Let the thread Django keeps for this request end while it streams.

    Django's ASGI handler gives each request a thread of its own for its
    sync parts (middleware), kept until the response is sent: for an event
    stream, for as long as it is watched.  Once the middleware is done (the
    stream has begun), nothing of the request needs that thread until its
    end, where Django makes a new one to close the response.  Relies on
    asgiref's per-context executors; where they differ, nothing is done
    (tests/test_events.py counts the threads).
    """
    try:
        from asgiref.sync import SyncToAsync

        context = SyncToAsync.thread_sensitive_context.get(None)
        executor = (
            SyncToAsync.context_to_thread_executor.pop(context, None)
            if context is not None
            else None
        )
    except (AttributeError, TypeError):
        return
    if executor is not None:
        executor.shutdown(wait=False)


async def _in_reader(request: HttpRequest, ticket: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_reader_pool(), partial(_read, request, ticket))


def served_here(request: HttpRequest) -> bool:
    """Whether this server streams events (ASGI), so pages may use them."""
    return isinstance(request, ASGIRequest)


@csrf_exempt  # read-only: any other method is a 405, not a CSRF 403
async def job_events(request: HttpRequest, ticket: str) -> HttpResponseBase:
    if request.method not in ("GET", "HEAD"):
        refused = JsonResponse({"error": gettext("Method not allowed.")}, status=405)
        refused["Allow"] = "GET, HEAD"
        return refused
    if not served_here(request):
        return JsonResponse(
            {"error": gettext("Events are served under ASGI only; poll the status.")},
            status=404,
        )
    try:
        first = await _in_reader(request, ticket)
    except Http404:
        return JsonResponse({"error": gettext("No such job.")}, status=404)
    except DatabaseError:
        return _unavailable()
    settings = conf.get()
    if _full(_watching, settings.max_watchers):
        return _unavailable(gettext("Too many watchers here; try again shortly."))
    visitor = client_address(request)
    if _full(_by_visitor.get(visitor, 0), settings.max_watchers_per_visitor):
        return _too_many_of_yours()
    after = _last_event_id(request)
    response = StreamingHttpResponse(
        _watched(
            visitor, _stream(request, ticket, first, after, settings.watch_seconds)
        ),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-cache, no-store, private"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


def _unavailable(message: str | None = None) -> JsonResponse:
    retry = conf.get().retry_after
    response = JsonResponse(
        {
            "error": message
            or gettext("The job database is not answering; try again shortly."),
            "retry_after": retry,
        },
        status=503,
    )
    response["Retry-After"] = str(retry)
    return response


def _full(count: int, cap: int) -> bool:
    return bool(cap) and count >= cap  # 0: no cap


def _too_many_of_yours() -> JsonResponse:
    retry = conf.get().retry_after
    response = JsonResponse(
        {
            "error": gettext("You are watching too many jobs at once here."),
            "limit": "watchers",
            "retry_after": retry,
        },
        status=429,
    )
    response["Retry-After"] = str(retry)
    return response


async def _watched(visitor: str, stream: AsyncIterator[str]) -> AsyncIterator[str]:
    """``stream``, counted against its visitor for as long as it runs."""
    _by_visitor[visitor] = _by_visitor.get(visitor, 0) + 1
    try:
        async for chunk in stream:
            yield chunk
    finally:
        left = _by_visitor.get(visitor, 1) - 1
        if left:
            _by_visitor[visitor] = left
        else:
            _by_visitor.pop(visitor, None)


def _last_event_id(request: HttpRequest) -> int:
    """The first log line the watcher lacks: ``Last-Event-ID`` when its
    ``EventSource`` reconnects, ``?after=`` when a page already shows some."""
    found = 0
    for value in (
        request.headers.get("Last-Event-ID", ""),
        request.GET.get("after", ""),
    ):
        if value.isdigit() and len(value) < 12:
            found = max(found, int(value))
    return found


def _read(request: HttpRequest, ticket: str) -> dict[str, Any]:
    """In a reader thread: its connection is renewed as a request's would
    be (``CONN_MAX_AGE``), so none outlives its age or a broken socket."""
    from slowjobs.web.views import current_status

    close_old_connections()
    return current_status(request, ticket)


async def _stream(
    request: HttpRequest,
    ticket: str,
    payload: dict[str, Any],
    after: int,
    seconds: float,
) -> AsyncIterator[str]:
    global _watching
    _watching += 1
    try:
        yield f"retry: {int(ROW_EVERY * 2000)}\n\n"
        _release_request_thread()
        ends = time.monotonic() + seconds
        last_status = None
        last_sent = time.monotonic()
        while True:
            log = payload.pop("log", None)
            events = []
            status = json.dumps(payload, separators=(",", ":"))
            finished = payload["status"] in FINISHED
            if status != last_status and not finished:
                events.append(f"event: status\ndata: {status}\n\n")
                last_status = status
            if log is not None:
                fresh = [line for line in log["lines"] if line.get("n", 0) >= after]
                if fresh:
                    after = int(fresh[-1].get("n", after)) + 1
                    lines = json.dumps(
                        {"lines": fresh, "dropped": log["dropped"]},
                        separators=(",", ":"),
                    )
                    events.append(f"id: {after}\nevent: log\ndata: {lines}\n\n")
            if finished:
                events.append(f"event: end\ndata: {status}\n\n")
            now = time.monotonic()
            if events:
                last_sent = now
                yield "".join(events)
            elif now - last_sent >= KEEPALIVE:
                last_sent = now
                yield ": keep-alive\n\n"
            if finished or now >= ends:
                return
            await asyncio.sleep(
                LIVE_EVERY if payload["status"] == JobStatus.RUNNING else ROW_EVERY
            )
            try:
                payload = await _in_reader(request, ticket)
            except Http404:
                return  # purged, or no longer the visitor's to see
            except DatabaseError:
                continue  # the next read tries again
    finally:
        _watching -= 1


def _may_watch_every_job(request: HttpRequest) -> bool:
    from slowjobs.web.access import may_view_any

    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff) and (
        may_view_any(request)
    )


def _progress_of(tickets: list[str]) -> dict[str, dict[str, Any]]:
    from slowjobs.admin import progress_of

    close_old_connections()
    return progress_of(tickets)


@csrf_exempt
async def progress_events(request: HttpRequest) -> HttpResponseBase:
    """The admin's job list, pushed: ``progress`` events with the jobs on
    the page (``?t=<ticket>``, 200 at most) whose state changed, once a
    second, until all have finished.  Staff with ``view_job`` only."""
    if request.method not in ("GET", "HEAD"):
        refused = JsonResponse({"error": gettext("Method not allowed.")}, status=405)
        refused["Allow"] = "GET, HEAD"
        return refused
    loop = asyncio.get_running_loop()
    if not served_here(request) or not await loop.run_in_executor(
        _reader_pool(), _may_watch_every_job, request
    ):
        return JsonResponse({"error": gettext("Not found.")}, status=404)
    if _full(_watching, conf.get().max_watchers):
        return _unavailable(gettext("Too many watchers here; try again shortly."))
    visitor = client_address(request)
    if _full(_by_visitor.get(visitor, 0), conf.get().max_watchers_per_visitor):
        return _too_many_of_yours()
    tickets = request.GET.getlist("t")[:200]
    response = StreamingHttpResponse(
        _watched(visitor, _progress_stream(tickets, conf.get().watch_seconds)),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-cache, no-store, private"
    response["X-Accel-Buffering"] = "no"
    return response


async def _progress_stream(tickets: list[str], seconds: float) -> AsyncIterator[str]:
    global _watching
    _watching += 1
    try:
        yield f"retry: {int(ROW_EVERY * 2000)}\n\n"
        _release_request_thread()
        loop = asyncio.get_running_loop()
        ends = time.monotonic() + seconds
        sent: dict[str, dict[str, Any]] = {}
        last_sent = time.monotonic()
        while tickets and time.monotonic() < ends:
            try:
                jobs = await loop.run_in_executor(_reader_pool(), _progress_of, tickets)
            except DatabaseError:
                jobs = {}
            changed = {t: job for t, job in jobs.items() if sent.get(t) != job}
            now = time.monotonic()
            if changed:
                sent.update(changed)
                last_sent = now
                data = json.dumps(changed, separators=(",", ":"))
                yield f"event: progress\ndata: {data}\n\n"
            elif now - last_sent >= KEEPALIVE:
                last_sent = now
                yield ": keep-alive\n\n"
            tickets = [t for t in tickets if not sent.get(t, {}).get("finished")]
            await asyncio.sleep(ROW_EVERY)
    finally:
        _watching -= 1
