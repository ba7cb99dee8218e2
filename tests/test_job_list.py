"""``GET /jobs/``: a visitor's own jobs, newest first, a page at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from slowjobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


def own_session(client) -> str:
    session = client.session
    session.save()
    return session.session_key


def make_jobs(count: int, **owner) -> list[Job]:
    now = timezone.now()
    return Job.objects.bulk_create(
        Job(
            task_path="tests.tasks.noop",
            title=f"job {number}",
            enqueued_at=now - timedelta(minutes=count - number),
            status=JobStatus.SUCCEEDED if number % 2 else JobStatus.QUEUED,
            **owner,
        )
        for number in range(count)
    )


def test_a_sessions_jobs_newest_first_a_page_at_a_time(client):
    jobs = make_jobs(25, submitter_session=own_session(client))
    make_jobs(3, submitter_session="someone-else")
    first = client.get("/jobs/", **JSON).json()
    assert (first["count"], first["page"], first["pages"]) == (25, 1, 2)
    assert [j["ticket"] for j in first["jobs"]] == [
        str(j.pk) for j in reversed(jobs[5:])
    ]
    assert first["next"] == "/jobs/?page=2"
    assert first["previous"] is None
    item = first["jobs"][0]
    assert item["page_url"] == f"/jobs/{item['ticket']}/"
    assert item["status_url"] == f"/jobs/{item['ticket']}/status"
    assert item["title"] == "job 24"
    second = client.get(first["next"], **JSON).json()
    assert [j["ticket"] for j in second["jobs"]] == [
        str(j.pk) for j in reversed(jobs[:5])
    ]
    assert second["previous"] == "/jobs/?page=1"
    assert second["next"] is None


def test_a_signed_in_user_sees_their_own_jobs_only_whatever_their_permissions(
    client, django_user_model
):
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    boss.user_permissions.set(Permission.objects.filter(codename="view_job"))
    mine = make_jobs(2, submitted_by=boss)
    make_jobs(2, submitted_by=django_user_model.objects.create_user("other"))
    make_jobs(2, submitter_session="anonymous-visitor")
    client.force_login(boss)
    listed = client.get("/jobs/", **JSON).json()
    assert {j["ticket"] for j in listed["jobs"]} == {str(j.pk) for j in mine}


def test_a_visitor_without_a_session_has_no_jobs_and_gets_no_session(client):
    make_jobs(2, submitter_session="someone")
    answer = client.get("/jobs/", **JSON)
    assert answer.json()["jobs"] == []
    assert answer.json()["pages"] == 1
    assert "sessionid" not in answer.cookies


@pytest.mark.parametrize("page", ["0", "3", "-1", "abc", "1e3", "99999999999999999999"])
def test_a_page_that_does_not_exist_is_a_clear_404(client, page):
    make_jobs(25, submitter_session=own_session(client))
    answer = client.get("/jobs/", {"page": page}, **JSON)
    assert answer.status_code == 404
    assert answer.json() == {"error": "No such page."}


def test_the_page_links_each_job_and_the_status_page_links_back(client):
    (job,) = make_jobs(1, submitter_session=own_session(client))
    page = client.get("/jobs/")
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert f'href="/jobs/{job.pk}/"' in html
    assert "job 0" in html
    status_page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'id="your-jobs" href="/jobs/"' in status_page


def test_html_in_a_title_is_escaped(client):
    Job.objects.create(
        task_path="tests.tasks.noop",
        title="<script>alert(1)</script>",
        enqueued_at=timezone.now(),
        submitter_session=own_session(client),
    )
    html = client.get("/jobs/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_a_page_costs_the_same_few_queries_however_many_jobs(client):
    make_jobs(60, submitter_session=own_session(client))
    client.get("/jobs/", **JSON)  # the session is loaded once per request
    with CaptureQueriesContext(connection) as queries:
        answer = client.get("/jobs/", {"page": "2"}, **JSON)
    assert len(answer.json()["jobs"]) == 20
    # The session, the count and the page.
    assert len(queries) <= 3, [q["sql"] for q in queries]
