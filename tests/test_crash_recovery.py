"""Nothing lost: real servers stopped under load, and resume_jobs by hand.

The crashes, and the servers finishing the work by themselves, are in
``test_self_recovery.py``; here are the drain's timing and what
``resume_jobs`` does when a person runs it.
"""

from __future__ import annotations

import csv
import io
import signal
import time
from pathlib import Path

import pytest
from django.conf import settings

from slowjobs.jobs import files as jobfiles
from slowjobs.models import Job, JobStatus
from tests.conftest import start_gunicorn
from tests.recovery_scenarios import finished_by_a_new_server, submit_reports

pytestmark = pytest.mark.django_db(transaction=True)

# Short leases so that a killed server's jobs are orphans within seconds.
FAST_RECOVERY = {
    "SLOWJOBS_LEASE": "2",
    "SLOWJOBS_HEARTBEAT_INTERVAL": "0.5",
}


def counts(tickets: list[str]) -> dict[str, int]:
    found = dict.fromkeys(JobStatus.values, 0)
    for status in Job.objects.filter(pk__in=tickets).values_list("status", flat=True):
        found[status] += 1
    return found


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def assert_reports_complete(tickets: list[str], rows: int) -> None:
    for ticket in tickets:
        job = Job.objects.get(pk=ticket)
        assert job.status == JobStatus.SUCCEEDED, (
            ticket,
            job.status,
            job.error_message,
        )
        path = jobfiles.resolve(job.result_file)
        assert path is not None
        lines = list(csv.reader(io.StringIO(path.read_text())))
        assert lines[0] == ["row", "square"]
        numbers = [int(line[0]) for line in lines[1:]]
        assert numbers == list(range(1, rows + 1)), f"{ticket}: rows not exactly once"


def test_sigterm_drains_short_jobs_and_hands_back_long_ones(tmp_path: Path):
    env = {**FAST_RECOVERY, "SLOWJOBS_DRAIN_TIMEOUT": "2", "SLOWJOBS_WORKERS": "10"}
    server = start_gunicorn(tmp_path, workers=1, **env)
    short = submit_reports(server.url, 4, rows=50, row_ms=10)  # 0.5 s each
    long = submit_reports(server.url, 4, rows=700, row_ms=10)  # 7 s each
    wait_until(lambda: counts(long)["running"] == 4, 20, "long jobs did not start")
    time.sleep(1.2)  # a checkpoint each
    sent = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(30)
    drain = time.monotonic() - sent
    assert counts(short)["succeeded"] == 4
    handed_back = Job.objects.filter(pk__in=long)
    assert all(job.status == JobStatus.QUEUED for job in handed_back), [
        (job.status, job.owner, job.history, job.error_message) for job in handed_back
    ]
    assert all(job.owner == "" for job in handed_back)
    assert all(job.history[-1]["outcome"] == "interrupted" for job in handed_back)
    assert all(job.checkpoint for job in handed_back)
    assert 2 <= drain < 2 + 5, f"drain took {drain:.1f} s with a 2 s timeout"
    # Handed back: the next server takes them as it starts, no lease to wait for.
    finished_by_a_new_server(tmp_path, long, workers=1, **env)
    assert_reports_complete(short, 50)
    assert_reports_complete(long, 700)
    for job in Job.objects.filter(pk__in=long):
        assert job.attempts == 2


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="two claimers at once need row locks (the PostgreSQL run covers it)",
)
def test_two_resume_commands_at_once_share_orphans_and_run_none_twice(tmp_path: Path):
    from tests import tasks
    from tests.test_resume import orphan

    ran = tmp_path / "ran.txt"
    jobs = [orphan(tasks.append_ticket, str(ran), 20) for _ in range(120)]
    import subprocess
    import sys

    from tests.conftest import ROOT, child_env

    commands = [
        subprocess.Popen(
            [sys.executable, "manage.py", "resume_jobs", "--workers", "4"],
            cwd=ROOT,
            env=child_env(**FAST_RECOVERY),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [command.communicate(timeout=120)[0] for command in commands]
    assert [command.returncode for command in commands] == [0, 0], outputs
    lines = ran.read_text().splitlines()
    tickets = [line.split()[0] for line in lines]
    assert sorted(tickets) == sorted(str(job.pk) for job in jobs)  # each once
    pids = {line.split()[1] for line in lines}
    assert len(pids) == 2, "both commands ran some of the jobs"
    assert all(job.attempts == 1 for job in Job.objects.filter(pk__in=tickets))


def test_commands_that_run_no_jobs_start_nothing(tmp_path: Path):
    code = (
        "import django, threading; django.setup();"
        "from django.core.management import call_command;"
        "call_command('migrate', verbosity=0); call_command('check');"
        "from slowjobs.models import WorkerProcess;"
        "names = [t.name for t in threading.enumerate()];"
        "assert not [n for n in names if n.startswith('slowjobs')], names;"
        "assert not WorkerProcess.objects.exists();"
        "print('quiet')"
    )
    import subprocess
    import sys

    from tests.conftest import ROOT, child_env

    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip().endswith("quiet"), result.stderr


def test_ctrl_c_stops_resume_jobs_and_hands_its_jobs_back(tmp_path: Path):
    import subprocess
    import sys
    from datetime import timedelta

    from django.utils import timezone

    from tests.conftest import ROOT, child_env

    old = timezone.now() - timedelta(hours=1)
    job = Job.objects.create(
        task_path="project.tasks.generate_report",
        kwargs={"rows": 3000, "row_ms": 10},
        owner="gone:1:1",
        enqueued_at=old,
        heartbeat_at=old,
    )
    command = subprocess.Popen(
        [sys.executable, "manage.py", "resume_jobs"],
        cwd=ROOT,
        env=child_env(**FAST_RECOVERY, SLOWJOBS_DRAIN_TIMEOUT="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(
        lambda: Job.objects.get(pk=job.pk).status == JobStatus.RUNNING,
        20,
        "the resumed job did not start",
    )
    command.send_signal(signal.SIGINT)
    out, err = command.communicate(timeout=30)
    assert "Stopping: running jobs get up to 1 s" in err
    assert "1 handed back" in out, out
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert job.owner == ""
    assert job.history[-1]["outcome"] == "interrupted"
