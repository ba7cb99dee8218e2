"""Tasks the benchmarks enqueue."""

from __future__ import annotations

import threading
import time

from django.tasks import task

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
