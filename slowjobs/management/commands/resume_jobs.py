"""Finish the jobs that a stopped or crashed process left unfinished."""

from __future__ import annotations

import threading
import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError

from slowjobs import lifecycle
from slowjobs.executor.pool import PoolExecutor
from slowjobs.management.jobscommand import JobsCommand
from slowjobs.models import Job, JobStatus
from slowjobs.orphans import claim, orphaned
from slowjobs.process import process_id
from slowjobs.runner import JobWork, spec_from_job
from slowjobs.tasksapi import task_finished


class Command(JobsCommand):
    help = (
        "Claim the unfinished jobs whose process is gone and run them here, "
        "from their last checkpoint. Exits 1 if any of them failed."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="List the jobs; claim nothing."
        )
        self.add_workers_argument(parser)
        parser.add_argument(
            "--task", default=None, help="Only jobs of this task (dotted path)."
        )

    def handle(
        self, *, dry_run: bool, workers: int | None, task: str | None, **options: Any
    ) -> None:
        if dry_run:
            self._list(task)
            return
        executor = self.start_pool(workers, queue_size=1_000_000)
        with self.stop_signals():
            failed = self._run(executor, task)
        if failed:
            raise CommandError(f"{failed} resumed job(s) did not succeed.")

    def _list(self, task: str | None) -> None:
        jobs = orphaned().order_by("-priority", "enqueued_at")
        if task:
            jobs = jobs.filter(task_path=task)
        count = 0
        for job in jobs.iterator():
            count += 1
            self.stdout.write(
                f"{job.pk}  {job.status:<8} attempt {job.attempts}  "
                f"{job.task_path}  owner {job.owner or '-'}"
            )
        self.stdout.write(f"{count} job(s) would be resumed.")

    def _run(self, executor: PoolExecutor, task: str | None) -> int:
        """Claim as many orphans as there is room for, run them, repeat.

        Claiming only what it can start leaves the rest to other claimers
        (another resume_jobs, or servers adopting), so they share the work.
        """
        done: set[str] = set()
        finished = threading.Condition()

        def on_finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
            with finished:
                done.add(task_result.id)
                finished.notify_all()

        task_finished.connect(on_finished, weak=False)
        tickets: set[str] = set()
        room = executor.workers
        last_line = 0.0
        try:
            while not self.stop_requested.is_set():
                # Started jobs hold a slot until their runner returns, even if
                # no task_finished comes (an outcome that lost its job).
                batch = claim(process_id(), limit=room - executor.used, task_path=task)
                for job in batch.ended:
                    tickets.add(str(job.pk))
                    done.add(str(job.pk))
                    self.stdout.write(f"  {job.pk} {job.task_path}: {job.status}")
                for job in batch.runnable:
                    tickets.add(str(job.pk))
                    executor.start(
                        executor.force_slot(),
                        JobWork(spec_from_job(job)),
                        priority=job.priority,
                    )
                with finished:
                    if not len(batch) and not executor.used:
                        break  # nothing running and nothing left to claim
                    finished.wait(0.2)
                    if time.monotonic() - last_line >= 1:
                        last_line = time.monotonic()
                        self.stdout.write(
                            f"  {len(tickets & done)}/{len(tickets)} finished, "
                            f"{len(tickets - done)} running"
                        )
        finally:
            task_finished.disconnect(on_finished)
            report = lifecycle.shutdown()
        return self._summary(tickets, report.handed_back)

    def _summary(self, tickets: set[str], handed_back: list[str]) -> int:
        counts = {status: 0 for status in JobStatus.values}
        for status in Job.objects.filter(pk__in=tickets).values_list(
            "status", flat=True
        ):
            counts[status] += 1
        self.stdout.write(
            f"Resumed {len(tickets)}: {counts[JobStatus.SUCCEEDED]} succeeded, "
            f"{counts[JobStatus.FAILED]} failed, "
            f"{counts[JobStatus.CANCELLED]} cancelled, "
            f"{len(handed_back)} handed back."
        )
        return counts[JobStatus.FAILED]
