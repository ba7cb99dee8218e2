"""``Prefer: wait`` under gunicorn: the job's own process wakes the waiting
request as the outcome is committed; a job that another process runs (an
overflow taken by ``run_jobs``) is seen through memcached, or without it
through its row.  Every job ends by itself, waited for or not."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from slowjobs.models import Job
from tests.conftest import start_gunicorn, stop
from tests.http_client import HttpClient
from tests.test_run_jobs import OVERFLOWING, pid_of, start_worker, wait_until_up

pytestmark = pytest.mark.django_db(transaction=True)

FINISHED = {"succeeded", "failed", "cancelled"}


def submit(client: HttpClient, rows: int, row_ms: int, prefer: str = "") -> Any:
    headers = {**client.api_headers(), **({"Prefer": prefer} if prefer else {})}
    began = time.monotonic()
    reply = client.post(
        "/demo/report/", {"rows": rows, "row_ms": row_ms}, headers=headers
    )
    return reply, time.monotonic() - began


def test_the_owning_process_answers_a_quick_job_at_once_and_a_slow_one_202(
    collected_static, tmp_path: Path, memcached
):
    server = start_gunicorn(tmp_path, SLOWJOBS_MEMCACHED=memcached.location)
    try:
        client = HttpClient(server.url)
        quick, took = submit(client, 10, 20, "wait=10")  # a 200 ms job
        assert quick.status == 200, quick.body
        assert quick.headers["Preference-Applied"] == "wait=10"
        body = quick.json()
        assert body["status"] == "succeeded"
        assert body["result"]["rows"] == 10
        assert took < 5
        # The job ran where it was submitted: the wait was woken locally.
        job = Job.objects.get(pk=body["ticket"])
        assert job.finished_at is not None

        slow, took = submit(client, 20, 100, "wait=1")  # a 2 s job
        assert slow.status == 202, slow.body
        assert slow.headers["Preference-Applied"] == "wait=1"
        assert 0.9 <= took < 4
        done = client.wait_for_status(slow.json()["status_url"], FINISHED, 30)
        assert done["status"] == "succeeded"
    finally:
        stop(server.process)


@pytest.mark.parametrize("store", ["memcached", "row"])
def test_a_job_run_by_another_process_is_waited_for(
    collected_static, tmp_path: Path, request: pytest.FixtureRequest, store: str
):
    shared = {}
    if store == "memcached":
        shared["SLOWJOBS_MEMCACHED"] = request.getfixturevalue("memcached").location
    server = start_gunicorn(tmp_path, workers=1, **OVERFLOWING, **shared)
    worker = start_worker(tmp_path, "worker", **shared)
    try:
        wait_until_up(worker)
        client = HttpClient(server.url)
        # The server's one job thread is taken: the next job overflows.
        busy, _ = submit(client, 40, 100)
        assert busy.status == 202
        deadline = time.monotonic() + 20
        while Job.objects.get(pk=busy.json()["ticket"]).status != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        quick, took = submit(client, 4, 50, "wait=20")
        assert quick.status == 200, quick.body
        body = quick.json()
        assert body["status"] == "succeeded"
        assert pid_of(Job.objects.get(pk=body["ticket"]).owner) == worker.pid
        # From memcached within a few looks; from the row within a second or so.
        assert took < (5 if store == "memcached" else 8)
        done = client.wait_for_status(busy.json()["status_url"], FINISHED, 60)
        assert done["status"] == "succeeded"
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        stop(server.process)
    assert worker.wait(30) == 0


def test_a_flood_of_waits_leaves_pages_served(collected_static, tmp_path: Path):
    """Six clients (six addresses) each wait for a 4 s job; a worker of 4
    threads lets 2 of them wait (the hooks say its threads), answers the
    others 202 at once, and serves pages meanwhile."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.figures import record

    server = start_gunicorn(tmp_path, workers=1, WEB_THREADS="4", SLOWJOBS_WORKERS="8")
    try:

        def wait_for_a_slow_job(index: int) -> Any:
            client = HttpClient(server.url, source=f"127.0.2.{index + 1}")
            reply, took = submit(client, 40, 100, "wait=3")
            return client, reply, took

        with ThreadPoolExecutor(6) as pool:
            waits = [pool.submit(wait_for_a_slow_job, index) for index in range(6)]
            time.sleep(1.0)  # the waits are held now
            pages = []
            for _ in range(5):
                began = time.monotonic()
                assert HttpClient(server.url).get("/").status == 200
                pages.append(time.monotonic() - began)
            answers = [future.result() for future in waits]
        waited = [a for a in answers if "Preference-Applied" in a[1].headers]
        at_once = [a for a in answers if "Preference-Applied" not in a[1].headers]
        assert len(waited) == 2, [a[1].headers for a in answers]
        assert all(a[1].status == 202 and a[2] >= 2.8 for a in waited)
        assert len(at_once) == 4
        assert all(a[1].status == 202 and a[2] < 2.5 for a in at_once)
        # Pages were served while both places were held (each wait, 3 s).
        assert max(pages) < 1.5, pages
        record(
            "Prefer: wait flood (1 worker, 4 threads, 6 waiting clients)",
            waited=len(waited),
            answered_at_once=len(at_once),
            page_max_ms=round(max(pages) * 1000, 1),
        )
        for client, reply, _ in answers:  # every job ends by itself
            done = client.wait_for_status(reply.json()["status_url"], FINISHED, 60)
            assert done["status"] == "succeeded"
    finally:
        stop(server.process)
