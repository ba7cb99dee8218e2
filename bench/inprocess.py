"""In-process figures: no-op jobs per second through one process (and the
1-write floor of that: an INSERT and a thread hand-off a job), and the
enqueue -> start latency of jobs submitted one at a time.

Run by ``bench/run.py`` in a fresh process with DATABASE_URL set; prints JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")


def drain_rate(count: int) -> dict[str, float]:
    from django.tasks.signals import task_finished

    from bench.tasks import noop
    from slowjobs.engine.executor.registry import get_executor
    from slowjobs.jobs.statewriter import get_writer

    done = threading.Semaphore(0)

    def on_finished(**kwargs: object) -> None:
        done.release()

    task_finished.connect(on_finished)
    get_executor()
    writer = get_writer()
    commits_before = writer.commits
    started = time.perf_counter()
    for _ in range(count):
        noop.enqueue()
    enqueued = time.perf_counter()
    for _ in range(count):
        done.acquire()
    finished = time.perf_counter()
    task_finished.disconnect(on_finished)
    writer.flush(30)
    return {
        "jobs": count,
        "jobs_per_s": count / (finished - started),
        "enqueue_per_s": count / (enqueued - started),
        # Every commit of a job's row or states, counted by the state writer
        # (the one write path): rows and states share commits on SQLite, on
        # PostgreSQL each row is its own one-statement commit.
        "commits_per_job": (writer.commits - commits_before) / count,
    }


def start_latency(count: int) -> dict[str, float]:
    from bench import tasks

    samples = []
    for number in range(count):
        event = tasks.start_events[number] = threading.Event()
        before = time.perf_counter()
        tasks.mark_start.enqueue(number)
        if not event.wait(10):
            raise RuntimeError(f"job {number} never started")
        samples.append((tasks.started[number] - before) * 1000)
    samples.sort()
    return {
        "samples": count,
        "p50_ms": statistics.median(samples),
        "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
    }


def floor_latency(count: int) -> dict[str, float]:
    """The design's floor: one durable INSERT, then a hand-off to a thread."""
    from concurrent.futures import ThreadPoolExecutor

    from bench.models import BenchRow

    samples = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        for number in range(count):
            before = time.perf_counter()
            BenchRow.objects.create(name="floor", number=number)
            started = pool.submit(time.perf_counter).result()
            samples.append((started - before) * 1000)
    samples.sort()
    return {
        "samples": count,
        "p50_ms": statistics.median(samples),
        "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
    }


def floor_drain(count: int) -> dict[str, float]:
    """The 1-write floor of a drain: one durable INSERT a job, then a no-op
    run by a pool thread; from one thread, to the last no-op run."""
    from concurrent.futures import ThreadPoolExecutor, wait

    from bench.models import BenchRow

    with ThreadPoolExecutor(max_workers=4) as pool:
        started = time.perf_counter()
        futures = []
        for number in range(count):
            BenchRow.objects.create(name="floor", number=number)
            futures.append(pool.submit(int))
        wait(futures)
        finished = time.perf_counter()
    return {"jobs": count, "jobs_per_s": count / (finished - started)}


def row_cost(count: int) -> dict[str, float]:
    """CPU (this thread's) a row costs to write and commit, one at a time: a job's row
    through slowjobs' prepared INSERT against the floor's ORM ``create()``."""
    import uuid

    from django.db import connections
    from django.utils import timezone

    from bench.models import BenchRow
    from bench.tasks import noop
    from slowjobs.jobs import transitions
    from slowjobs.jobs.sql import statements_for

    connection = connections["default"]
    statements = statements_for(connection)

    def job_row() -> None:
        now = timezone.now()
        row = transitions.enqueued(
            ticket=uuid.uuid4(), task=noop, backend="default", args=[], kwargs={},
            enqueued_at=now, submitter=(None, "", ""), cost=1, input_file="",
            input_size=0,
        )  # fmt: skip
        row["owner"], row["heartbeat_at"] = "bench", now
        with connection.cursor() as cursor:
            statements.insert(cursor, [row])

    def orm_row() -> None:
        BenchRow.objects.create(name="bench", number=42)

    figures = {}
    for name, write in (("job_row_us", job_row), ("orm_create_us", orm_row)):
        started = time.thread_time()
        for _ in range(count):
            write()
        figures[name] = (time.thread_time() - started) / count * 1e6
    return figures


def concurrent_drain(count: int, threads: int = 8) -> dict[str, float]:
    """No-op jobs enqueued by several threads at once, as a web server's do."""
    from django.db import connections
    from django.tasks.signals import task_finished

    from bench.tasks import noop

    done = threading.Semaphore(0)

    def on_finished(**kwargs: object) -> None:
        done.release()

    def submit(share: int) -> None:
        try:
            for _ in range(share):
                noop.enqueue()
        finally:
            connections.close_all()

    task_finished.connect(on_finished)
    started = time.perf_counter()
    workers = [
        threading.Thread(target=submit, args=(count // threads,))
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for _ in range(count // threads * threads):
        done.acquire()
    finished = time.perf_counter()
    task_finished.disconnect(on_finished)
    return {
        "jobs": count,
        "threads": threads,
        "jobs_per_s": count / (finished - started),
    }


def main() -> None:
    import django

    django.setup()
    from slowjobs.engine.executor.registry import shutdown_executor

    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    latency_samples = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    result = {
        "drain": drain_rate(jobs),
        "floor_drain": floor_drain(jobs),
        "drain_8_threads": concurrent_drain(jobs),
        "latency": start_latency(latency_samples),
        "floor_latency": floor_latency(latency_samples),
        "row_cost": row_cost(jobs),
    }
    shutdown_executor(wait=True, timeout=60)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
