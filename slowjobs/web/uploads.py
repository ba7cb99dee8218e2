"""Large uploads: streamed to disk, bounded, and kept with their job.

An upload never sits whole in memory: ``TemporaryFileUploadHandler`` writes
it to a temporary file (in ``FILE_UPLOAD_TEMP_DIR``) as it arrives, and
``keep_upload`` renames that file into the jobs' folder.  Put
``FILE_UPLOAD_TEMP_DIR`` on the same file system as ``SLOWJOBS_FILES_DIR``
(the demo does) and that is a rename, not a second copy, however large.
``limit_upload_size`` answers ``413`` when the declared length is over
``SLOWJOBS_MAX_UPLOAD_MB``, and ``SizeLimitHandler`` stops a body that lies
about its length or sends none.  A disk that fills up while an upload
streams in gets ``507`` and a message; the partial file is removed.
Put ``limit_upload_size`` outermost (above CSRF checks), so that nothing
reads the body before its handlers are in place.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import uuid
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import (
    FileUploadHandler,
    StopUpload,
    TemporaryFileUploadHandler,
)
from django.db import InterfaceError, OperationalError
from django.db.models import Q, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils.translation import gettext

from slowjobs import conf
from slowjobs.jobs import files as jobfiles
from slowjobs.jobs.files import remove_stored as remove_stored  # where it used to be
from slowjobs.models import Job
from slowjobs.web.responses import unavailable, wants_json
from slowjobs.web.submitter import Submitter, submitter_of

View = Callable[..., HttpResponseBase]
logger = logging.getLogger("slowjobs.uploads")


def max_upload_bytes() -> int:
    return conf.get().max_upload_mb * 1024 * 1024


class SizeLimitHandler(FileUploadHandler):
    """Counts the bytes of every file as they stream; stops past the limit."""

    def handle_raw_input(self, *args: Any, **kwargs: Any) -> None:
        self.limit = max_upload_bytes()
        self.seen = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.seen += len(raw_data)
        if self.seen > self.limit:
            self.request.slowjobs_upload_too_large = True  # type: ignore[union-attr]
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def too_large(request: HttpRequest) -> HttpResponse:
    limit = conf.get().max_upload_mb
    message = gettext("The upload is larger than %(limit)d MB.") % {"limit": limit}
    if wants_json(request):
        return JsonResponse({"error": message, "max_upload_mb": limit}, status=413)
    return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def cannot_store(request: HttpRequest) -> HttpResponse:
    message = gettext(
        "The server cannot store uploads just now; nothing was kept. Try again later."
    )
    retry_after = conf.get().retry_after
    if wants_json(request):
        response: HttpResponse = JsonResponse(
            {"error": message, "retry_after": retry_after}, status=503
        )
    else:
        response = HttpResponse(
            message, status=503, content_type="text/plain; charset=utf-8"
        )
    response["Retry-After"] = str(conf.get().retry_after)
    return response


def no_space(request: HttpRequest) -> HttpResponse:
    """``507``: the disk is full, or so are the uploads all may keep."""
    message = gettext(
        "The server has no room to store this upload right now; "
        "nothing was kept. Try again later."
    )
    if wants_json(request):
        response: HttpResponse = JsonResponse({"error": message}, status=507)
    else:
        response = HttpResponse(
            message, status=507, content_type="text/plain; charset=utf-8"
        )
    response["Retry-After"] = str(conf.get().retry_after)
    return response


def _discard_uploads(request: HttpRequest) -> None:
    """Close (and so delete) the temporary files of a failed upload now,
    rather than whenever the traceback that holds them is collected."""
    for handler in request.upload_handlers:
        partial = getattr(handler, "file", None)
        if partial is not None:
            with contextlib.suppress(OSError):
                partial.close()
    # Read the rest of the body (at most the size limit: checked before),
    # so the client that is still sending gets the answer, not a reset.
    with contextlib.suppress(OSError, ValueError):
        while request.read(1 << 16):
            pass


def length_required(request: HttpRequest) -> HttpResponse | None:
    """``411`` for a body sent chunked, without a length.

    WSGI gives an application no way to read such a body (Django sees an
    empty one), and "This field is required" would tell the client nothing.
    """
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    if not chunked or request.META.get("CONTENT_LENGTH"):
        return None
    message = gettext("Send the body with a Content-Length header, not chunked.")
    if wants_json(request):
        return JsonResponse({"error": message}, status=411)
    return HttpResponse(message, status=411, content_type="text/plain; charset=utf-8")


def require_length(view: View) -> View:
    """Answer 411 to a chunked body (see ``length_required``)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return length_required(request) or view(request, *args, **kwargs)

    return wrapper


MIB = 1024 * 1024


def over_quota(request: HttpRequest, declared: int) -> HttpResponse | None:
    """``507`` when the kept uploads of all would pass ``SLOWJOBS_UPLOAD_TOTAL_MB``,
    ``413`` when the submitter's would pass ``SLOWJOBS_UPLOAD_QUOTA_MB``.

    Checked against the declared length, before the body is read: a refused
    upload costs no disk.  Kept uploads are the inputs of unfinished jobs
    (and of finished ones whose task keeps them).
    """
    settings = conf.get()
    kept = Job.objects.exclude(input_file="")
    try:
        if settings.upload_total_mb:
            total = kept.aggregate(n=Sum("input_size"))["n"] or 0
            if total + declared > settings.upload_total_mb * MIB:
                return no_space(request)
        if not settings.upload_quota_mb:
            return None
        whose = _whose_uploads(submitter_of(request, create_session=False))
        if whose is None:
            return None
        mine = kept.filter(whose).aggregate(n=Sum("input_size"))["n"] or 0
    except (OperationalError, InterfaceError):
        return unavailable(request, settings.retry_after)
    if mine + declared <= settings.upload_quota_mb * MIB:
        return None
    message = gettext(
        "Your unfinished jobs hold %(held)d MB of uploads; with this one that "
        "would pass the %(quota)d MB one visitor may keep. Wait for a job to "
        "finish, or cancel one."
    ) % {"held": round(mine / MIB), "quota": settings.upload_quota_mb}
    if wants_json(request):
        response: HttpResponse = JsonResponse(
            {
                "error": message,
                "limit": "upload_quota",
                "quota_mb": settings.upload_quota_mb,
            },
            status=413,
        )
    else:
        response = HttpResponse(
            message, status=413, content_type="text/plain; charset=utf-8"
        )
    response["Retry-After"] = str(settings.retry_after)
    return response


def _whose_uploads(submitter: Submitter) -> Q | None:
    """A signed-in user's uploads; an anonymous visitor's by address (a new
    session costs nothing), or by session where there is no address."""
    if submitter.user_id is not None:
        return Q(submitted_by_id=submitter.user_id)
    if submitter.address:
        return Q(submitter_address=submitter.address, submitted_by__isnull=True)
    if submitter.session_key:
        return Q(submitter_session=submitter.session_key)
    return None


def limit_upload_size(view: View) -> View:
    """Answer 413 for an upload over the limit, before reading its body
    (and 411 for one sent chunked, with no length to check)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        refusal = length_required(request)
        if refusal is not None:
            return refusal
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        # The form's other fields and the multipart framing take a little.
        if declared > max_upload_bytes() + 64 * 1024:
            return too_large(request)
        refusal = over_quota(request, declared)
        if refusal is not None:
            return refusal
        request.upload_handlers = [
            SizeLimitHandler(request),
            TemporaryFileUploadHandler(request),
        ]
        try:
            response = view(request, *args, **kwargs)
        except OSError as exc:
            _discard_uploads(request)
            if exc.errno in NO_SPACE:
                return no_space(request)
            # A folder the server may not write to: the site's fault, told
            # to its logs with the path; the client gets a plain message.
            logger.exception("slowjobs: could not store an upload")
            return cannot_store(request)
        if getattr(request, "slowjobs_upload_too_large", False):
            return too_large(request)
        return response

    return wrapper


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def keep_upload(upload: UploadedFile) -> str:  # type: ignore[type-arg]
    """Move an upload into the jobs' folder; return its stored name."""
    original = _UNSAFE.sub("_", Path(upload.name or "upload").name)[-100:] or "upload"
    folder = jobfiles.root() / "inputs" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    destination = folder / original
    if isinstance(upload, TemporaryUploadedFile):
        try:
            os.replace(upload.temporary_file_path(), destination)
            return str(destination.relative_to(jobfiles.root()))
        except OSError:  # another file system: copy it, in chunks
            pass
    with destination.open("wb") as out:
        for chunk in upload.chunks(1024 * 1024):
            out.write(chunk)
    return str(destination.relative_to(jobfiles.root()))
