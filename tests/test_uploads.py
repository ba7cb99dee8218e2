from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from slowjobs.jobs import files as jobfiles
from slowjobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db(transaction=True)

JSON = {"HTTP_ACCEPT": "application/json"}


def kept_files() -> set[str]:
    inputs = jobfiles.root() / "inputs"
    return (
        {str(p) for p in inputs.rglob("*") if p.is_file()} if inputs.exists() else set()
    )


def test_an_upload_is_checksummed_by_a_job(client, finished):
    content = b"line one\nline two\n" * 5000 + b"no newline at the end"
    upload = SimpleUploadedFile("data file (1).txt", content)
    response = client.post("/demo/checksum/", {"file": upload}, **JSON)
    assert response.status_code == 202, response.content
    ticket = response.json()["ticket"]
    finished.wait(ticket)
    job = Job.objects.get(pk=ticket)
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert job.result == {
        "sha256": hashlib.sha256(content).hexdigest(),
        "bytes": len(content),
        "lines": 10000,
        "file": "data_file_1_.txt",
    }
    assert (job.progress_current, job.progress_total) == (len(content), len(content))
    # The upload went with the job's end: nothing holds the disk (or the
    # submitter's quota) for it any more.
    assert (job.input_file, job.input_size) == ("", 0)
    stored = jobfiles.resolve(job.args[0])
    assert stored is not None
    assert not stored.exists()
    assert not stored.parent.exists()
    status = client.get(f"/jobs/{ticket}/status").json()
    assert status["result"]["sha256"] == hashlib.sha256(content).hexdigest()


def test_an_upload_over_the_limit_is_413_and_nothing_is_kept(client, settings):
    settings.SLOWJOBS_MAX_UPLOAD_MB = 1
    before = kept_files()
    upload = SimpleUploadedFile("big.bin", b"x" * (2 * 1024 * 1024))
    response = client.post("/demo/checksum/", {"file": upload}, **JSON)
    assert response.status_code == 413
    assert response.json() == {
        "error": "The upload is larger than 1 MB.",
        "max_upload_mb": 1,
    }
    assert not Job.objects.exists()
    assert kept_files() == before


def test_a_form_without_a_file_is_400(client):
    response = client.post("/demo/checksum/", {}, **JSON)
    assert response.status_code == 400
    assert "file" in response.json()["errors"]
    page = client.post("/demo/checksum/", {})
    assert page.status_code == 400
    assert b"This field is required." in page.content


def test_a_browser_upload_is_redirected_to_its_status_page(client):
    client.get("/")
    upload = SimpleUploadedFile("small.txt", b"hello\n")
    response = client.post("/demo/checksum/", {"file": upload})
    assert response.status_code == 303
    ticket = Job.objects.get().pk
    assert response["Location"] == f"/jobs/{ticket}/"


def test_a_refused_upload_is_not_kept(client, settings):
    settings.SLOWJOBS_WORKERS = 1
    settings.SLOWJOBS_QUEUE_SIZE = 0
    from tests import tasks

    gate = tasks.gate("uploads-full")
    tasks.wait_for_gate.enqueue("uploads-full")
    before = kept_files()
    upload = SimpleUploadedFile("refused.txt", b"data\n")
    response = client.post("/demo/checksum/", {"file": upload}, **JSON)
    assert response.status_code == 503
    assert kept_files() == before
    gate.set()


def test_a_browser_upload_over_the_limit_gets_a_readable_413(client, settings):
    settings.SLOWJOBS_MAX_UPLOAD_MB = 1
    upload = SimpleUploadedFile("big.bin", b"x" * (2 * 1024 * 1024))
    response = client.post("/demo/checksum/", {"file": upload})
    assert response.status_code == 413
    assert response.content == b"The upload is larger than 1 MB."
