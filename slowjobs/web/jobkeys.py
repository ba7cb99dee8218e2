"""A job's own key: the credential of a client that keeps no session.

The ``202`` for an API client hands out ``status_url`` and ``page_url`` with
``?key=<key>``; whoever holds the key may read, cancel and download that one
job, as its submitter may.  The key is an HMAC of the ticket under
``SECRET_KEY`` (Django's signer, with a salt of its own), so nothing is
stored, and a key opens no other job.  Rotating ``SECRET_KEY`` (with the old
one in ``SECRET_KEY_FALLBACKS`` until then) withdraws the keys handed out.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

SALT = "slowjobs.job-key"
PARAMETER = "key"


def signer() -> signing.Signer:
    """The signer of the keys under the current secrets: made once per
    secret, not once per job (making one reads the settings)."""
    return _signer(settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))


@lru_cache(maxsize=4)
def _signer(secret: str, fallbacks: tuple[str, ...]) -> signing.Signer:
    return signing.Signer(key=secret, fallback_keys=list(fallbacks), salt=SALT)


def key_for(ticket: uuid.UUID | str) -> str:
    return signer().signature(str(ticket))


def holds_key(request: HttpRequest, ticket: uuid.UUID | str) -> bool:
    """Whether the request carries this job's key (in ``?key=``)."""
    given = request.GET.get(PARAMETER, "")
    if not given or len(given) > 200:
        return False
    keys_of = signer()
    keys = [keys_of.signature(str(ticket))] + [
        keys_of.signature(str(ticket), key) for key in keys_of.fallback_keys
    ]
    return any(constant_time_compare(given, key) for key in keys)


def with_key(url: str, ticket: uuid.UUID | str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({PARAMETER: key_for(ticket)})}"


def key_query(request: HttpRequest, ticket: uuid.UUID | str) -> str:
    """``?key=...`` to carry on in links, when the request came with the key."""
    return with_key("", ticket) if holds_key(request, ticket) else ""
