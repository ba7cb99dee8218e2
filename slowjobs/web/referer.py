"""Where a visitor came from, for the links back to it."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from slowjobs.web.joburls import PLACEHOLDER, job_url


def came_from(request: HttpRequest) -> str:
    """The page of this site that sent the visitor here, or "" when unknown.

    A form's redirect to its job keeps the form's Referer, so the job page
    can link back to the form. The header is the client's word: only a path
    on this very site is taken (checked as the link it becomes, so that
    ``http://site//elsewhere`` cannot turn into a link to ``//elsewhere``),
    and never a job page (a refresh).
    """
    host = request.get_host()
    referer = request.headers.get("Referer", "")
    if not url_has_allowed_host_and_scheme(
        referer, allowed_hosts={host}, require_https=request.is_secure()
    ):
        return ""
    parts = urlsplit(referer)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if not path.startswith("/") or not url_has_allowed_host_and_scheme(
        path, allowed_hosts={host}
    ):
        return ""
    page = job_url("page", PLACEHOLDER) or ""
    mount = page.removesuffix(f"{PLACEHOLDER}/")
    if mount and path.startswith(mount):
        return ""
    return path
