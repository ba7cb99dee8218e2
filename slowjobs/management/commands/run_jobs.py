"""A worker process: run queued jobs from the database until stopped.

For deployments that want jobs off the web tier, or a second tier beside
it: servers with ``SLOWJOBS_OVERFLOW = True`` leave the jobs they have no
room for queued in the database, and any number of ``run_jobs`` processes
(on any host sharing the database) take them, together with deferred jobs
and retries that are due, handed-back jobs, and the orphans of processes
that died.  Claims are atomic (``SKIP LOCKED`` on PostgreSQL), so workers
never share a job.  SIGTERM or Ctrl+C drains like a server.
"""

from __future__ import annotations

import signal
import threading
from argparse import ArgumentParser
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from slowjobs import conf, lifecycle, running
from slowjobs.executor.pool import PoolExecutor
from slowjobs.executor.registry import install_executor
from slowjobs.management.arguments import whole_number
from slowjobs.orphans import claim, orphaned
from slowjobs.process import process_id
from slowjobs.runner import start_claimed


def seconds(text: str) -> float:
    from argparse import ArgumentTypeError

    try:
        value = float(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 60:
        raise ArgumentTypeError(f"{value} is not between 0 and 60 seconds")
    return value


class Command(BaseCommand):
    help = (
        "Run queued jobs from the database (overflow, due deferred jobs and "
        "retries, orphans) until stopped."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--workers",
            type=whole_number(1),
            default=None,
            help="Jobs run at once (default: SLOWJOBS_WORKERS).",
        )
        parser.add_argument(
            "--poll",
            type=seconds,
            default=0.5,
            help="Seconds between looks for work while idle (default 0.5).",
        )

    def handle(self, *, workers: int | None, poll: float, **options: Any) -> None:
        settings = conf.get()
        self.executor = PoolExecutor(
            workers=workers or settings.workers,
            queue_size=0,
            submit_timeout=0,
            retry_after=settings.retry_after,
        )
        install_executor(self.executor)
        lifecycle.start(adopt=False)
        if not lifecycle.wait_until_known():
            raise CommandError("Could not record this process in the database.")
        self._stop = threading.Event()
        self._stop_requests = 0
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        self.stdout.write(
            f"run_jobs {process_id()}: {self.executor.workers} workers, "
            f"looking for work every {poll:g} s"
        )
        started = 0
        try:
            while not self._stop.is_set():
                try:
                    started += self._take_work()
                except DatabaseError as exc:
                    self.stderr.write(f"Could not claim jobs ({exc}); trying again.")
                self._stop.wait(poll)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            report = lifecycle.shutdown()
        self.stdout.write(
            f"Stopped after starting {started} job(s); "
            f"{len(report.handed_back)} handed back."
        )

    def _take_work(self) -> int:
        """Claim as many waiting jobs as there are idle workers; start them."""
        room = self.executor.workers - self.executor.used
        # A read first: most looks find nothing, and a claim takes locks.
        if room <= 0 or not orphaned().exists():
            return 0
        batch = claim(process_id(), limit=room)
        start_claimed(batch.runnable)
        for job in batch.ended:
            self.stdout.write(f"  {job.pk} {job.task_path}: {job.status}")
        return len(batch.runnable)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop_requests += 1
        self._stop.set()
        if self._stop_requests == 1:
            self.stderr.write(
                "Stopping: running jobs get up to "
                f"{conf.get().drain_timeout:g} s to finish, then are handed back. "
                "Press Ctrl+C again to hand them back now."
            )
        else:
            running.hurry.set()
