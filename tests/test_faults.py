"""Faults under a real server: memcached killed, PostgreSQL restarted, disk full.

Each test runs jobs in gunicorn (two worker processes), breaks one part
while they run and while clients keep coming, and checks that every answer
is a clear one (never a 500), that every accepted job finishes, and how long
the service took to be whole again (printed as figures).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from pymemcache.client.base import Client as MemcacheClient

from slowjobs.models import Job as JobRow
from slowjobs.progress.base import live_key
from tests.conftest import run_command, start_gunicorn, stop
from tests.figures import record
from tests.http_client import HttpClient
from tests.services import Memcached, Postgres, require_binary, wait_for_port

pytestmark = pytest.mark.django_db(transaction=True)

FINISHED = {"succeeded", "failed", "cancelled"}


def figures(name: str, **values: Any) -> None:
    record(f"fault: {name} ({connection.vendor})", **values)


# Each visitor's own loopback address: one address's jobs would take turns.
_addresses = itertools.count(40)


class Job:
    """One visitor's job: its own session, so only it may look."""

    def __init__(self, url: str, rows: int, row_ms: int) -> None:
        self.client = HttpClient(url, source=f"127.0.0.{next(_addresses) % 250 + 2}")
        self.rows = rows
        reply = self.client.post(
            "/demo/report/", {"rows": rows, "row_ms": row_ms}, headers=JSON
        )
        assert reply.status == 202, reply.body
        self.status_url = reply.json()["status_url"]

    def status(self) -> dict[str, Any]:
        reply = self.client.get(self.status_url)
        assert reply.status == 200, reply.body
        return reply.json()

    def wait(self, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            reply = self.client.get(self.status_url)
            if reply.status == 200 and reply.json()["status"] in statuses:
                return reply.json()
            assert time.monotonic() < deadline, f"still {reply.status} {reply.body!r}"
            time.sleep(0.1)

    def check_csv(self, body: dict[str, Any]) -> None:
        assert body["status"] == "succeeded", body
        reply = self.client.get(body["result_url"])
        assert reply.status == 200, (reply.status, reply.body[:500], body)
        lines = reply.body.decode().splitlines()
        assert [int(line.split(",")[0]) for line in lines[1:]] == list(
            range(1, self.rows + 1)
        ), (lines[:3], body)


JSON = {"Accept": "application/json"}


class Prober(threading.Thread):
    """Keeps submitting small jobs and reading their status through a fault.

    Records every answer; keeps the jobs it got a ticket for, to check that
    each one finishes.  ``first_accepted_after(t)`` is when service resumed.
    """

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.answers: Counter[str] = Counter()
        self.accepted: list[tuple[float, HttpClient, str]] = []
        self.errors: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.1):
            client = HttpClient(self.url, source="127.0.0.254")
            try:
                reply = client.post(
                    "/demo/report/", {"rows": 2, "row_ms": 10}, headers=JSON
                )
            except OSError as exc:
                self.errors.append(repr(exc))
                continue
            self.answers[f"POST {reply.status}"] += 1
            if reply.status == 202:
                status_url = reply.json()["status_url"]
                self.accepted.append((time.monotonic(), client, status_url))
                read = client.get(status_url)
                self.answers[f"GET {read.status}"] += 1
            elif reply.status == 503:
                assert reply.headers.get("Retry-After", "").isdigit()

    def stop(self) -> None:
        self._halt.set()
        if self.ident is not None:  # started
            self.join(30)

    def first_accepted_after(self, moment: float) -> float | None:
        return next((t for t, _, _ in self.accepted if t >= moment), None)

    def all_finished(self, timeout: float = 60) -> Counter[str]:
        outcomes: Counter[str] = Counter()
        deadline = time.monotonic() + timeout
        for _, client, status_url in self.accepted:
            body = client.wait_for_status(
                status_url, FINISHED, timeout=max(deadline - time.monotonic(), 1)
            )
            outcomes[body["status"]] += 1
        return outcomes


def _running(jobs: list[Job], timeout: float = 30) -> None:
    for job in jobs:
        job.wait({"running"}, timeout)


# -- memcached ----------------------------------------------------------------


def test_memcached_killed_mid_run_loses_nothing_and_is_used_again(
    collected_static, tmp_path
):
    cache = Memcached(require_binary("memcached", "apt-get install memcached"))
    cache.start()
    server = start_gunicorn(
        tmp_path,
        SLOWJOBS_MEMCACHED=cache.location,
        SLOWJOBS_CANCEL_CHECK_INTERVAL="0.1",
    )
    prober = Prober(server.url)
    try:
        jobs = [Job(server.url, rows=40, row_ms=50) for _ in range(4)]
        doomed = Job(server.url, rows=400, row_ms=50)
        _running([*jobs, doomed])
        prober.start()
        assert cache.process is not None
        cache.process.send_signal(signal.SIGKILL)  # a crash, not a stop
        cache.process.wait(5)
        cache.process = None
        killed = time.monotonic()
        # Down: status from the database, cancel through it.
        assert doomed.status()["status"] == "running"
        cancel = doomed.client.post(
            doomed.status_url.replace("/status", "/cancel"),
            {},
            headers=doomed.client.api_headers(),
        )
        assert cancel.status == 202
        assert doomed.wait(FINISHED)["status"] == "cancelled"
        time.sleep(1)
        cache.start()  # same port, empty
        back = time.monotonic()
        # Up again: a running job's progress reaches it once more.
        watched = Job(server.url, rows=100, row_ms=50)
        ticket = watched.status_url.rstrip("/").split("/")[-2]
        reader = MemcacheClient(("127.0.0.1", cache.port), connect_timeout=1)
        deadline = time.monotonic() + 20
        while reader.get(live_key(ticket)) is None:
            assert time.monotonic() < deadline, "progress never reached memcached"
            time.sleep(0.05)
        recovered = time.monotonic() - back
        for job in jobs:
            job.check_csv(job.wait(FINISHED))
        watched.check_csv(watched.wait(FINISHED))
        prober.stop()
        outcomes = prober.all_finished()
    finally:
        try:
            prober.stop()
        finally:
            stop(server.process)
            cache.stop()
    answers = dict(prober.answers)
    figures(
        "memcached killed",
        down_seconds=round(back - killed, 1),
        probe_answers=answers,
        accepted=len(prober.accepted),
        lost=len(prober.accepted) - outcomes["succeeded"],
        seconds_to_progress_in_memcached_again=round(recovered, 2),
    )
    assert set(answers) <= {"POST 202", "GET 200"}, answers
    assert prober.errors == []
    assert outcomes == Counter({"succeeded": len(prober.accepted)})


# -- PostgreSQL ---------------------------------------------------------------


@pytest.fixture
def own_postgres() -> Any:
    """A PostgreSQL of this test's own, migrated: restarting it stops no other run."""
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL restart needs the PostgreSQL run")
    server = Postgres(Path(tempfile.mkdtemp(prefix="slowjobs-pg-")))
    try:
        server.start()
        migrated = run_command("migrate", "--noinput", DATABASE_URL=server.url())
        assert migrated.returncode == 0, migrated.stderr
        yield server
    finally:
        server.stop()


def test_postgresql_restarted_mid_run_loses_nothing(
    collected_static, tmp_path, own_postgres
):
    server = start_gunicorn(
        tmp_path, SLOWJOBS_WORKERS="4", DATABASE_URL=own_postgres.url()
    )
    prober = Prober(server.url)
    try:
        jobs = [Job(server.url, rows=50, row_ms=60) for _ in range(6)]
        _running(jobs)
        prober.start()
        time.sleep(0.5)
        began = time.monotonic()
        own_postgres.restart()
        back = time.monotonic()
        deadline = time.monotonic() + 60
        while prober.first_accepted_after(back) is None:
            assert time.monotonic() < deadline, "no job accepted after the restart"
            time.sleep(0.05)
        recovered = (prober.first_accepted_after(back) or back) - back
        for job in jobs:
            job.check_csv(job.wait(FINISHED, timeout=90))
        prober.stop()
        outcomes = prober.all_finished()
    finally:
        try:
            prober.stop()
        finally:
            stop(server.process)
    answers = dict(prober.answers)
    figures(
        "PostgreSQL restarted",
        restart_seconds=round(back - began, 1),
        probe_answers=answers,
        accepted=len(prober.accepted) + len(jobs),
        lost=len(prober.accepted) - outcomes["succeeded"],
        seconds_to_first_accept_after_restart=round(recovered, 2),
    )
    assert set(answers) <= {"POST 202", "POST 503", "GET 200", "GET 503"}, answers
    assert prober.errors == []
    assert outcomes == Counter({"succeeded": len(prober.accepted)})


# -- disk full ----------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 24 MiB file system of this test's own, for the server's files."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a small file system: {done.stderr}")
        pytest.skip(f"cannot mount a small file system (needs root): {done.stderr}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _write_until_full(path: Path) -> None:
    with path.open("wb", buffering=0) as out:
        while True:
            out.write(b"\0" * (1 << 20))


def _fill(path: Path) -> None:
    with pytest.raises(OSError, match="No space left on device"):
        _write_until_full(path)


def _used(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_an_upload_that_fills_the_disk_gets_507_and_the_service_goes_on(
    collected_static, tmp_path, small_disk
):
    server = start_gunicorn(tmp_path, MEDIA_ROOT=str(small_disk))
    try:
        wait_for_port(int(server.url.rsplit(":", 1)[1]))
        client = HttpClient(server.url)
        began = time.monotonic()
        too_big = client.upload("/demo/checksum/", "file", "big.bin", b"x" * (40 << 20))
        assert too_big.status == 507, too_big.body
        assert "no room" in too_big.json()["error"]
        assert too_big.headers.get("Retry-After", "").isdigit()
        # The partial upload is gone: the room is free again at once.
        assert _used(small_disk) < 1 << 20
        content = os.urandom(3 << 20)
        fits = client.upload("/demo/checksum/", "file", "fits.bin", content)
        recovered = time.monotonic() - began
        assert fits.status == 202, fits.body
        body = client.wait_for_status(fits.json()["status_url"], FINISHED)
        assert body["status"] == "succeeded", body
        assert body["result"]["sha256"] == hashlib.sha256(content).hexdigest()
        # A job whose result cannot be written fails with the reason.
        _fill(small_disk / "filler")
        report = client.post(
            "/demo/report/", {"rows": 100000, "row_ms": 0}, headers=client.api_headers()
        )
        assert report.status == 202, (report.status, report.body[:300])
        filled = client.wait_for_status(report.json()["status_url"], FINISHED)
    finally:
        stop(server.process)
    figures(
        "disk full",
        upload_answer=too_big.status,
        seconds_until_next_upload_accepted=round(recovered, 2),
        report_on_full_disk=filled["status"],
    )
    assert filled["status"] == "failed"
    # The owner reads a plain message; the row (for staff) has the OS's words.
    assert filled["error"].startswith("The job stopped because of a problem")
    assert (
        "No space left on device"
        in JobRow.objects.get(pk=report.json()["ticket"]).error_message
    )
