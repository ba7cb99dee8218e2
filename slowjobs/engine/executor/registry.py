"""This process's one executor, created on first use.

Backend instances are per thread (Django's connection handler), so the
executor cannot live on the backend: it lives here, behind a lock.  After a
fork the child forgets its parent's executor (whose threads did not survive
the fork) and makes its own on first use.
"""

from __future__ import annotations

import os
import threading

from django.utils.translation import gettext

from slowjobs import conf
from slowjobs.engine import running
from slowjobs.engine.executor.base import Executor
from slowjobs.engine.executor.delegate import DelegateExecutor
from slowjobs.engine.executor.pool import PoolExecutor
from slowjobs.exceptions import ExecutorShutDown

# Guards _executor: two request threads may enqueue the first job at once.
_lock = threading.Lock()
_executor: Executor | None = None


def _build(settings: conf.SlowjobsSettings) -> Executor:
    if settings.executor == "delegate":
        return DelegateExecutor(
            max_threads=settings.max_threads,
            submit_timeout=settings.submit_timeout,
            retry_after=settings.retry_after,
        )
    return PoolExecutor(
        workers=settings.workers,
        queue_size=settings.queue_size,
        submit_timeout=settings.submit_timeout,
        retry_after=settings.retry_after,
        running_per_submitter=settings.running_per_submitter(settings.workers),
    )


def get_executor() -> Executor:
    global _executor
    with _lock:
        if _executor is None:
            if running.stopping.is_set():
                raise ExecutorShutDown(
                    gettext("This server is shutting down; try again shortly."),
                    retry_after=conf.get().retry_after,
                )
            _executor = _build(conf.get())
        return _executor


def install_executor(executor: Executor) -> None:
    """Make ``executor`` this process's (a command that sizes its own)."""
    global _executor
    with _lock:
        if _executor is not None and _executor is not executor:
            raise RuntimeError("this process already has an executor")
        _executor = executor


def current_executor() -> Executor | None:
    """The executor if this process has started one, without starting it."""
    return _executor


def shutdown_executor(*, wait: bool = True, timeout: float | None = None) -> bool:
    """Stop this process's executor (if any); the next job gets a new one."""
    global _executor
    with _lock:
        executor, _executor = _executor, None
    if executor is None:
        return True
    return executor.shutdown(wait, timeout=timeout)


def _forget_after_fork() -> None:
    global _executor, _lock
    _executor = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
