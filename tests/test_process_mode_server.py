"""Process mode under gunicorn: each worker starts its own job processes
after the fork; a stopping server drains and hands back process-mode jobs
with their checkpoints, leaves no job process behind, and the next server
finishes them by itself (every report row exactly once)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from slowjobs.models import Job
from tests.conftest import start_gunicorn
from tests.recovery_scenarios import finished_by_a_new_server, submit_reports
from tests.test_crash_recovery import (
    FAST_RECOVERY,
    assert_reports_complete,
    counts,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)

PROCESS_MODE = {**FAST_RECOVERY, "SLOWJOBS_RUNS_IN": "process"}


def job_processes() -> dict[int, int]:
    """Every live job process on this machine: pid -> parent pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if b"slowjobs.engine.processes" in command:
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                found[int(entry.name)] = int(fields[1])
    return found


def test_a_draining_server_hands_back_process_jobs_and_leaves_no_process(tmp_path):
    env = {
        **PROCESS_MODE,
        "SLOWJOBS_DRAIN_TIMEOUT": "2",
        "SLOWJOBS_WORKERS": "4",
        "SLOWJOBS_PROCESSES": "4",  # no job waits for a process
    }
    before = set(job_processes())
    server = start_gunicorn(tmp_path, workers=2, **env)
    short = submit_reports(server.url, 2, rows=40, row_ms=10)  # 0.4 s each
    long = submit_reports(server.url, 4, rows=700, row_ms=10)  # 7 s each
    wait_until(lambda: counts(long)["running"] == 4, 30, "long jobs did not start")
    # Their processes set up (seconds on a loaded machine), then a checkpoint
    # each; the short ones done by then.
    wait_until(
        lambda: (
            counts(short)["succeeded"] == 2
            and Job.objects.filter(pk__in=long, checkpoint__isnull=False).count() == 4
        ),
        30,
        "the short jobs did not finish, or the long ones did not checkpoint",
    )
    ours = {pid: parent for pid, parent in job_processes().items() if pid not in before}
    assert ours, "no job process was started"
    workers = set(ours.values())
    assert server.process.pid not in workers, "the master must not own job processes"
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(30)
    assert counts(short)["succeeded"] == 2
    for job in Job.objects.filter(pk__in=long):
        assert job.status == "queued"
        assert job.owner == ""
        assert job.history[-1]["outcome"] == "interrupted"
        assert job.checkpoint, "the job's checkpoint came back from its process"
    deadline = time.monotonic() + 5
    while set(job_processes()) & set(ours) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not set(job_processes()) & set(ours), "job processes outlived the server"
    finished_by_a_new_server(tmp_path, long, workers=2, **env)
    assert_reports_complete(short, 40)
    assert_reports_complete(long, 700)
