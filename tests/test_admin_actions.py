"""``@job_action``: an admin action run as a job, through the real admin."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import include, path

from slowjobs.actions import job_action
from slowjobs.admin import JobAdmin
from slowjobs.models import Job, JobStatus
from tests import tasks
from tests.test_admin import CHANGELIST, make_job, staff_client

pytestmark = pytest.mark.django_db(transaction=True)


class GatedJobAdmin(JobAdmin):
    actions = ["hold_then_count"]

    @job_action(description="Hold, then count", permissions=["change"])
    def hold_then_count(self, job, queryset):
        job.progress(0, 1, "holding")
        assert tasks.gate("admin-action").wait(30)
        return {
            "rows": queryset.count(),
            "keys": sorted(str(pk) for pk in queryset.values_list("pk", flat=True)),
        }

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("slowjobs.change_job")


gated_site = admin.AdminSite(name="gated_admin")
gated_site.register(Job, GatedJobAdmin)
urlpatterns = [
    path("gated/", gated_site.urls),
    path("", include("project.urls")),
]
GATED = "/gated/slowjobs/job/"


def post_action(client: Client, url: str, action: str, jobs: list[Job]):
    return client.post(
        url, {"action": action, "_selected_action": [str(job.pk) for job in jobs]}
    )


def test_export_runs_as_a_job_and_its_csv_is_downloaded(django_user_model, finished):
    jobs = [make_job(), make_job(JobStatus.FAILED, error_message="=HYPERLINK(1)")]
    client = staff_client(django_user_model)
    response = post_action(client, CHANGELIST, "export_jobs_csv", jobs)
    assert response.status_code == 302
    export = Job.objects.get(task_path="slowjobs.actions.tasks.run_admin_action")
    assert response["Location"] == f"/jobs/{export.pk}/"
    assert export.title == "Export selected jobs as CSV"
    assert export.submitted_by.username == "staff"
    assert export.args[:3] == ["admin", "slowjobs.job", "export_jobs_csv"]
    assert sorted(export.args[3]) == sorted(str(job.pk) for job in jobs)
    finished.wait(str(export.pk))
    status = client.get(f"/jobs/{export.pk}/status").json()
    assert status["status"] == "succeeded", status
    assert status["result"]["jobs"] == 2
    download = client.get(status["result_url"])
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows[0][:4] == ["ticket", "task", "title", "status"]
    assert {row[0] for row in rows[1:]} == {str(job.pk) for job in jobs}
    failed = next(row for row in rows[1:] if row[3] == "failed")
    assert failed[-1] == "'=HYPERLINK(1)"  # a formula is written as text
    entry = LogEntry.objects.get(object_id=str(export.pk))
    assert entry.user.username == "staff"
    assert "Export selected jobs as CSV" in entry.change_message
    assert "2 jobs" in entry.change_message


def test_the_actions_permissions_decide_who_may_run_it(django_user_model, settings):
    settings.ROOT_URLCONF = __name__
    jobs = [make_job()]
    allowed = staff_client(django_user_model, "change_job")
    assert b'value="hold_then_count"' in allowed.get(GATED).content
    client = Client()
    clerk = django_user_model.objects.create_user("clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(clerk)  # view_job, not change_job
    page = client.get(GATED)
    assert page.status_code == 200
    assert b'value="hold_then_count"' not in page.content
    response = post_action(client, GATED, "hold_then_count", jobs)
    assert response.status_code in (200, 302)  # the list again, nothing run
    assert not Job.objects.filter(task_path__endswith="run_admin_action").exists()


def test_a_job_naming_an_action_that_is_gone_fails_saying_so(finished):
    from slowjobs.actions.tasks import run_admin_action

    result = run_admin_action.enqueue("admin", "slowjobs.job", "no_such_action", [])
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.FAILED
    assert "has no job action 'no_such_action'" in job.error_message


def test_a_second_run_on_the_same_rows_leads_to_the_first(
    django_user_model, settings, finished
):
    settings.ROOT_URLCONF = __name__
    jobs = [make_job(), make_job()]
    client = staff_client(django_user_model, "change_job")
    tasks.gate("admin-action").clear()
    first = post_action(client, GATED, "hold_then_count", jobs)
    assert first.status_code == 302
    again = post_action(client, GATED, "hold_then_count", list(reversed(jobs)))
    assert again.status_code == 302
    assert again["Location"] == first["Location"]
    assert Job.objects.filter(task_path__endswith="run_admin_action").count() == 1
    other = post_action(client, GATED, "hold_then_count", jobs[:1])
    assert other["Location"] != first["Location"]  # another selection: its own job
    tasks.gate("admin-action").set()
    ticket = first["Location"].split("/")[2]
    finished.wait(ticket)
    job = Job.objects.get(pk=ticket)
    assert job.status == JobStatus.SUCCEEDED
    assert job.result["rows"] == 2
    # Finished: the same action on the same rows starts afresh.
    third = post_action(client, GATED, "hold_then_count", jobs)
    assert third["Location"] != first["Location"]


def test_staff_who_may_not_see_the_running_one_are_told_who_started_it(
    django_user_model, settings, finished
):
    settings.ROOT_URLCONF = __name__
    jobs = [make_job()]
    first = staff_client(django_user_model, "change_job")
    other = django_user_model.objects.create_user("other", is_staff=True)
    other.user_permissions.add(Permission.objects.get(codename="change_job"))
    second = Client()
    second.force_login(other)  # may change jobs, may not read another's
    tasks.gate("admin-action").clear()
    started = post_action(first, GATED, "hold_then_count", jobs)
    assert started.status_code == 302
    refused = post_action(second, GATED, "hold_then_count", jobs)
    assert refused.status_code == 302
    assert not refused["Location"].startswith("/jobs/")
    shown = second.get(refused["Location"]).content.decode()
    assert "is already running on these rows, for staff" in shown
    assert Job.objects.filter(task_path__endswith="run_admin_action").count() == 1
    tasks.gate("admin-action").set()
    finished.wait(started["Location"].split("/")[2])


def test_max_rows_must_be_a_positive_integer():
    for wrong in (0, -1, True, "10"):
        with pytest.raises(ValueError, match="max_rows must be an integer >= 1"):
            job_action(max_rows=wrong)


def test_a_selection_past_the_bound_is_refused(django_user_model, settings):
    settings.ROOT_URLCONF = __name__
    jobs = [make_job() for _ in range(3)]
    client = staff_client(django_user_model, "change_job")
    original = GatedJobAdmin.hold_then_count
    bounded = job_action(description="Hold, then count", max_rows=2)(
        original.slowjobs_job_function
    )
    bounded.__name__ = "hold_then_count"
    GatedJobAdmin.hold_then_count = bounded
    try:
        response = client.post(
            GATED,
            {
                "action": "hold_then_count",
                "_selected_action": [str(j.pk) for j in jobs],
            },
            follow=True,
        )
    finally:
        GatedJobAdmin.hold_then_count = original
    assert "Select at most 2 rows" in response.content.decode()
    assert not Job.objects.filter(task_path__endswith="run_admin_action").exists()
