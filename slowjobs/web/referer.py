"""Where a visitor came from, for the links back to it."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme


def came_from(request: HttpRequest) -> str:
    """The page of this site that sent the visitor here, or "" when unknown.

    A form's redirect to its job keeps the form's Referer, so the job page
    can link back to the form. The header is the client's word: only a
    path on this very site is taken, and never a job page (a refresh).
    """
    referer = request.headers.get("Referer", "")
    if not url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return ""
    parts = urlsplit(referer)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    page = reverse("slowjobs:page", args=[uuid.UUID(int=0)])
    if not path.startswith("/") or path.startswith(
        page.rstrip("/").rsplit("/", 1)[0] + "/"
    ):
        return ""
    return path
