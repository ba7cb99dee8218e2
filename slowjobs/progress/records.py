"""What the live store holds is sealed: memcached is untrusted input.

memcached has no authentication, so whoever reaches it could write a record
that makes a finished job read as running, or cancel any job.  Every record
slowjobs writes carries an HMAC (keyed by ``SECRET_KEY``, over its key and
its JSON); a record without a valid one, or of the wrong shape, reads as
missing, and is logged once.  Session keys never go into the store: a
record names its submitter's session by a keyed digest.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections import OrderedDict
from typing import Any

from django.utils.crypto import salted_hmac

logger = logging.getLogger("slowjobs.progress")

SEAL_FIELD = "seal"
# Distinct keys for distinct uses of SECRET_KEY.
_SEAL_SALT = "slowjobs.progress.records.seal"
_SESSION_SALT = "slowjobs.progress.records.session"
# Bad records already logged, by key: each is logged once (a bounded memory).
_REPORTED_LIMIT = 1000


def session_digest(session_key: str | None) -> str:
    """How a record (and the admin) names a session without revealing its key."""
    if not session_key:
        return ""
    return salted_hmac(_SESSION_SALT, session_key, algorithm="sha256").hexdigest()[:32]


def _mac(key: str, value: dict[str, Any]) -> str:
    body = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return salted_hmac(_SEAL_SALT, f"{key}\n{body}", algorithm="sha256").hexdigest()


def sealed(key: str, value: dict[str, Any]) -> dict[str, Any]:
    """``value`` as it is stored under ``key``: with its seal."""
    return {**value, SEAL_FIELD: _mac(key, value)}


def opened(key: str, stored: object) -> dict[str, Any] | None:
    """The value stored under ``key`` if slowjobs wrote it, else None."""
    if not isinstance(stored, dict):
        _refused(key, "not an object")
        return None
    seal = stored.get(SEAL_FIELD)
    value = {name: item for name, item in stored.items() if name != SEAL_FIELD}
    if not isinstance(seal, str) or not hmac.compare_digest(seal, _mac(key, value)):
        _refused(key, "no valid seal")
        return None
    return value


_reported: OrderedDict[str, None] = OrderedDict()
_reported_lock = threading.Lock()


def _refused(key: str, why: str) -> None:
    """Log a bad record, once per key."""
    with _reported_lock:
        first = key not in _reported
        _reported[key] = None
        _reported.move_to_end(key)
        while len(_reported) > _REPORTED_LIMIT:
            _reported.popitem(last=False)
    if first:
        logger.warning(
            "slowjobs: ignored a live record that slowjobs did not write (%s): %s",
            why,
            key,
        )
