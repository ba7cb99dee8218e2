from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from slowjobs.models import Job, JobStatus, WorkerProcess
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/slowjobs/job/"


def make_job(status=JobStatus.SUCCEEDED, **fields) -> Job:
    now = timezone.now()
    defaults = {
        "task_path": "tests.tasks.add",
        "args": [1, 2],
        "status": status,
        "enqueued_at": now,
        "started_at": now if status != JobStatus.QUEUED else None,
        "finished_at": now if status in JobStatus.finished() else None,
    }
    return Job.objects.create(**{**defaults, **fields})


def staff_client(django_user_model, *codenames: str) -> Client:
    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    perms = Permission.objects.filter(
        content_type__app_label="slowjobs", codename__in=["view_job", *codenames]
    )
    user.user_permissions.add(*perms)
    client = Client()
    client.force_login(user)
    return client


def run_action(client: Client, action: str, jobs: list[Job]):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [str(job.pk) for job in jobs]},
        follow=True,
    )


def test_the_changelist_shows_counts_and_progress(admin_client):
    make_job(JobStatus.RUNNING, progress_current=1, progress_total=4)
    make_job(JobStatus.FAILED)
    make_job(JobStatus.FAILED)
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    content = response.content.decode()
    assert "Failed: <strong>2</strong>" in content
    assert "Running: <strong>1</strong>" in content
    assert 'max="100" value="25.0"' in content
    assert "admin_progress.js" in content


def test_the_changelist_of_10000_jobs_takes_a_bounded_number_of_queries(
    admin_client, django_assert_max_num_queries
):
    now = timezone.now()
    Job.objects.bulk_create(
        Job(task_path=f"tests.tasks.t{i % 7}", enqueued_at=now, status="succeeded")
        for i in range(10_000)
    )
    with django_assert_max_num_queries(12):
        response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    with django_assert_max_num_queries(12):
        assert (
            admin_client.get(CHANGELIST + "?status__exact=succeeded").status_code == 200
        )


def test_html_in_job_data_is_escaped(admin_client):
    job = make_job(
        JobStatus.FAILED,
        task_path="tests.tasks.<b>bold</b>",
        error_message="<script>alert('x')</script>",
        error_traceback="Traceback <img src=x onerror=alert(1)>",
    )
    for url in (CHANGELIST, f"{CHANGELIST}{job.pk}/change/"):
        content = admin_client.get(url).content.decode()
        assert "<script>alert(" not in content
        assert "<img src=x" not in content
        assert "<b>bold</b>" not in content
    detail = admin_client.get(f"{CHANGELIST}{job.pk}/change/").content.decode()
    assert "&lt;script&gt;alert(" in detail
    assert "&lt;img src=x onerror=alert(1)&gt;" in detail


def test_cancel_needs_its_permission(django_user_model):
    running = make_job(JobStatus.RUNNING)
    viewer = staff_client(django_user_model)
    response = run_action(viewer, "cancel_jobs", [running])
    assert response.status_code == 200
    running.refresh_from_db()
    assert running.cancel_requested is False
    assert b"cancel_jobs" not in viewer.get(CHANGELIST).content


def test_cancel_action_cancels_queued_and_running_jobs(django_user_model):
    queued = make_job(JobStatus.QUEUED)
    running = make_job(JobStatus.RUNNING)
    done = make_job(JobStatus.SUCCEEDED)
    client = staff_client(django_user_model, "cancel_job")
    response = run_action(client, "cancel_jobs", [queued, running, done])
    assert (
        "Cancel requested for 2 jobs. 1 had already finished."
        in response.content.decode()
    )
    for job in (queued, running, done):
        job.refresh_from_db()
    assert queued.status == JobStatus.CANCELLED
    assert running.cancel_requested is True
    assert done.status == JobStatus.SUCCEEDED
    assert done.cancel_requested is False


def test_rerun_makes_new_jobs_for_failed_and_cancelled_ones(
    django_user_model, finished
):
    failed = make_job(JobStatus.FAILED, args=[20, 22], submitter_session="s" * 32)
    cancelled = make_job(JobStatus.CANCELLED)
    succeeded = make_job(JobStatus.SUCCEEDED)
    viewer = staff_client(django_user_model)
    run_action(viewer, "rerun_jobs", [failed])
    assert Job.objects.count() == 3  # no permission, nothing started
    viewer.logout()
    user = django_user_model.objects.get(username="staff")
    user.user_permissions.add(Permission.objects.get(codename="rerun_job"))
    client = Client()
    client.force_login(user)
    response = run_action(client, "rerun_jobs", [failed, cancelled, succeeded])
    assert "Started 2 new jobs. 1 were neither failed nor cancelled." in (
        response.content.decode()
    )
    new = Job.objects.exclude(pk__in=[failed.pk, cancelled.pk, succeeded.pk])
    assert new.count() == 2
    rerun = new.get(args=[20, 22])
    assert rerun.submitter_session == "s" * 32
    finished.wait(str(rerun.pk))
    rerun.refresh_from_db()
    assert rerun.result == 42
    failed.refresh_from_db()
    assert failed.status == JobStatus.FAILED  # the old one stays as it was


def test_delete_finished_removes_only_finished_jobs(django_user_model):
    done = make_job(JobStatus.SUCCEEDED)
    running = make_job(JobStatus.RUNNING)
    client = staff_client(django_user_model, "delete_job")
    response = run_action(client, "delete_finished_jobs", [done, running])
    assert "Deleted 1 job." in response.content.decode()
    assert list(Job.objects.values_list("pk", flat=True)) == [running.pk]
    assert b"delete_selected" not in client.get(CHANGELIST).content


def test_a_running_job_cannot_be_deleted_one_by_one_and_a_finished_one_takes_its_files(
    django_user_model,
):
    from slowjobs.jobs import files as jobfiles

    client = staff_client(django_user_model, "delete_job")
    running = make_job(JobStatus.RUNNING)
    assert client.get(f"{CHANGELIST}{running.pk}/delete/").status_code == 403
    refused = client.post(f"{CHANGELIST}{running.pk}/delete/", {"post": "yes"})
    assert refused.status_code == 403
    assert Job.objects.filter(pk=running.pk).exists()
    path = jobfiles.result_path("admin-delete", ".csv")
    path.write_text("row,square\n")
    done = make_job(JobStatus.SUCCEEDED, result_file=jobfiles.stored_name(path))
    client.post(f"{CHANGELIST}{done.pk}/delete/", {"post": "yes"})
    assert not Job.objects.filter(pk=done.pk).exists()
    assert not path.exists()


def test_the_admin_shows_a_session_digest_never_the_key(admin_client):
    from slowjobs.progress.records import session_digest

    key = "k" * 32
    job = make_job(submitter_session=key)
    page = admin_client.get(f"{CHANGELIST}{job.pk}/change/").content.decode()
    listing = admin_client.get(CHANGELIST).content.decode()
    assert key not in page
    assert key[:8] not in listing
    assert session_digest(key)[:12] in page


def test_progress_endpoint_reports_the_jobs_on_the_page(admin_client, client):
    job = make_job(JobStatus.RUNNING, progress_current=3, progress_total=4)
    url = f"/admin/slowjobs/job/progress/?t={job.pk}&t=not-a-uuid"
    body = admin_client.get(url).json()
    assert body == {
        str(job.pk): {
            "status": "Running",
            "finished": False,
            "percent": 75.0,
            "message": "",
        }
    }
    assert client.get(url).status_code == 302  # to the admin login


def test_processes_view_shows_live_and_dead_processes(admin_client):
    now = timezone.now()
    WorkerProcess.objects.create(
        id="host:1:1", host="host", pid=1, started_at=now, last_seen=now, mode="pool"
    )
    WorkerProcess.objects.create(
        id="host:2:2",
        host="host",
        pid=2,
        started_at=now,
        last_seen=now - timedelta(hours=1),
        mode="pool",
    )
    make_job(JobStatus.RUNNING, owner="host:2:2")
    content = admin_client.get("/admin/slowjobs/workerprocess/").content.decode()
    assert "host:1:1" in content
    assert "host:2:2" in content
    assert 'alt="False"' in content
    assert 'alt="True"' in content
    assert tasks.add.func(1, 1) == 2


def test_the_summary_counts_the_last_hour_and_times_each_task(admin_client):
    now = timezone.now()
    for wait, run in ((1, 2), (3, 4)):
        make_job(
            JobStatus.SUCCEEDED,
            task_path="tests.tasks.noop",
            enqueued_at=now - timedelta(seconds=wait + run),
            started_at=now - timedelta(seconds=run),
            finished_at=now,
        )
    make_job(JobStatus.FAILED, task_path="tests.tasks.fail")
    make_job(JobStatus.SUCCEEDED, finished_at=now - timedelta(hours=2))
    content = admin_client.get(CHANGELIST).content.decode()
    assert "Last hour: 2 succeeded, 1 failed, 0 cancelled" in content
    assert (
        "<td>tests.tasks.noop</td><td>2</td><td>0:00:02</td><td>0:00:03</td>" in content
    )


def test_the_detail_page_shows_arguments_result_checkpoint_and_attempts(admin_client):
    job = make_job(
        JobStatus.SUCCEEDED,
        kwargs={"rows": 5},
        result={"ok": True},
        checkpoint={"done": 4},
        attempts=2,
        history=[{"attempt": 1, "outcome": "lost", "owner": "h:1:1", "at": "x"}],
    )
    content = admin_client.get(f"{CHANGELIST}{job.pk}/change/").content.decode()
    for expected in ('"rows": 5', "&quot;ok&quot;: true", '"done": 4', "lost", "h:1:1"):
        assert expected.replace('"', "&quot;") in content or expected in content
