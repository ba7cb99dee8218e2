"""Scale-out: a server that overflows into the database, and run_jobs workers.

The server (gunicorn, two processes, one job thread each and no queue)
leaves what it cannot start queued in the database; two ``run_jobs``
worker processes take those jobs (SKIP LOCKED), and when one worker is
killed the other adopts its jobs at once (its pid is gone).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from slowjobs.models import Job, JobStatus, WorkerProcess
from tests.conftest import ROOT, child_env, start_gunicorn, stop, track
from tests.figures import record
from tests.http_client import HttpClient

pytestmark = pytest.mark.django_db(transaction=True)

FAST_LEASE = {"SLOWJOBS_HEARTBEAT_INTERVAL": "0.5", "SLOWJOBS_LEASE": "2"}
FINISHED = {"succeeded", "failed", "cancelled"}


def start_worker(tmp_path: Path, name: str, **env: str) -> subprocess.Popen[bytes]:
    log = tmp_path / f"{name}.log"
    return track(
        subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "run_jobs",
                "--workers",
                "2",
                "--poll",
                "0.2",
            ],
            cwd=ROOT,
            env=child_env(**FAST_LEASE, **env),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
    )


def wait_until_up(*workers: subprocess.Popen[bytes]) -> None:
    """Each worker has said it is alive (its first heartbeat): started later,
    on a busy machine, it would find the server's job threads had taken
    every overflowed job already."""
    deadline = time.monotonic() + 30
    pids = {worker.pid for worker in workers}
    up = WorkerProcess.objects.filter(pid__in=pids).values_list("pid", flat=True)
    while set(up.all()) != pids:
        assert all(worker.poll() is None for worker in workers), "a worker exited"
        assert time.monotonic() < deadline, "the run_jobs workers did not start"
        time.sleep(0.05)


def submit(url: str, rows: int, row_ms: int) -> tuple[HttpClient, str]:
    client = HttpClient(url)
    reply = client.post(
        "/demo/report/",
        {"rows": rows, "row_ms": row_ms},
        headers={"Accept": "application/json"},
    )
    assert reply.status == 202, (reply.status, reply.body)
    return client, reply.json()["status_url"]


def pid_of(owner: str) -> int:
    return int(owner.split(":")[1])


# One job thread, no queue, no wait for room: the rest overflow at once.
OVERFLOWING = {
    "SLOWJOBS_OVERFLOW": "true",
    "SLOWJOBS_WORKERS": "1",
    "SLOWJOBS_QUEUE_SIZE": "0",
    "SLOWJOBS_SUBMIT_TIMEOUT": "0",
}


def test_overflow_goes_to_run_jobs_workers_which_adopt_each_other(
    collected_static, tmp_path
):
    if connection.vendor != "postgresql":
        pytest.skip("two claiming workers: the PostgreSQL run (SKIP LOCKED)")
    server = start_gunicorn(tmp_path, **OVERFLOWING, **FAST_LEASE)
    first, second = start_worker(tmp_path, "a"), start_worker(tmp_path, "b")
    try:
        wait_until_up(first, second)
        # More than the server's two job threads: the rest overflow.
        jobs = [submit(server.url, rows=4, row_ms=100) for _ in range(16)]
        for client, status_url in jobs:
            body = client.wait_for_status(status_url, FINISHED, timeout=60)
            assert body["status"] == "succeeded", body
        ran_by = Counter(pid_of(j.owner) for j in Job.objects.all())
        assert ran_by[first.pid] >= 1, ran_by
        assert ran_by[second.pid] >= 1, ran_by

        # A worker dies holding jobs: the other one finishes them.
        Job.objects.all().delete()
        long_jobs = [submit(server.url, rows=30, row_ms=100) for _ in range(6)]
        deadline = time.monotonic() + 30
        while not Job.objects.filter(
            status=JobStatus.RUNNING, owner__contains=f":{first.pid}:"
        ).exists():
            assert time.monotonic() < deadline, "worker a never ran a job"
            time.sleep(0.05)
        held = list(
            Job.objects.filter(owner__contains=f":{first.pid}:").values_list(
                "pk", flat=True
            )
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed = time.monotonic()
        for client, status_url in long_jobs:
            body = client.wait_for_status(status_url, FINISHED, timeout=90)
            assert body["status"] == "succeeded", body
            lines = client.get(body["result_url"]).body.decode().splitlines()
            assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(1, 31))
        adopted = Job.objects.filter(pk__in=held)
        assert all(pid_of(job.owner) != first.pid for job in adopted)
        recovered = max(
            (job.finished_at.timestamp() for job in adopted), default=time.time()
        ) - (time.time() - (time.monotonic() - killed))
    finally:
        for worker in (first, second):
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        stop(server.process)
    assert second.wait(30) == 0, (tmp_path / "b.log").read_text()
    assert "Stopped after starting" in (tmp_path / "b.log").read_text()
    record(
        "scale-out: overflow to two run_jobs workers (postgresql)",
        jobs=16,
        ran_by_worker_a=ran_by[first.pid],
        ran_by_worker_b=ran_by[second.pid],
        ran_by_the_server=sum(ran_by.values()) - ran_by[first.pid] - ran_by[second.pid],
        jobs_held_by_the_killed_worker=len(held),
        seconds_from_kill_to_their_last_finish=round(recovered, 1),
    )


def test_run_jobs_runs_overflowed_jobs_and_stops_on_sigterm(collected_static, tmp_path):
    server = start_gunicorn(tmp_path, **OVERFLOWING)
    worker = start_worker(tmp_path, "only")
    try:
        wait_until_up(worker)
        jobs = [submit(server.url, rows=3, row_ms=100) for _ in range(6)]
        for client, status_url in jobs:
            body = client.wait_for_status(status_url, FINISHED, timeout=60)
            assert body["status"] == "succeeded", body
        assert any(pid_of(j.owner) == worker.pid for j in Job.objects.all())
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        stop(server.process)
    assert worker.wait(30) == 0, (tmp_path / "only.log").read_text()


def test_a_full_executor_overflows_into_the_database(settings, finished):
    from slowjobs.lifecycle.control import reopen, shutdown
    from tests import tasks

    settings.SLOWJOBS_WORKERS = 1
    settings.SLOWJOBS_QUEUE_SIZE = 0
    settings.SLOWJOBS_SUBMIT_TIMEOUT = 0
    settings.SLOWJOBS_OVERFLOW = True
    shutdown(timeout=5)  # a new executor, of the size above
    reopen()
    tasks.gate("overflow")
    blocker = tasks.wait_for_gate.enqueue("overflow")
    result = tasks.add.enqueue(1, 2)  # no room, and no ExecutorFull either
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.QUEUED
    assert job.owner == ""
    assert job.run_after == job.enqueued_at
    tasks.gate("overflow").set()
    finished.wait(blocker.id)
    finished.wait(result.id)  # this process took it once it had room
    assert Job.objects.get(pk=result.id).result == 3
