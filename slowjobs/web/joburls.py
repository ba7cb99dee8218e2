"""A job's URLs, reversed once per URLconf rather than on every submit.

``reverse`` walks the URLconf each time; a job's URLs differ only in the
ticket, so each is reversed once with a placeholder ticket and the ticket
is put in its place. The cache is keyed by what ``reverse`` depends on: the
resolver of the URLconf in use (Django makes a new one whenever its URL
caches are cleared, as ``override_settings`` does) and the script prefix.
"""

from __future__ import annotations

import uuid
from functools import lru_cache

from django.urls import (
    NoReverseMatch,
    URLResolver,
    get_resolver,
    get_script_prefix,
    get_urlconf,
    reverse,
)

PLACEHOLDER = str(uuid.UUID(int=0))


@lru_cache(maxsize=64)
def _template(name: str, resolver: URLResolver, prefix: str) -> str | None:
    """Reversed in the URLconf in use, which is ``resolver``'s."""
    try:
        return reverse(f"slowjobs:{name}", args=[PLACEHOLDER])
    except NoReverseMatch:
        return None


def job_url(name: str, ticket: uuid.UUID | str) -> str | None:
    """``/jobs/<ticket>/`` (``"page"``), ``.../status`` (``"status"``), ...;
    None when ``slowjobs.urls`` is not mounted."""
    template = _template(name, get_resolver(get_urlconf()), get_script_prefix())
    return None if template is None else template.replace(PLACEHOLDER, str(ticket))
