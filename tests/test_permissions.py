"""Permissions, not staff: another visitor's job takes ``slowjobs.view_job`` to
read (status, page, result file, traceback) and ``slowjobs.cancel_job`` to
cancel; without them it is the same 404 as a ticket that does not exist."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from slowjobs.jobs import files as jobfiles
from slowjobs.models import Job, JobStatus
from tests.sessions import session_client

pytestmark = pytest.mark.django_db(transaction=True)

NOT_FOUND = {"error": "No such job."}


@pytest.fixture
def owned_jobs() -> dict[str, Job]:
    """A visitor's finished job with a result file and traceback, and their
    deferred (queued) job, which nothing runs during the test."""
    _, key = session_client()
    now = timezone.now()
    path = jobfiles.result_path("permissions", ".csv")
    path.write_text("row,square\n1,1\n")
    finished = Job.objects.create(
        task_path="project.tasks.generate_report",
        status=JobStatus.SUCCEEDED,
        result={"rows": 1},
        result_file=jobfiles.stored_name(path),
        error_traceback="Traceback (most recent call last): ...",
        submitter_session=key,
        enqueued_at=now,
        finished_at=now,
    )
    queued = Job.objects.create(
        task_path="project.tasks.generate_report",
        kwargs={"rows": 1, "row_ms": 0},
        submitter_session=key,
        enqueued_at=now,
        run_after=now + timedelta(hours=1),
    )
    return {"finished": finished, "queued": queued}


def logged_in(django_user_model: Any, name: str, *codenames: str) -> Client:
    user = django_user_model.objects.create_user(name, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_a_staff_flag_alone_reads_and_cancels_nothing(owned_jobs, django_user_model):
    staff = logged_in(django_user_model, "staff")
    finished, queued = owned_jobs["finished"], owned_jobs["queued"]
    for path in (
        f"/jobs/{finished.pk}/status",
        f"/jobs/{finished.pk}/result",
        f"/jobs/{finished.pk}/",
    ):
        assert staff.get(path).status_code == 404, path
    assert staff.get(f"/jobs/{finished.pk}/status").json() == NOT_FOUND
    cancel = staff.post(f"/jobs/{queued.pk}/cancel", HTTP_ACCEPT="application/json")
    assert cancel.status_code == 404
    assert cancel.json() == NOT_FOUND
    assert Job.objects.get(pk=queued.pk).status == JobStatus.QUEUED


def test_view_job_reads_any_job_with_its_traceback_but_cancels_none(
    owned_jobs, django_user_model
):
    viewer = logged_in(django_user_model, "viewer", "view_job")
    finished, queued = owned_jobs["finished"], owned_jobs["queued"]
    body = viewer.get(f"/jobs/{finished.pk}/status").json()
    assert body["status"] == "succeeded"
    assert body["traceback"].startswith("Traceback")
    result = viewer.get(f"/jobs/{finished.pk}/result")
    assert result.status_code == 200
    assert b"".join(result.streaming_content) == b"row,square\n1,1\n"
    assert viewer.get(f"/jobs/{finished.pk}/").status_code == 200
    cancel = viewer.post(f"/jobs/{queued.pk}/cancel", HTTP_ACCEPT="application/json")
    assert cancel.status_code == 404
    assert Job.objects.get(pk=queued.pk).status == JobStatus.QUEUED


def test_cancel_job_cancels_any_job_without_reading_tracebacks(
    owned_jobs, django_user_model
):
    canceller = logged_in(django_user_model, "canceller", "cancel_job")
    queued = owned_jobs["queued"]
    assert canceller.get(f"/jobs/{queued.pk}/status").status_code == 404
    cancel = canceller.post(f"/jobs/{queued.pk}/cancel", HTTP_ACCEPT="application/json")
    assert cancel.status_code == 202
    body = cancel.json()
    assert body["status"] == "cancelled"
    assert "traceback" not in body
    assert Job.objects.get(pk=queued.pk).status == JobStatus.CANCELLED


def test_the_owner_needs_no_permission(owned_jobs):
    owner = Client()
    owner.cookies["sessionid"] = owned_jobs["finished"].submitter_session
    body = owner.get(f"/jobs/{owned_jobs['finished'].pk}/status").json()
    assert body["status"] == "succeeded"
    assert "traceback" not in body  # tracebacks are for view_job
    assert owner.get(f"/jobs/{owned_jobs['finished'].pk}/result").status_code == 200
