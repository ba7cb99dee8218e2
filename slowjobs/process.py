"""Who this process is, as recorded in ``Job.owner``.

The id includes the start time so that a recycled pid is never taken for the
process that used it before.  It is worked out again in a forked child (a
gunicorn worker must not inherit its master's identity).
"""

from __future__ import annotations

import os
import socket
import time

_identity: str | None = None


def process_id() -> str:
    global _identity
    if _identity is None:
        _identity = f"{socket.gethostname()}:{os.getpid()}:{time.time():.3f}"
    return _identity


def _forget_identity() -> None:
    global _identity
    _identity = None


os.register_at_fork(after_in_child=_forget_identity)
