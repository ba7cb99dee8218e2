"""A worker process: run queued jobs from the database until stopped.

For deployments that want jobs off the web tier, or a second tier beside
it: servers with ``SLOWJOBS_OVERFLOW = True`` leave the jobs they have no
room for queued in the database, and any number of ``run_jobs`` processes
(on any host sharing the database) take them, together with deferred jobs
and retries that are due, handed-back jobs, and the orphans of processes
that died (at once where its death is proved: its pid on this machine, its
advisory lock on PostgreSQL; by the lease otherwise).  Claims are atomic
(``SKIP LOCKED`` on PostgreSQL), so workers never share a job.  SIGTERM or
Ctrl+C drains like a server.  It also keeps the clock of the periodic
schedules (``SLOWJOBS_PERIODIC``), as every server that adopts does.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.db import DatabaseError

from slowjobs.engine.runner import start_claimed
from slowjobs.lifecycle import control as lifecycle
from slowjobs.lifecycle.adoption import adopt
from slowjobs.lifecycle.identity import process_id
from slowjobs.management.arguments import seconds_between
from slowjobs.management.display import JobsDisplay
from slowjobs.management.jobscommand import JobsCommand


class Command(JobsCommand):
    help = (
        "Run queued jobs from the database (overflow, due deferred jobs and "
        "retries, orphans) until stopped."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        self.add_workers_argument(parser)
        parser.add_argument(
            "--poll",
            type=seconds_between(0, 60),
            default=0.5,
            help="Seconds between looks for work while idle (default 0.5).",
        )

    def handle(self, *, workers: int | None, poll: float, **options: Any) -> None:
        self.executor = self.start_pool(workers, queue_size=0, periodic=True)
        self.stdout.write(
            f"run_jobs {process_id()}: {self.executor.workers} workers, "
            f"looking for work every {poll:g} s"
        )
        started = 0
        self.display = JobsDisplay(self.stdout)
        with self.stop_signals():
            try:
                while not self.stop_requested.is_set():
                    try:
                        started += self._take_work()
                    except DatabaseError as exc:
                        self.stderr.write(
                            f"Could not claim jobs ({exc}); trying again."
                        )
                    self.stop_requested.wait(poll)
                    self.display.update(self.executor.jobs_done, started)
            finally:
                self.display.close()
                report = lifecycle.shutdown()
        self.stdout.write(
            f"Stopped after starting {started} job(s); "
            f"{len(report.handed_back)} handed back."
        )

    def _take_work(self) -> int:
        """Claim as many waiting jobs as there are idle workers; start them."""
        batch = adopt(self.executor.workers - self.executor.used)
        start_claimed(batch.runnable)
        for job in batch.ended:
            self.display.line(f"  {job.pk} {job.label}: {job.status}")
        return len(batch.runnable)
