from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from slowjobs.jobs import files as jobfiles
from slowjobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db(transaction=True)


def job(status: str, days_ago: float, with_files: bool = False) -> Job:
    ended = timezone.now() - timedelta(days=days_ago)
    row = Job.objects.create(
        task_path="tests.tasks.noop",
        status=status,
        enqueued_at=ended,
        finished_at=None if status in ("queued", "running") else ended,
    )
    if with_files:
        result = jobfiles.result_path(row.pk, ".csv")
        result.write_text("row\n1\n")
        upload = jobfiles.root() / "inputs" / row.pk.hex / "in.bin"
        upload.parent.mkdir(parents=True)
        upload.write_bytes(b"x")
        row.result_file = str(result.relative_to(jobfiles.root()))
        row.input_file = str(upload.relative_to(jobfiles.root()))
        row.save()
    return row


def purge(*args: str) -> str:
    out = io.StringIO()
    call_command("purge_jobs", *args, stdout=out)
    return out.getvalue()


def test_old_finished_jobs_and_their_files_go_the_rest_stay():
    old = job(JobStatus.SUCCEEDED, 10, with_files=True)
    old_failed = job(JobStatus.FAILED, 8)
    recent = job(JobStatus.SUCCEEDED, 1)
    running = job(JobStatus.RUNNING, 30)
    files = [jobfiles.resolve(old.result_file), jobfiles.resolve(old.input_file)]
    assert all(path is not None and path.exists() for path in files)
    assert "Deleted 2 job(s) and 2 file(s)." in purge()
    assert set(Job.objects.values_list("pk", flat=True)) == {recent.pk, running.pk}
    assert not any(path is not None and path.exists() for path in files)
    assert not (jobfiles.root() / "inputs" / old.pk.hex).exists()
    assert old_failed.pk not in set(Job.objects.values_list("pk", flat=True))


def test_days_and_dry_run():
    job(JobStatus.CANCELLED, 2)
    assert "0 job(s) would be deleted." in purge("--dry-run")
    assert "1 job(s) would be deleted." in purge("--dry-run", "--days", "1")
    assert Job.objects.count() == 1
    assert "Deleted 1 job(s)" in purge("--days", "1")
    assert not Job.objects.exists()


def test_a_bad_days_value_is_a_clear_error():
    with pytest.raises(CommandError, match="--days"):
        call_command("purge_jobs", "--days", "-1")
