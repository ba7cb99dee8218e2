"""gunicorn server hooks: start with the worker, drain before it exits.

In your gunicorn config file (``-c gunicorn.conf.py``)::

    from slowjobs.gunicorn import post_worker_init, worker_exit  # noqa: F401

    graceful_timeout = 30   # more than SLOWJOBS_DRAIN_TIMEOUT

``post_worker_init`` records the worker and, with ``SLOWJOBS_ADOPT`` (the
default), starts taking orphaned and handed-back jobs as soon as it is up;
``worker_exit`` runs the graceful shutdown (drain, then hand back) when the
worker stops, after its last request.  Without the hooks the same happens
lazily: with the first request or job, and at interpreter exit.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("slowjobs.gunicorn")


def post_worker_init(worker: Any) -> None:
    from slowjobs import conf
    from slowjobs.checks import local_store_warning
    from slowjobs.lifecycle import control as lifecycle
    from slowjobs.lifecycle import sole
    from slowjobs.web import waiting

    if lifecycle.misconfigured():
        return
    workers = int(getattr(getattr(worker, "cfg", None), "workers", 1) or 1)
    sole.declare_sole(workers == 1)
    threads = request_threads(worker)
    waiting.declare_request_threads(threads)
    waiters = conf.get().max_waiters
    if threads and waiters and waiters >= threads and getattr(worker, "age", 1) == 1:
        logger.warning(
            "slowjobs: SLOWJOBS_MAX_WAITERS = %d lets waiting submits (Prefer: "
            "wait) take all %d request threads of a worker: pages wait behind "
            "them; keep it below the threads",
            waiters,
            threads,
        )
    if workers > 1 and not conf.get().memcached and getattr(worker, "age", 1) == 1:
        # Said by the first worker only: the others have the same settings.
        warning = local_store_warning(workers)
        logger.warning("%s (%s) %s", warning.msg, warning.id, warning.hint)
    lifecycle.start()


def request_threads(worker: Any) -> int | None:
    """The requests a worker serves at once, where each holds a thread:
    ``threads`` for gthread, one for a sync worker; None for the others
    (uvicorn, gevent...), whose waits do not take a fixed pool's threads."""
    from gunicorn.workers.gthread import ThreadWorker
    from gunicorn.workers.sync import SyncWorker

    if isinstance(worker, ThreadWorker):
        return int(getattr(worker.cfg, "threads", 1) or 1)
    if isinstance(worker, SyncWorker):
        return 1
    return None


def worker_exit(server: Any, worker: Any) -> None:
    from slowjobs.lifecycle import control as lifecycle

    lifecycle.shutdown()
