"""The benchmark's client: enqueues jobs into one system and times them.

Run by ``bench/compare.py`` in a fresh process per measurement, with
``BENCH_SYSTEM`` and the system's settings in the environment::

    python -m bench.peers.client SYSTEM MEASURE COUNT [BASE_URL]

and prints the figures as one JSON line.  slowjobs jobs are enqueued over
HTTP into the gunicorn workers (which run them), except for the one-at-a-time
latency, where this process is the slowjobs process; the peers' jobs are
enqueued from here with each system's own client API, as a web view would.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peers.settings")

POLL_SECONDS = 0.1
TIMEOUT_SECONDS = float(os.environ.get("BENCH_TIMEOUT", "600"))


def system() -> str:
    return os.environ.get("BENCH_SYSTEM", "slowjobs")


# -- enqueueing, each system its own way -------------------------------------


def enqueuer(kind: str) -> Callable[..., Any]:
    """A callable that enqueues one job of ``kind`` (noop, mark, sleep, progress)."""
    from . import tasks

    name = system()
    if name.startswith("celery"):
        noop = (
            tasks.celery_counted_noop
            if name.endswith("noresults")
            else tasks.celery_noop
        )
        celery_tasks = {
            "noop": noop,
            "mark": tasks.celery_mark,
            "sleep": tasks.celery_sleep,
            "progress": tasks.celery_progress,
        }
        return celery_tasks[kind].delay
    if name == "rq":
        import django_rq

        queue = django_rq.get_queue("default")
        rq_functions = {
            "noop": tasks.rq_noop,
            "mark": tasks.rq_mark,
            "sleep": tasks.rq_sleep,
            "progress": tasks.rq_progress,
        }
        return lambda *args: queue.enqueue(rq_functions[kind], *args)
    django_tasks = {
        "noop": tasks.noop,
        "mark": tasks.mark,
        "sleep": tasks.sleep_100ms,
        "progress": tasks.progress_slowjobs,
    }
    return django_tasks[kind].enqueue


# -- how many jobs each system has recorded as done ---------------------------


def done() -> tuple[int, float | None]:
    """Jobs recorded as succeeded, and the latest finish time (epoch seconds)."""
    from django.db.models import Max

    name = system()
    if name.startswith("slowjobs"):
        from slowjobs.models import Job

        found = Job.objects.filter(status="succeeded").aggregate(
            n=_count(), last=Max("finished_at")
        )
    elif name.endswith("noresults"):
        from . import work

        return int(work.client().get(work.DONE) or 0), None
    elif name.startswith("celery"):
        from django_celery_results.models import TaskResult

        found = TaskResult.objects.filter(status="SUCCESS").aggregate(
            n=_count(), last=Max("date_done")
        )
    elif name == "rq":
        import django_rq

        return django_rq.get_queue("default").finished_job_registry.count, None
    else:
        from django_tasks_db.models import DBTaskResult

        found = DBTaskResult.objects.filter(status="SUCCESSFUL").aggregate(
            n=_count(), last=Max("finished_at")
        )
    last: datetime | None = found["last"]
    return int(found["n"]), None if last is None else last.timestamp()


def _count() -> Any:
    from django.db.models import Count

    return Count("pk")


def pending() -> int:
    """Jobs enqueued and not yet done (queued, prefetched or running)."""
    name = system()
    if name.startswith("slowjobs"):
        from slowjobs.models import Job

        return Job.objects.unfinished().count()
    if name.startswith("celery"):
        from . import work

        redis = work.client()
        # Celery's Redis transport keeps prefetched messages in "unacked".
        return int(redis.llen("celery")) + int(redis.hlen("unacked"))
    if name == "rq":
        import django_rq

        queue = django_rq.get_queue("default")
        return int(queue.count) + int(queue.started_job_registry.count)
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(status__in=["READY", "RUNNING"]).count()


def settle() -> None:
    """Wait until the jobs of an earlier measure are all done: a backlog
    (the submit test leaves one with the slower systems) would otherwise be
    counted in the next measure."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while pending() and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    if pending():
        raise SystemExit(f"{pending()} jobs still pending after {TIMEOUT_SECONDS} s")


def wait_done(target: int) -> float:
    """Wait until ``target`` jobs are done; return when the last one finished."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        count, last = done()
        if count >= target:
            return last if last is not None else time.time()
        time.sleep(POLL_SECONDS)
    raise SystemExit(f"only {done()[0]} of {target} jobs were done in time")


# -- slowjobs over HTTP ----------------------------------------------------------


def post(url: str, data: dict[str, str]) -> int:
    body = urllib.parse.urlencode(data).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def post_all(url: str, data: dict[str, str], requests: int, threads: int) -> int:
    """POST ``requests`` times from ``threads`` clients, retrying each 503
    (the server's back-pressure) after a short pause; return the retries."""
    remaining = list(range(requests))
    lock = threading.Lock()
    retries = 0

    def client() -> None:
        nonlocal retries
        while True:
            with lock:
                if not remaining:
                    return
                remaining.pop()
            while (status := post(url, data)) == 503:
                with lock:
                    retries += 1
                time.sleep(0.02)
            if status != 202:
                raise SystemExit(f"POST {url} answered {status}")

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return retries


# -- the measurements -----------------------------------------------------------


def drain(count: int, base_url: str) -> dict[str, Any]:
    baseline = done()[0]
    started = time.time()
    retries = 0
    if system().startswith("slowjobs"):
        batch = 100
        retries = post_all(
            f"{base_url}/bench/enqueue-many", {"count": str(batch)}, count // batch, 4
        )
    else:
        enqueue = enqueuer("noop")
        if system() == "django-tasks-db":
            from django.db import transaction

            with transaction.atomic():
                for _ in range(count):
                    enqueue()
        else:
            for _ in range(count):
                enqueue()
    enqueued = time.time()
    finished = wait_done(baseline + count)
    seconds = finished - started
    return {
        "jobs": count,
        "seconds": seconds,
        "jobs_per_s": count / seconds,
        "enqueue_seconds": enqueued - started,
        "retries": retries,
    }


def makespan(count: int, base_url: str) -> dict[str, Any]:
    baseline = done()[0]
    started = time.time()
    retries = 0
    if system().startswith("slowjobs"):
        retries = post_all(f"{base_url}/bench/enqueue-sleep", {}, count, 8)
    else:
        enqueue = enqueuer("sleep")
        for _ in range(count):
            enqueue()
    finished = wait_done(baseline + count)
    ideal = count * 0.1 / 8
    figures = {
        "jobs": count,
        "seconds": finished - started,
        "ideal_seconds": ideal,
        "ratio": (finished - started) / ideal,
        "retries": retries,
    }
    if system().startswith("slowjobs"):
        figures["processes"] = jobs_by_process(started)
    return figures


def jobs_by_process(started: float) -> list[dict[str, Any]]:
    """How the jobs spread over the server's processes, and when each process
    started its first and finished its last (seconds from the first submit)."""
    from django.db.models import Count, Max, Min

    from slowjobs.models import Job

    rows = (
        Job.objects.filter(task_path__endswith="sleep_100ms")
        .values("owner")
        .annotate(jobs=Count("pk"), first=Min("started_at"), last=Max("finished_at"))
    )
    return [
        {
            "jobs": row["jobs"],
            "first_start": row["first"].timestamp() - started,
            "last_finish": row["last"].timestamp() - started,
        }
        for row in rows
    ]


def latency(count: int, base_url: str) -> dict[str, Any]:
    from . import work

    redis = work.client()
    redis.delete(work.STARTS)
    enqueue = enqueuer("mark")
    samples = []
    for number in range(count):
        before = time.time()
        enqueue(number)
        popped = redis.blpop([work.STARTS], timeout=min(30, TIMEOUT_SECONDS))
        if popped is None:
            raise SystemExit(f"job {number} never started")
        seen, started = json.loads(popped[1])
        if seen != number:
            raise SystemExit(f"job {seen} started when {number} was expected")
        samples.append((started - before) * 1000)
        time.sleep(0.005)  # one at a time, with the system idle in between
    samples.sort()
    return {
        "samples": count,
        "p50_ms": statistics.median(samples),
        "p99_ms": samples[min(count - 1, int(count * 0.99))],
    }


def progress(reports: int, base_url: str) -> dict[str, Any]:
    from . import work

    redis = work.client()
    redis.delete(work.PROGRESS)
    enqueuer("progress")(reports)
    popped = redis.blpop([work.PROGRESS], timeout=TIMEOUT_SECONDS)
    if popped is None:
        raise SystemExit("the progress job never reported")
    return {"reports": reports, "us_per_report": json.loads(popped[1])}


def settled(count: int, base_url: str) -> dict[str, Any]:
    """Nothing to measure: return once the earlier jobs are all done."""
    return {"pending": pending()}


MEASURES = {
    "settle": settled,
    "drain": drain,
    "makespan": makespan,
    "latency": latency,
    "progress": progress,
}


def main() -> None:
    import django

    django.setup()
    measure, count = sys.argv[1], int(sys.argv[2])
    base_url = sys.argv[3] if len(sys.argv) > 3 else ""
    settle()
    figures = MEASURES[measure](count, base_url)
    if system().startswith("slowjobs"):
        from slowjobs.engine.executor.registry import shutdown_executor

        shutdown_executor(wait=True, timeout=60)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
