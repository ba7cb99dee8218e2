"""Orphaned jobs: found, claimed once, resumed by resume_jobs."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from slowjobs.engine.runner import run_job
from slowjobs.engine.spec import spec_from_job
from slowjobs.jobs.statewriter import stop_writers
from slowjobs.lifecycle.orphans import claim, orphaned
from slowjobs.models import Job, JobStatus, WorkerProcess
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)

LONG_AGO = timedelta(hours=1)


def orphan(task, *args, status=JobStatus.QUEUED, owner="gone:1:1", **fields):
    """A job as a dead process left it."""
    attempts = 1 if status == JobStatus.RUNNING else 0
    return Job.objects.create(
        task_path=task.module_path,
        args=list(args),
        status=status,
        owner=owner,
        attempts=attempts,
        worker_ids=[owner] * attempts,
        enqueued_at=timezone.now() - LONG_AGO,
        heartbeat_at=timezone.now() - LONG_AGO,
        **fields,
    )


def resume(*args: str) -> str:
    out = io.StringIO()
    call_command("resume_jobs", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_resume_jobs_runs_what_dead_processes_left(tmp_path: Path):
    path = str(tmp_path / "ran.txt")
    queued = orphan(tasks.append_ticket, path)
    running = orphan(tasks.append_ticket, path, status=JobStatus.RUNNING)
    handed_back = orphan(tasks.append_ticket, path, owner="")
    handed_back.heartbeat_at = timezone.now()  # no owner: taken at once
    handed_back.save()
    output = resume()
    assert "Resumed 3: 3 succeeded, 0 failed" in output
    lines = Path(path).read_text().splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(
        str(job.pk) for job in (queued, running, handed_back)
    )
    running.refresh_from_db()
    assert running.status == JobStatus.SUCCEEDED
    assert running.attempts == 2
    assert running.history[0]["outcome"] == "lost"
    assert running.history[0]["owner"] == "gone:1:1"
    queued.refresh_from_db()
    assert queued.attempts == 1
    assert queued.history == []


def test_jobs_of_live_processes_are_left_alone():
    live = WorkerProcess.objects.create(
        id="alive:2:2",
        host="h",
        pid=2,
        started_at=timezone.now(),
        last_seen=timezone.now(),
        mode="pool",
    )
    fresh_owner = orphan(tasks.noop, owner=live.id)  # stale job, live owner
    recent = orphan(tasks.noop, owner="gone:3:3")
    recent.heartbeat_at = timezone.now()  # its heartbeat is fresh
    recent.save()
    finished = orphan(tasks.noop, status=JobStatus.SUCCEEDED)
    assert list(orphaned()) == []
    assert "0 job(s) would be resumed." in resume("--dry-run")
    for job in (fresh_owner, recent, finished):
        job.refresh_from_db()
    assert fresh_owner.status == recent.status == JobStatus.QUEUED


def test_dry_run_lists_and_claims_nothing():
    job = orphan(tasks.noop, status=JobStatus.RUNNING)
    output = resume("--dry-run")
    assert str(job.pk) in output
    assert "1 job(s) would be resumed." in output
    job.refresh_from_db()
    assert job.owner == "gone:1:1"
    assert job.status == JobStatus.RUNNING


def test_task_option_limits_the_claim():
    mine = orphan(tasks.add, 1, 2)
    other = orphan(tasks.noop)
    assert "Resumed 1: 1 succeeded" in resume("--task", "tests.tasks.add")
    mine.refresh_from_db()
    other.refresh_from_db()
    assert mine.result == 3
    assert other.status == JobStatus.QUEUED


def test_exit_code_reflects_failures():
    orphan(tasks.fail, "still broken")
    orphan(tasks.noop)
    with pytest.raises(CommandError, match="1 resumed job"):
        resume()


@pytest.mark.parametrize("bad", ["0", "-1", "many"])
def test_workers_must_be_a_positive_number(bad):
    with pytest.raises(CommandError, match="--workers"):
        call_command("resume_jobs", "--workers", bad)


def test_on_interrupt_fail_and_restart_policies():
    failing = orphan(tasks.must_not_repeat, status=JobStatus.RUNNING)
    restarting = orphan(
        tasks.restart_from_scratch, status=JobStatus.RUNNING, checkpoint={"at": 5}
    )
    resuming = orphan(tasks.checkpoint_steps, 3, status=JobStatus.RUNNING)
    resuming.checkpoint = {"done": 2}
    resuming.save()
    with pytest.raises(CommandError, match="1 resumed job"):
        resume()
    failing.refresh_from_db()
    assert failing.status == JobStatus.FAILED
    assert failing.error_class == "slowjobs.exceptions.JobInterrupted"
    assert "does not run again" in failing.error_message
    restarting.refresh_from_db()
    assert restarting.status == JobStatus.SUCCEEDED
    assert restarting.result is None  # it saw no checkpoint
    resuming.refresh_from_db()
    assert resuming.result == {"resumed_from": 2, "done": 3}


def test_an_orphan_whose_cancel_was_requested_is_cancelled_not_run(tmp_path):
    path = tmp_path / "ran.txt"
    job = orphan(tasks.append_ticket, str(path), status=JobStatus.RUNNING)
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    resume()
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert not path.exists()


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING])
def test_an_orphan_of_a_task_that_no_longer_exists_fails_clearly(status):
    job = orphan(tasks.noop, status=status)
    Job.objects.filter(pk=job.pk).update(task_path="tests.tasks.gone_away")
    with pytest.raises(CommandError):
        resume()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "gone_away" in job.error_message


def test_a_claim_takes_each_job_once():
    jobs = [orphan(tasks.noop) for _ in range(10)]
    first = claim("claimer:1:1", limit=6).runnable
    second = claim("claimer:2:2").runnable
    assert len(first) == 6
    assert len(second) == 4
    assert {j.pk for j in first}.isdisjoint({j.pk for j in second})
    assert not claim("claimer:3:3")
    owners = dict(Job.objects.values_list("pk", "owner"))
    assert {owners[j.pk] for j in jobs} == {"claimer:1:1", "claimer:2:2"}


def test_a_stale_attempt_cannot_overwrite_the_current_one():
    """Fencing: an attempt that lost its job finishes late; nothing changes."""
    job = orphan(tasks.add, 1, 1)
    [claimed] = claim("first:1:1").runnable
    stale = spec_from_job(claimed)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - LONG_AGO)
    [again] = claim("second:2:2").runnable  # first:1:1 looks dead and loses the job
    run_job(stale)  # the stale attempt runs to the end...
    stop_writers(10)
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED  # ...and its outcome is dropped
    assert job.owner == "second:2:2"
    run_job(spec_from_job(again))
    stop_writers(10)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.worker_ids == ["second:2:2"]


def test_unknown_ticket_is_not_an_orphan():
    assert not orphaned().filter(pk=uuid.uuid4()).exists()


def test_a_resumed_job_that_reports_nothing_clears_the_earlier_progress(tmp_path):
    path = str(tmp_path / "ran.txt")
    left = orphan(
        tasks.append_ticket,
        path,
        status=JobStatus.RUNNING,
        progress_current=4,
        progress_total=10,
        progress_message="halfway",
    )
    assert "1 succeeded" in resume()
    job = Job.objects.get(pk=left.pk)
    assert job.status == JobStatus.SUCCEEDED
    assert (job.progress_current, job.progress_total, job.progress_message) == (
        None,
        None,
        "",
    )
    assert job.percent == 100.0


def test_a_beat_refreshes_only_job_rows_half_a_lease_old(settings):
    from slowjobs.lifecycle.heartbeat import Heartbeat
    from slowjobs.lifecycle.identity import process_id

    settings.SLOWJOBS_LEASE = 30
    me = process_id()
    stale = orphan(tasks.append_ticket, "unused", owner=me)
    fresh_at = timezone.now() - timedelta(seconds=5)
    fresh = orphan(tasks.append_ticket, "unused", owner=me)
    Job.objects.filter(pk=fresh.pk).update(heartbeat_at=fresh_at)
    Heartbeat().beat()
    assert Job.objects.get(pk=stale.pk).heartbeat_at > timezone.now() - LONG_AGO / 2
    assert Job.objects.get(pk=fresh.pk).heartbeat_at == fresh_at
    WorkerProcess.objects.filter(id=me).delete()
