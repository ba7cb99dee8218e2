"""Who is submitting: the request's user, or its session for anonymous visitors.

``Task.enqueue(*args)`` passes only the task's own arguments, so the backend
learns the submitter from the request being served, which
``SubmitterMiddleware`` makes known for the duration of each request.  Code
outside a request (a shell, a command) may name a submitter with
``submitted_by``.

An anonymous visitor's first job creates their session (one INSERT) and
the middleware sends its cookie; the session is not marked modified, which
would have Django write the same row again as the response goes out (and,
were the database away just then, turn an accepted job's 202 into a 400).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_vary_headers
from django.utils.http import http_date

from slowjobs import conf

logger = logging.getLogger("slowjobs.submitter")


@dataclass(frozen=True, slots=True)
class Submitter:
    user_id: Any = None
    session_key: str = ""
    # The client address (IPv6: its /64) when the job comes over HTTP.
    address: str = ""

    @property
    def lane(self) -> str:
        """Whose turn a queued job waits for: jobs take turns by lane.

        An anonymous visitor's lane is their address, not their session: a
        client that drops its cookie gets a new session with every request.
        """
        if self.user_id is not None:
            return f"user:{self.user_id}"
        if self.address:
            return f"address:{self.address}"
        if self.session_key:
            return f"session:{self.session_key}"
        return ""


_request: ContextVar[HttpRequest | None] = ContextVar("slowjobs_request", default=None)
_explicit: ContextVar[Submitter | None] = ContextVar("slowjobs_submitter", default=None)


def knows_submitter(request: HttpRequest) -> bool:
    """Whether a job enqueued now records who asked: the request came through
    SubmitterMiddleware, or the view named the submitter (``submitted_by``)."""
    return _request.get() is request or _explicit.get() is not None


def current_submitter(*, create_session: bool = True) -> Submitter:
    """Who submits now; ``create_session=False`` looks without writing."""
    explicit = _explicit.get()
    if explicit is not None:
        return explicit
    request = _request.get()
    if request is None:
        return Submitter()
    return submitter_of(request, create_session=create_session)


def submitter_of(request: HttpRequest, *, create_session: bool = True) -> Submitter:
    address = client_address(request)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Submitter(user_id=user.pk, address=address)
    session = getattr(request, "session", None)
    if session is None:
        return Submitter(address=address)
    if not session.session_key and not create_session:
        return Submitter(address=address)
    if not session.session_key:
        # Anonymous visitors own their jobs through their session, so it
        # must exist and reach the browser as a cookie (set_session_cookie).
        session.save()
        # Just written (create() marks it modified): SessionMiddleware must
        # not write it again; set_session_cookie sends the cookie instead.
        session.modified = False
        request.slowjobs_session_created = True  # type: ignore[attr-defined]
    return Submitter(session_key=session.session_key or "", address=address)


# What an anonymous visitor counts as when no address can be read (a unix
# socket gives none): one shared bucket, so the caps still hold.
UNKNOWN_ADDRESS = "unknown"
_proxy_warning = threading.Event()


def client_address(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, or with ``SLOWJOBS_TRUSTED_PROXIES``
    = N, the address the outermost of N proxies saw (N-th from the right of
    ``X-Forwarded-For``: entries left of it are the client's to forge).

    An IPv6 address counts as its /64, which one client usually holds whole.
    A forwarded entry that is no address falls back to ``REMOTE_ADDR``, and
    no address at all to ``UNKNOWN_ADDRESS``: never to "no cap".
    """
    proxies = conf.get().trusted_proxies
    remote = _normalized(request.META.get("REMOTE_ADDR", ""))
    forwarded_for = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies:
        forwarded = [part.strip() for part in forwarded_for.split(",") if part.strip()]
        if len(forwarded) >= proxies:
            address = _normalized(forwarded[-proxies])
            if address:
                return address
    elif forwarded_for and not _proxy_warning.is_set():
        _proxy_warning.set()
        logger.warning(
            "slowjobs: requests carry X-Forwarded-For but SLOWJOBS_TRUSTED_PROXIES "
            "is 0: behind a proxy every anonymous visitor counts as the proxy's "
            "address (%s) for caps and turns; set it to the number of proxies",
            remote or UNKNOWN_ADDRESS,
        )
    return remote or UNKNOWN_ADDRESS


def _normalized(text: str) -> str:
    try:
        ip = ipaddress.ip_address(str(text).strip().strip("[]"))
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def set_session_cookie(request: HttpRequest, response: HttpResponseBase) -> None:
    """Send the cookie of a session made for a job, as SessionMiddleware would."""
    session = getattr(request, "session", None)
    if (
        session is None
        or not getattr(request, "slowjobs_session_created", False)
        or session.modified  # SessionMiddleware saves it and sends the cookie
        or not session.session_key
        or settings.SESSION_COOKIE_NAME in response.cookies
    ):
        return
    if session.get_expire_at_browser_close():
        max_age, expires = None, None
    else:
        max_age = session.get_expiry_age()
        expires = http_date(time.time() + max_age)
    response.set_cookie(
        settings.SESSION_COOKIE_NAME,
        session.session_key,
        max_age=max_age,
        expires=expires,
        domain=settings.SESSION_COOKIE_DOMAIN,
        path=settings.SESSION_COOKIE_PATH,
        secure=bool(settings.SESSION_COOKIE_SECURE),
        httponly=bool(settings.SESSION_COOKIE_HTTPONLY),
        samesite=settings.SESSION_COOKIE_SAMESITE,
    )
    patch_vary_headers(response, ("Cookie",))


@contextmanager
def submitted_by(
    *, user: Any = None, session_key: str = "", address: str = ""
) -> Iterator[None]:
    token = _explicit.set(
        Submitter(
            user_id=getattr(user, "pk", user), session_key=session_key, address=address
        )
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
        finally:
            _request.reset(token)
        set_session_cookie(request, response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        token = _request.set(request)
        try:
            response: HttpResponseBase = await self.get_response(request)
        finally:
            _request.reset(token)
        set_session_cookie(request, response)
        return response
