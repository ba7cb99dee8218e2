"""Nothing stalls: the servers finish a crashed or restarted server's jobs by
themselves, at once, with the library's defaults and no resume_jobs.

Real gunicorn with two workers, the demo's report jobs (every CSV row
exactly once), memcached on and off; the PostgreSQL-only cases need two
hosts' worth of servers on one database (advisory locks) or a stopped
process that holds no SQLite write lock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from slowjobs import conf
from slowjobs.lifecycle import processlock
from slowjobs.lifecycle.identity import machine, runs_here, start_ticks
from slowjobs.lifecycle.liveness import gone_owners, owner_is_alive
from slowjobs.lifecycle.orphans import RESUMING_MESSAGE
from slowjobs.models import Job, JobStatus, WorkerProcess
from slowjobs.progress import get_store
from slowjobs.progress.base import live_key
from slowjobs.web.status import INTERRUPTED_MESSAGE, row_payload
from tests import recovery_scenarios as scenarios
from tests.conftest import kill_group, start_gunicorn, stop
from tests.figures import record

pytestmark = pytest.mark.django_db(transaction=True)

POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
postgres_only = pytest.mark.skipif(
    not POSTGRES, reason="needs PostgreSQL (the PostgreSQL run covers it)"
)


@pytest.fixture
def settled_postgres() -> None:
    """Lock proofs wait one lease after a server start (slowjobs.processlock);
    an earlier test may have restarted PostgreSQL."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT EXTRACT(EPOCH FROM now() - pg_postmaster_start_time())")
        (up,) = cursor.fetchone()
    time.sleep(max(0.0, conf.get().lease + 1 - float(up)))


@pytest.fixture(params=["memcached", "embedded store"])
def store(request: pytest.FixtureRequest) -> dict[str, str]:
    """The servers' live store: a real memcached, or each process's own."""
    if request.param == "memcached":
        server = request.getfixturevalue("memcached")
        return {"SLOWJOBS_MEMCACHED": server.location}
    return {"SLOWJOBS_MEMCACHED": ""}


def process_row(owner: str, pid: int, pid_start: int | None, **fields: Any) -> None:
    """A WorkerProcess row (of this machine, unless ``fields`` say otherwise)."""
    now = timezone.now()
    values = {"machine": machine(), "last_seen": now, **fields}
    WorkerProcess.objects.create(
        id=owner, host="here", pid=pid, pid_start=pid_start, started_at=now,
        mode="pool", **values,
    )  # fmt: skip


def running_job_of(owner: str, rows: int = 20, **fields: Any) -> Job:
    """A report job that ``owner`` started, as its row says."""
    now = timezone.now()
    values = {"started_at": now, "heartbeat_at": now, **fields}
    return Job.objects.create(
        task_path="project.tasks.generate_report",
        kwargs={"rows": rows, "row_ms": 1},
        status=JobStatus.RUNNING,
        attempts=1,
        worker_ids=[owner],
        owner=owner,
        enqueued_at=now,
        **values,
    )


def report(figures: scenarios.Figures, store: dict[str, str]) -> None:
    record(
        f"self-recovery: {figures.scenario}",
        store="memcached" if store.get("SLOWJOBS_MEMCACHED") else "embedded",
        interrupted=figures.interrupted,
        first_resume_s=round(figures.first_resume, 2),
        last_resume_s=round(figures.last_resume, 2),
        last_resume_after_replacement_s=round(figures.after_replacement, 2),
        last_finish_s=round(figures.last_finish, 2),
        remaining_work_s=round(figures.remaining_work, 2),
    )


@pytest.mark.parametrize(
    ("scenario", "all_interrupted"),
    [
        # The master lives and respawns them; the new workers prove the dead
        # ones gone by their pids, with no lease to wait for.
        pytest.param(scenarios.workers_killed, True, id="every-worker-sigkilled"),
        # Restarted at once as plain gunicorn: no hooks, requests start it.
        pytest.param(
            scenarios.group_killed_and_restarted,
            True,
            id="whole-server-sigkilled-restarted-without-hooks",
        ),
        # A deploy: the drain hands jobs back, the new server takes them.
        pytest.param(
            scenarios.terminated_and_restarted, False, id="deploy-sigterm-defaults"
        ),
    ],
)
def test_the_servers_finish_a_broken_servers_jobs_by_themselves(
    tmp_path: Path,
    store: dict[str, str],
    scenario: Callable[..., scenarios.Figures],
    all_interrupted: bool,
):
    figures = scenario(tmp_path, **store)
    report(figures, store)
    if all_interrupted:
        # Every job still under way was cut off, and most were.
        assert figures.interrupted == figures.unfinished_at_break, figures
        assert figures.interrupted >= scenarios.JOBS // 2, figures
    else:
        assert figures.interrupted >= 1, figures
    # Far below the 30 s lease: nothing waited for one.
    assert figures.last_resume < 10, figures


@postgres_only
def test_another_host_takes_a_killed_hosts_jobs_through_its_advisory_locks(
    tmp_path: Path, memcached: Any, settled_postgres: None
):
    store = {"SLOWJOBS_MEMCACHED": memcached.location}
    figures = scenarios.other_host_killed(tmp_path, **store)
    report(figures, store)
    assert figures.interrupted == figures.unfinished_at_break, figures
    assert figures.interrupted >= scenarios.JOBS // 2, figures
    # The lease is 30 s: only the locks can tell so soon.
    assert figures.last_resume < 10, figures


@postgres_only
def test_a_stopped_server_loses_its_jobs_by_the_lease_and_writes_nothing_after(
    tmp_path: Path, memcached: Any
):
    lease = {"SLOWJOBS_LEASE": "3", "SLOWJOBS_HEARTBEAT_INTERVAL": "1"}
    env = {"SLOWJOBS_MEMCACHED": memcached.location, **lease}
    env.update(scenarios.ROOM)
    alpha = start_gunicorn(tmp_path, workers=2, SLOWJOBS_HOST="alpha", **env)
    beta = start_gunicorn(tmp_path, workers=2, SLOWJOBS_HOST="beta", **env)
    try:
        tickets = scenarios.jobs_under_way(alpha.url, 6)
        os.killpg(alpha.process.pid, signal.SIGSTOP)
        stopped_at = time.time()
        saved = scenarios.checkpoints(set(tickets))
        stopped_owners = set(
            Job.objects.filter(pk__in=tickets).values_list("owner", flat=True)
        )
        scenarios.wait_until(
            lambda: (
                not set(
                    Job.objects.filter(pk__in=tickets).values_list("owner", flat=True)
                )
                & stopped_owners
            ),
            15,
            "the stopped server kept its jobs past the lease",
        )
        time.sleep(1)  # the new attempts write progress and checkpoints
        os.killpg(alpha.process.pid, signal.SIGCONT)
        # While the woken server goes on: no row goes back to it, and the
        # live records are the new attempts' (never the old one's, written
        # over them).
        store = get_store()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            owners = set(
                Job.objects.filter(pk__in=tickets).values_list("owner", flat=True)
            )
            assert not owners & stopped_owners, owners
            for ticket in tickets:
                record = store.get(live_key(ticket))
                if record is not None:
                    assert record["attempts"] == 2, record
                    assert record["owner"] not in stopped_owners, record
            time.sleep(0.05)
        scenarios.wait_until(
            lambda: scenarios.statuses(tickets)["succeeded"] == len(tickets),
            scenarios.FINISH_WITHIN,
            f"not every job finished: {scenarios.statuses(tickets)}",
        )
        figures = scenarios.figures_for(
            "server SIGSTOPped past a 3 s lease",
            tickets,
            stopped_at,
            set(tickets),
            saved,
        )
        figures.replaced_at = stopped_at  # the other server was up all along
        report(figures, env)
    finally:
        for server in (alpha, beta):
            if server.process.poll() is None:
                os.killpg(server.process.pid, signal.SIGCONT)
                stop(server.process)
    scenarios.assert_exactly_once(tickets)
    for job in Job.objects.filter(pk__in=tickets):
        assert job.owner.startswith("beta:"), job.owner
        assert job.attempts == 2
        assert job.history[0]["outcome"] == "lost"
    # The woken server knew it had lost them, and stopped them.
    assert "another process took the job over" in alpha.log.read_text()


def test_an_owner_row_naming_an_unrelated_live_pid_is_not_taken_as_alive(
    tmp_path: Path,
):
    unrelated = subprocess.Popen(["sleep", "60"])
    try:
        ticks = start_ticks(unrelated.pid)
        assert ticks is not None
        impostor = f"here:{unrelated.pid}:1.000"
        living = "living:1:1.000"
        process_row(impostor, unrelated.pid, ticks - 1)
        # A control: the same live pid with its real start time is alive.
        process_row(living, unrelated.pid, ticks)
        assert gone_owners([impostor, living]) == {impostor}
        jobs = [running_job_of(owner) for owner in (impostor, living)]
        server = start_gunicorn(tmp_path, workers=2)
        try:
            scenarios.wait_until(
                lambda: Job.objects.get(pk=jobs[0].pk).status == JobStatus.SUCCEEDED,
                15,
                "the impostor's job was not taken (its pid was believed)",
            )
            time.sleep(1)
            assert Job.objects.get(pk=jobs[1].pk).owner == living
        finally:
            stop(server.process)
    finally:
        unrelated.kill()
        unrelated.wait()


def test_a_dead_owners_running_job_reads_as_interrupted_not_running(tmp_path: Path):
    server = start_gunicorn(tmp_path, workers=1)
    try:
        (ticket,) = scenarios.submit_reports(server.url, 1)
        scenarios.wait_until(
            scenarios.all_running([ticket], 1), 20, "the job did not start"
        )
        job = Job.objects.get(pk=ticket)
        assert owner_is_alive(job.owner, job.heartbeat_at)
        assert row_payload(job)["status"] == JobStatus.RUNNING
        kill_group(server.process)
    finally:
        stop(server.process)
    job = Job.objects.get(pk=ticket)
    assert job.status == JobStatus.RUNNING  # the row cannot know it yet
    # A SIGKILLed process takes a moment to leave the process table.
    pid = int(job.owner.split(":")[1])
    scenarios.wait_until(
        lambda: start_ticks(pid) is None, 10, "the killed worker did not exit"
    )
    assert not owner_is_alive(job.owner, job.heartbeat_at)
    payload = row_payload(job)
    assert payload["status"] == JobStatus.QUEUED
    assert payload["progress"]["message"] == INTERRUPTED_MESSAGE
    # Once claimed, it says so until its next attempt reports.
    from slowjobs.lifecycle.orphans import claim, orphaned

    gone = gone_owners([job.owner])
    assert gone == {job.owner}
    from functools import partial

    claimed = claim("claimer:1:1", candidates=partial(orphaned, gone=gone))
    assert [j.pk for j in claimed.runnable] == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert job.progress_message == RESUMING_MESSAGE


def test_resume_jobs_dry_run_names_silent_owners_and_takes_dead_ones_at_once(
    tmp_path: Path,
):
    from tests.conftest import run_command

    heard = timezone.now() - timedelta(seconds=18)
    silent = "elsewhere:7:1.000"
    # Another machine's process, not heard from for 18 s of its 30 s lease.
    process_row(silent, 7, None, machine="elsewhere", last_seen=heard)
    dead = subprocess.Popen(["true"])
    dead.wait()
    gone = f"here:{dead.pid}:1.000"
    process_row(gone, dead.pid, 12345)
    rows = {
        owner: running_job_of(owner, rows=5, heartbeat_at=heard)
        for owner in (silent, gone)
    }
    listed = run_command("resume_jobs", "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert f"{rows[gone].pk}" in listed.stdout
    assert "process gone" in listed.stdout
    assert "1 job(s) would be resumed." in listed.stdout
    assert "1 job(s) of silent processes" in listed.stdout
    assert "lease ends in 1" in listed.stdout, listed.stdout  # about 12 s
    resumed = run_command("resume_jobs")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Resumed 1: 1 succeeded" in resumed.stdout, resumed.stdout
    assert Job.objects.get(pk=rows[silent].pk).owner == silent


def test_a_pid_is_alive_only_with_its_own_start_time():
    me = os.getpid()
    ticks = start_ticks(me)
    assert ticks is not None
    assert runs_here(me, ticks)
    assert not runs_here(me, ticks + 1)  # a reused pid
    assert not runs_here(me, None)
    finished = subprocess.Popen(["true"])
    finished.wait()
    assert start_ticks(finished.pid) is None


@postgres_only
def test_a_process_lock_is_free_once_its_session_ends(settled_postgres: None):
    lock = processlock.ProcessLock("locker:1:1.000")
    assert lock.hold()
    try:
        assert processlock.provably_gone(["locker:1:1.000"]) == set()
        assert processlock.provably_gone(["never-locked:2:2.000"]) == {
            "never-locked:2:2.000"
        }
        assert lock.hold()  # still held: its connection answers
    finally:
        lock.release()
    assert processlock.provably_gone(["locker:1:1.000"]) == {"locker:1:1.000"}


def test_runserver_takes_a_dead_processes_jobs_from_its_first_request(tmp_path: Path):
    """Not only gunicorn: Django's own server recovers too (no hooks at all)."""
    import sys

    from tests.conftest import ROOT, child_env, track
    from tests.services import free_port, wait_for_port

    dead = subprocess.Popen(["true"])
    dead.wait()
    owner = f"here:{dead.pid}:1.000"
    process_row(owner, dead.pid, 1)
    job = running_job_of(owner)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=child_env(),
        stdout=(tmp_path / "runserver.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    track(server)
    try:
        wait_for_port(port, 30)
        time.sleep(1)
        # Listening, but no request yet: nothing has started.
        assert Job.objects.get(pk=job.pk).owner == owner
        urllib_get(f"http://127.0.0.1:{port}/")
        scenarios.wait_until(
            lambda: Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED,
            15,
            "runserver did not take the job",
        )
    finally:
        stop(server)
    scenarios.assert_exactly_once_rows(str(job.pk), 20)


def urllib_get(url: str) -> int:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return int(response.status)


def test_a_command_that_enqueues_runs_its_job_but_adopts_nothing(tmp_path: Path):
    """Only serving processes and run_jobs adopt: a short-lived command that
    took other processes' jobs would only hand them back as it exits."""
    from tests.conftest import run_command

    dead = subprocess.Popen(["true"])
    dead.wait()
    owner = f"here:{dead.pid}:1.000"
    process_row(owner, dead.pid, 1)
    orphan = running_job_of(owner)
    enqueued = run_command(
        "shell",
        "-c",
        "from project.tasks import noop; import time;"
        "result = noop.enqueue(); time.sleep(1.5);"  # three adoption looks
        "result.refresh(); print(result.status)",
    )
    assert enqueued.returncode == 0, enqueued.stderr
    assert enqueued.stdout.strip().splitlines()[-1] == "SUCCESSFUL"
    assert Job.objects.get(pk=orphan.pk).owner == owner
