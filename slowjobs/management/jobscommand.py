"""What the commands that run jobs share: a pool of their own, and signals.

``resume_jobs`` and ``run_jobs`` run jobs in the command's process: a pool
executor sized by ``--workers``, this process recorded as a job runner,
and SIGINT/SIGTERM handled like a server's shutdown (the first one drains,
a second one hands the running jobs back at once).
"""

from __future__ import annotations

import signal
import threading
from argparse import ArgumentParser
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from django.core.management.base import BaseCommand, CommandError

from slowjobs import conf
from slowjobs.engine import running
from slowjobs.engine.executor.pool import PoolExecutor
from slowjobs.engine.executor.registry import install_executor
from slowjobs.lifecycle import control as lifecycle
from slowjobs.management.arguments import whole_number


class JobsCommand(BaseCommand):
    stop_requested: threading.Event

    def add_workers_argument(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--workers",
            type=whole_number(1),
            default=None,
            help="Jobs run at once (default: SLOWJOBS_WORKERS).",
        )

    def start_pool(
        self, workers: int | None, *, queue_size: int, periodic: bool = False
    ) -> PoolExecutor:
        """This process's executor, and its record as a live job runner
        (``periodic``: keeping the clock of the periodic schedules too)."""
        settings = conf.get()
        workers = workers or settings.workers
        executor = PoolExecutor(
            workers=workers,
            queue_size=queue_size,
            submit_timeout=0,
            retry_after=settings.retry_after,
            running_per_submitter=settings.running_per_submitter(workers),
        )
        install_executor(executor)
        lifecycle.start(adopt=False, periodic=periodic)
        if not lifecycle.wait_until_known():
            raise CommandError("Could not record this process in the database.")
        return executor

    @contextmanager
    def stop_signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM set ``stop_requested`` while inside."""
        self.stop_requested = threading.Event()
        self._signals = 0
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self.stop_requested.set()
        if self._signals == 1:
            self.stderr.write(
                "Stopping: running jobs get up to "
                f"{conf.get().drain_timeout:g} s to finish, then are handed back. "
                "Press Ctrl+C again to hand them back now."
            )
        else:
            self.stderr.write("Handing the running jobs back now.")
            running.hurry.set()
