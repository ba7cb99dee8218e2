"""``Prefer: wait=N`` (RFC 7240): a quick job answered in the same response.

A client that sends ``Prefer: wait=N`` with a submit is willing to wait up
to N seconds (at most ``SLOWJOBS_MAX_WAIT``) for the job: ended by then,
it gets ``200`` with the status JSON (a browser, ``303`` to the page), and
otherwise the usual ``202``, the job going on untouched; both say
``Preference-Applied: wait=<seconds waited for at most>``.

The wait holds a request thread, and nothing else: no executor slot (the
job has its own) and no database connection (the request's are closed
before it; the row is read once, at the end).  The job's own process wakes
it as the outcome is committed (``slowjobs.engine.endings``); a job run by
another process is looked for in the shared live store, or without one in
its row once a second.

Request threads are few (a gunicorn gthread worker has ``threads`` of
them), so waits are bounded per process (``SLOWJOBS_MAX_WAITERS``) and
per client address (``SLOWJOBS_MAX_WAITERS_PER_VISITOR``): past either, the
request is answered ``202`` at once, as if it had not asked.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.core.handlers.asgi import ASGIRequest
from django.db import DatabaseError, connections, router
from django.http import HttpRequest
from django.utils import timezone

from slowjobs import conf
from slowjobs.engine import endings
from slowjobs.models import Job, JobStatus

# Waiters per process when the server did not say how many request threads
# it has: a threaded WSGI server's pool is small (gunicorn gthread's
# threads), an ASGI server's sync views take a thread each, not a pool's.
THREADED_WAITERS = 2
ASGI_WAITERS = 8
# Seconds between looks in the shared store for a job run elsewhere: the
# first soon, then less and less often.
FIRST_LOOK, LAST_LOOK = 0.02, 0.25
# ...and in its row, without a shared store.
ROW_LOOK = 1.0
# A preference: its name, and its value when it has one (RFC 7240 section 2).
PREFERENCE = re.compile(
    r"""\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*(?:=\s*("[^"]*"|[^\s;,]*))?[^,]*"""
)
DELTA_SECONDS = re.compile(r"\d{1,9}")

_lock = threading.Lock()
_waiting = 0
_by_visitor: dict[str, int] = {}
# Request threads per process, as the server said (slowjobs.lifecycle.gunicorn).
_request_threads: int | None = None


def preferred_wait(request_prefer: str) -> int | None:
    """The seconds of the first ``wait`` preference, or None.

    Preferences the server does not know, and a ``wait`` whose value is no
    number, are ignored, as RFC 7240 asks: never an error.
    """
    for match in PREFERENCE.finditer(request_prefer):
        name, value = match.group(1), (match.group(2) or "").strip('"')
        if name.lower() == "wait":
            return int(value) if DELTA_SECONDS.fullmatch(value) else None
    return None


def declare_request_threads(threads: int | None) -> None:
    """The server's request threads per process: half of them may wait."""
    global _request_threads
    _request_threads = threads


def places(request: HttpRequest) -> int:
    """How many requests of this process may wait at once: what the
    setting says, else half the request threads the server declared (the
    gunicorn hooks), else none in a single-threaded WSGI server (one wait
    would hold the whole process), else a few."""
    configured = conf.get().max_waiters
    if configured is not None:
        return configured
    if _request_threads is not None:
        return _request_threads // 2
    if isinstance(request, ASGIRequest):
        return ASGI_WAITERS
    if request.META.get("wsgi.multithread") is False:
        return 0
    return THREADED_WAITERS


@contextmanager
def place(request: HttpRequest, visitor: str) -> Iterator[bool]:
    """A place to wait in, or False when this process or visitor has none."""
    global _waiting
    per_visitor = conf.get().max_waiters_per_visitor
    with _lock:
        taken = _waiting < places(request) and (
            not per_visitor or _by_visitor.get(visitor, 0) < per_visitor
        )
        if taken:
            _waiting += 1
            _by_visitor[visitor] = _by_visitor.get(visitor, 0) + 1
    try:
        yield taken
    finally:
        if taken:
            with _lock:
                _waiting -= 1
                left = _by_visitor[visitor] - 1
                if left:
                    _by_visitor[visitor] = left
                else:
                    del _by_visitor[visitor]


def waiting_now() -> int:
    return _waiting


def release_connections() -> None:
    """Close this thread's database connections for the wait: a waiter
    must not hold one of the database's few (a transaction's stays)."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def can_wait(seconds: float, run_after: datetime | None = None) -> bool:
    """Whether a job enqueued now could end within a wait: not inside a
    transaction (its start waits for the commit, after the answer), nor
    deferred past the wait."""
    using = router.db_for_write(Job)
    if connections[using].in_atomic_block:
        return False
    return run_after is None or run_after <= timezone.now() + timedelta(seconds=seconds)


def wait_for_end(waiter: endings.Waiter, ticket: str, seconds: float) -> bool:
    """Whether the job ended within ``seconds``."""
    deadline = time.monotonic() + seconds
    look = FIRST_LOOK if endings.store_is_shared() else ROW_LOOK
    while (left := deadline - time.monotonic()) > 0:
        if waiter.wait(min(look, left)):
            return True
        elsewhere = endings.ended_elsewhere(ticket)
        if elsewhere is None:
            # No shared store (or it is away): the row, now and then.
            look = ROW_LOOK
            if _row_finished(ticket):
                return True
        elif elsewhere:
            return True
        else:
            look = min(look * 2, LAST_LOOK)
    # The row has the last word: an end record can be evicted, or written
    # by a process that uses another store.
    return _row_finished(ticket)


def _row_finished(ticket: str) -> bool:
    using = router.db_for_read(Job)
    try:
        return (
            Job.objects.using(using)
            .filter(pk=ticket, status__in=JobStatus.finished())
            .exists()
        )
    except DatabaseError:
        return False
    finally:
        connections[using].close()
