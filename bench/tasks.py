"""Tasks the benchmarks enqueue."""

from __future__ import annotations

import threading
import time

from slowjobs.tasksapi import task

# Start times by sequence number, for the enqueue -> start latency figure.
started: dict[int, float] = {}
start_events: dict[int, threading.Event] = {}


@task
def noop() -> None:
    pass


@task
def mark_start(number: int) -> None:
    started[number] = time.perf_counter()
    event = start_events.get(number)
    if event is not None:
        event.set()


@task(takes_context=True)
def rows_work(context, rows: int, report: bool, parse: bool) -> float:
    """Hash ``rows`` CSV rows (parsing each first if ``parse``), reporting
    progress on every row if ``report``; returns the seconds it took."""
    import csv
    import hashlib

    digest = hashlib.sha256()
    # CPU time of this thread: what the task itself spent, whatever else the
    # shared machine was doing.
    started = time.thread_time()
    for row in range(1, rows + 1):
        line = f"{row},{row * row},{row % 7},item-{row},2026-11-28T08:00:00Z\n"
        if parse:
            fields = next(csv.reader([line]))
            line = "|".join(field.strip().upper() for field in fields)
        digest.update(line.encode())
        if report:
            context.progress(row, rows, "hashing rows")
    return time.thread_time() - started


@task
def log_lines(lines: int) -> float:
    """Logs ``lines`` lines; returns the thread's CPU seconds doing it."""
    import logging

    logger = logging.getLogger("bench.joblog")
    started = time.thread_time()
    for number in range(lines):
        logger.warning("row %d of %d done", number, lines)
    return time.thread_time() - started
