"""What resume_jobs and run_jobs show of the jobs they run.

In a terminal: a live display (rich), one bar per running job with its
title and message, and a line of totals. Piped to a file or a log: a plain
line whenever something changed, at most once a second, naming each
running job's progress. Either way the command's own lines (a job found
already ended, the summary) are written as they come.
"""

from __future__ import annotations

import time
from typing import IO, Any, cast

from django.core.management.base import OutputWrapper
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from slowjobs.engine.running import RunningJob, running_jobs

PLAIN_EVERY = 1.0  # seconds between plain lines


def job_title(job: RunningJob) -> str:
    return job.task_title


def plain_progress(job: RunningJob) -> str:
    if job.current is None:
        done = "started"
    elif job.total:
        done = f"{100 * job.current / job.total:.0f}%"
    else:
        done = str(job.current)
    message = f" ({job.message})" if job.message else ""
    return f"{str(job.ticket)[:8]} {job_title(job)} {done}{message}"


class JobsDisplay:
    def __init__(self, stdout: OutputWrapper) -> None:
        self.stdout = stdout
        self.live = stdout.isatty()
        self._bars: dict[str, TaskID] = {}
        self._said = ""
        self._next_plain = 0.0
        self._progress: Progress | None = None
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[message]}", style="dim"),
                console=Console(file=cast(IO[str], stdout._out)),
                transient=True,
            )
            self._totals = self._progress.add_task("jobs", total=None, message="")
            self._progress.start()

    def line(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, highlight=False)
        else:
            self.stdout.write(text)

    def update(self, finished: int, started: int) -> None:
        jobs = running_jobs()
        totals = f"{finished}/{started} finished, {len(jobs)} running"
        if self._progress is not None:
            self._show_bars(jobs, totals)
            return
        said = "; ".join([totals, *(plain_progress(job) for job in jobs)])
        if said != self._said and time.monotonic() >= self._next_plain:
            self._said, self._next_plain = said, time.monotonic() + PLAIN_EVERY
            self.stdout.write(f"  {said}")

    def _show_bars(self, jobs: list[RunningJob], totals: str) -> None:
        assert self._progress is not None
        self._progress.update(self._totals, description=totals)
        seen = set()
        for job in jobs:
            key = str(job.ticket)
            seen.add(key)
            if key not in self._bars:
                self._bars[key] = self._progress.add_task(
                    f"{key[:8]} {job_title(job)}", total=None, message=""
                )
            self._progress.update(
                self._bars[key],
                completed=job.current or 0,
                total=job.total,
                message=job.message,
            )
        for key in set(self._bars) - seen:
            self._progress.remove_task(self._bars.pop(key))

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __enter__(self) -> JobsDisplay:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
