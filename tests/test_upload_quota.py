"""Uploads take no more room than their jobs need: quotas per submitter and
in all (refused before the body is read), inputs removed when their job
ends, and the partial results of a job that failed or was cancelled."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from slowjobs.jobs import files as jobfiles
from slowjobs.jobs.cancel import cancel
from slowjobs.models import Job, JobStatus
from slowjobs.web.uploads import keep_upload
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)

JSON = {"accept": "application/json"}
MIB = 1024 * 1024


def _held(address: str, size: int) -> Job:
    """An unfinished job of a visitor from ``address``, holding an upload."""
    name = keep_upload(SimpleUploadedFile("held.bin", b"x"))
    return Job.objects.create(
        task_path="project.tasks.checksum_file",
        args=[name],
        submitter_address=address,
        input_file=name,
        input_size=size,
        enqueued_at=timezone.now(),
        run_after=timezone.now() + timezone.timedelta(hours=1),
    )


def _upload(address: str, size: int):
    return Client(REMOTE_ADDR=address).post(
        "/demo/checksum/",
        {"file": SimpleUploadedFile("data.bin", b"y" * size)},
        headers=JSON,
    )


def test_a_visitor_over_their_upload_quota_is_refused_413(settings, finished):
    settings.SLOWJOBS_UPLOAD_QUOTA_MB = 1
    _held("127.0.0.2", MIB - 1000)
    refused = _upload("127.0.0.2", 5000)
    assert refused.status_code == 413
    body = refused.json()
    assert body["limit"] == "upload_quota"
    assert body["quota_mb"] == 1
    assert "1 MB" in body["error"]
    assert Job.objects.count() == 1  # nothing queued, nothing kept
    # Another address has a quota of its own.
    accepted = _upload("127.0.0.3", 5000)
    assert accepted.status_code == 202
    finished.wait(accepted.json()["ticket"])


def test_the_uploads_of_all_have_a_bound_too(settings):
    settings.SLOWJOBS_UPLOAD_TOTAL_MB = 2
    _held("127.0.0.2", MIB)
    _held("127.0.0.3", MIB - 10_000)
    refused = _upload("127.0.0.4", 20_000)
    assert refused.status_code == 507
    assert refused["Retry-After"] == "5"
    assert "no room" in refused.json()["error"]


def test_an_input_is_kept_when_its_task_says_so(finished):
    name = keep_upload(SimpleUploadedFile("keep.bin", b"k" * 100))
    with jobfiles.job_input(name):
        result = tasks.read_and_keep.enqueue(name)
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == 100
    assert (job.input_file, job.input_size) == (name, 100)
    path = jobfiles.resolve(name)
    assert path is not None
    assert path.exists()


def test_a_queued_job_cancelled_removes_its_input():
    job = _held("127.0.0.2", 1)
    path = jobfiles.resolve(job.input_file)
    assert path is not None
    assert path.exists()
    cancel(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert (job.input_file, job.input_size) == ("", 0)
    assert not path.exists()


@pytest.mark.parametrize("how", ["fail", "cancel"])
def test_the_partial_results_of_a_job_that_did_not_succeed_are_removed(how, finished):
    result = tasks.write_part_then.enqueue(how)
    deadline = time.monotonic() + 10
    while "part" not in tasks.seen:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    if how == "cancel":
        cancel(result.id)
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert job.status == (JobStatus.FAILED if how == "fail" else JobStatus.CANCELLED)
    assert not list((jobfiles.root() / "results").glob(f"{result.id}*"))


def test_an_upload_folder_the_server_cannot_write_is_a_plain_503(settings, tmp_path):
    # (A read-only folder stops no root; a file in the way stops everyone.)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    settings.SLOWJOBS_FILES_DIR = str(blocker / "jobs")
    refused = _upload("127.0.0.2", 1000)
    assert refused.status_code == 503
    body = refused.json()
    assert body["retry_after"] == 5
    assert str(tmp_path) not in body["error"]
    assert not Job.objects.exists()
    page = Client().post("/demo/checksum/", {"file": SimpleUploadedFile("a.txt", b"a")})
    assert page.status_code == 503
    assert page["Content-Type"].startswith("text/plain")
