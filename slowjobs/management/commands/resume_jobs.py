"""Finish the jobs that a stopped or crashed process left unfinished."""

from __future__ import annotations

import threading
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError
from django.utils import timezone

from slowjobs import conf
from slowjobs.engine.executor.pool import PoolExecutor
from slowjobs.engine.runner import start_on
from slowjobs.engine.spec import spec_from_job
from slowjobs.lifecycle import control as lifecycle
from slowjobs.lifecycle.adoption import adopt, other_owners
from slowjobs.lifecycle.liveness import Silence, gone_owners
from slowjobs.lifecycle.orphans import orphaned
from slowjobs.management.display import JobsDisplay
from slowjobs.management.jobscommand import JobsCommand
from slowjobs.models import Job, JobStatus, WorkerProcess
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
        """The jobs a run would take now, then those of silent owners."""
        gone = gone_owners(other_owners())
        jobs = orphaned(gone=gone).order_by("-priority", "enqueued_at")
        if task:
            jobs = jobs.filter(task_path=task)
        count = 0
        taken: set[str] = set()
        for job in jobs.iterator():
            count += 1
            taken.add(str(job.pk))
            reason = "process gone" if job.owner in gone else "orphaned"
            if not job.owner:
                reason = "handed back"
            self.stdout.write(
                f"{job.pk}  {job.status:<8} attempt {job.attempts}  "
                f"{job.task_path}  owner {job.owner or '-'}  ({reason})"
            )
        self.stdout.write(f"{count} job(s) would be resumed.")
        self._list_silent(task, taken)

    def _list_silent(self, task: str | None, taken: set[str]) -> None:
        """Jobs whose owner looks alive but has gone quiet: resumed once its
        lease runs out, unless it beats again first."""
        now = timezone.now()
        heard = dict(WorkerProcess.objects.values_list("id", "last_seen"))
        waiting = Job.objects.unfinished().exclude(owner="").order_by("enqueued_at")
        if task:
            waiting = waiting.filter(task_path=task)
        interval = conf.get().heartbeat_interval
        lines = []
        for job in waiting.iterator():
            if str(job.pk) in taken or job.heartbeat_at is None:
                continue
            last = max(filter(None, [job.heartbeat_at, heard.get(job.owner)]))
            if (now - last).total_seconds() <= 2 * interval:
                continue  # beating: it runs the job
            silence = Silence(job.owner, last)
            lines.append(
                f"{job.pk}  {job.status:<8} {job.task_path}  owner {job.owner}  "
                f"silent {(now - last).total_seconds():.0f} s, "
                f"lease ends in {silence.seconds_left(now):.0f} s"
            )
        if lines:
            self.stdout.write(
                f"{len(lines)} job(s) of silent processes, resumed when their "
                "lease ends:"
            )
            for line in lines:
                self.stdout.write(line)

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
        display = JobsDisplay(self.stdout)
        try:
            while not self.stop_requested.is_set():
                # Started jobs hold a slot until their runner returns, even if
                # no task_finished comes (an outcome that lost its job).
                batch = adopt(room - executor.used, task_path=task)
                for job in batch.ended:
                    tickets.add(str(job.pk))
                    done.add(str(job.pk))
                    display.line(f"  {job.pk} {job.label}: {job.status}")
                for job in batch.runnable:
                    tickets.add(str(job.pk))
                    start_on(
                        executor.force_slot(), spec_from_job(job), priority=job.priority
                    )
                with finished:
                    if not len(batch) and not executor.used:
                        break  # nothing running and nothing left to claim
                    finished.wait(0.2)
                display.update(len(tickets & done), len(tickets))
        finally:
            display.close()
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
