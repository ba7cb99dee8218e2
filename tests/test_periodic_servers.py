"""Periodic jobs kept by real servers: exactly once per slot, none missed.

Every process that looks after jobs keeps the clock; nobody is elected.
gunicorn workers (wired only with the documented hooks) and, on
PostgreSQL, a ``run_jobs`` worker run a 1-second schedule while one worker
is SIGKILLed and respawned: every slot of the window has exactly one job,
each starts at once, and every one of them finishes by itself.  A DST
change is simulated through a time zone of the test's own whose clocks
jump forward a few seconds from now.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings

from slowjobs.models import Job, JobStatus, Schedule, WorkerProcess
from tests.conftest import ROOT, child_env, start_gunicorn, stop, track
from tests.figures import record
from tests.recovery_scenarios import wait_for_workers, wait_until, worker_pids

pytestmark = pytest.mark.django_db(transaction=True)

POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
FAST_LEASE = {"SLOWJOBS_HEARTBEAT_INTERVAL": "0.5", "SLOWJOBS_LEASE": "2"}
TICK = {"tick": {"task": "tests.tasks.noop", "every": 1}}
WINDOW = 20.0
KILL_AT = 8.0


def start_run_jobs(tmp_path: Path, name: str, **env: str) -> subprocess.Popen[bytes]:
    log = tmp_path / f"{name}.log"
    return track(
        subprocess.Popen(
            [sys.executable, "manage.py", "run_jobs", "--workers", "2"],
            cwd=ROOT,
            env=child_env(**env),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
    )


def wait_until_alive(count: int) -> None:
    wait_until(
        lambda: WorkerProcess.objects.alive().count() >= count,
        60,
        f"{count} job runners did not come up",
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def test_every_slot_runs_exactly_once_while_a_worker_is_killed(
    tmp_path, collected_static
):
    workers = 3 if POSTGRES else 2
    env = {**FAST_LEASE, "SLOWJOBS_PERIODIC": json.dumps(TICK)}
    server = start_gunicorn(tmp_path, workers=workers, **env)
    extra = [start_run_jobs(tmp_path, "run_jobs", **env)] if POSTGRES else []
    try:
        wait_for_workers(server, workers)
        wait_until_alive(workers + len(extra))
        began = datetime.now(UTC)
        time.sleep(KILL_AT)
        victim = worker_pids(server)[0]
        os.kill(victim, signal.SIGKILL)
        wait_for_workers(server, workers, old={victim})
        time.sleep(max(0.0, WINDOW - (datetime.now(UTC) - began).total_seconds()))
        ended = datetime.now(UTC)
        first = began.replace(microsecond=0) + timedelta(seconds=1)
        last = ended.replace(microsecond=0) - timedelta(seconds=1)
        expected = {
            first + timedelta(seconds=s)
            for s in range(int((last - first).total_seconds()) + 1)
        }
        window = Job.objects.filter(
            schedule="tick", scheduled_for__gte=first, scheduled_for__lte=last
        )
        wait_until(
            lambda: (
                window.exclude(status=JobStatus.SUCCEEDED).count() == 0
                and window.count() >= len(expected)
            ),
            30,
            "the slots' jobs did not all succeed by themselves",
        )
        jobs = list(window.values("scheduled_for", "started_at", "worker_ids"))
    finally:
        for process in extra:
            stop(process)
        stop(server.process)
    slots = [job["scheduled_for"] for job in jobs]
    duplicated = len(slots) - len(set(slots))
    missed = expected - set(slots)
    delays = [
        (job["started_at"] - job["scheduled_for"]).total_seconds() * 1000
        for job in jobs
    ]
    runners = {worker for job in jobs for worker in job["worker_ids"]}
    record(
        f"periodic, 1 s schedule, {workers} gunicorn workers"
        + (" + run_jobs" if extra else "")
        + f", one SIGKILLed ({'PostgreSQL' if POSTGRES else 'SQLite'})",
        expected=len(expected),
        enqueued=len(slots),
        duplicated=duplicated,
        missed=len(missed),
        slot_to_start_p50_ms=round(statistics.median(delays), 1),
        slot_to_start_p99_ms=round(percentile(delays, 0.99), 1),
        processes_that_ran_slots=len(runners),
    )
    assert missed == set(), f"slots without a job: {sorted(missed)}"
    assert duplicated == 0
    assert set(slots) == expected
    # No leader: the slots ran wherever a clock got there first.
    assert len(runners) >= 2


ZONE_SOURCE = """\
Zone Test/Shift 1:00 - STD {until}
                2:00 - DST
"""


def shifting_zone(tmp_path: Path, at: datetime) -> Path:
    """A time zone whose clocks jump from UTC+1 to UTC+2 at ``at`` (UTC)."""
    source = tmp_path / "shift.zi"
    until = at.strftime("%Y %b %d %H:%M:%Su")
    source.write_text(ZONE_SOURCE.format(until=until))
    zones = tmp_path / "zones"
    zic = "/usr/sbin/zic"
    if not os.path.exists(zic):
        pytest.skip("zic (libc-bin) is needed to write a time zone")
    subprocess.run([zic, "-d", str(zones), str(source)], check=True)
    return zones


def test_a_slot_in_the_hour_a_dst_change_skips_runs_once_at_the_change(tmp_path):
    now = datetime.now(UTC)
    # At least 25 s away: the worker is up well before the change.
    change = (now + timedelta(seconds=85)).replace(second=0, microsecond=0)
    zones = shifting_zone(tmp_path, change)
    # 10 local minutes into the hour that the change skips: it never
    # happens today, so Debian's cron (and cronsim) run it at the change.
    skipped = change + timedelta(hours=1, minutes=10)
    never = change + timedelta(hours=1, minutes=50)
    schedules = {
        "skipped": {
            "task": "tests.tasks.noop",
            "cron": f"{skipped.minute} {skipped.hour} * * *",
            "timezone": "Test/Shift",
        },
        "also-skipped": {
            "task": "tests.tasks.noop",
            "cron": f"{never.minute} {never.hour} * * *",
            "timezone": "Test/Shift",
        },
    }
    # Declared before today (a late first look must not think them new).
    for name in schedules:
        Schedule.objects.create(name=name, last_slot=now, created_at=now)
    worker = start_run_jobs(
        tmp_path,
        "run_jobs",
        PYTHONTZPATH=f"{zones}:/usr/share/zoneinfo",
        SLOWJOBS_PERIODIC=json.dumps(schedules),
        **FAST_LEASE,
    )
    try:
        wait_until_alive(1)
        wait_until(
            lambda: (
                Job.objects.filter(
                    schedule__in=schedules, status=JobStatus.SUCCEEDED
                ).count()
                >= 2
            ),
            120,
            "the skipped slots did not run after the change",
        )
        time.sleep(2)  # nothing more comes of them
        jobs = list(Job.objects.filter(schedule__in=schedules).values_list(
            "schedule", "scheduled_for", "started_at"
        ))  # fmt: skip
    finally:
        stop(worker)
    assert sorted((name, slot) for name, slot, _ in jobs) == [
        ("also-skipped", change),
        ("skipped", change),
    ]
    for _, slot, started in jobs:
        assert timedelta(0) <= started - slot < timedelta(seconds=5)
