"""No way in: a page of another site submits nothing, a job's key opens that
job alone, JSON clients get JSON for every error, and owners read plain
errors."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from slowjobs.models import Job, JobStatus
from slowjobs.web.jobkeys import key_for
from tests.sessions import session_client

pytestmark = pytest.mark.django_db(transaction=True)

JSON = {"accept": "application/json"}
REPORT = {"rows": 3, "row_ms": 0}
ANOTHER_SITE = "A page of another site may not submit here."


def _report(client: Client, **headers: str):
    return client.post("/demo/report/", REPORT, headers={**JSON, **headers})


def test_a_post_from_another_site_is_refused_with_or_without_a_cookie(finished):
    cookieless = Client()
    for headers in (
        {"sec-fetch-site": "cross-site"},
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"origin": "http://testserver.evil.example", "sec-fetch-site": "same-site"},
    ):
        refused = _report(cookieless, **headers)
        assert refused.status_code == 403, headers
        assert refused.json() == {"error": ANOTHER_SITE}
        assert "sessionid" not in refused.cookies  # nobody's session replaced
    visitor = Client(enforce_csrf_checks=True)
    visitor.get("/")  # the form page: a CSRF cookie
    token = visitor.cookies["csrftoken"].value
    mine = _report(visitor, **{"x-csrftoken": token})
    assert mine.status_code == 202
    cookie = visitor.cookies["sessionid"].value
    # With the visitor's cookie and even the token, another site is refused.
    attack = _report(visitor, **{"x-csrftoken": token, "sec-fetch-site": "cross-site"})
    assert attack.status_code == 403
    assert visitor.cookies["sessionid"].value == cookie
    assert Job.objects.count() == 1
    assert Session.objects.count() == 1


def test_this_site_and_trusted_origins_may_submit(settings, finished):
    assert _report(Client(), origin="http://testserver").status_code == 202
    assert _report(Client(), **{"sec-fetch-site": "same-origin"}).status_code == 202
    assert _report(Client(), **{"sec-fetch-site": "none"}).status_code == 202
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.example.com", "http://partner.test"]
    assert _report(Client(), origin="http://partner.test").status_code == 202
    assert _report(Client(), origin="https://app.example.com").status_code == 202
    assert _report(Client(), origin="http://app.example.com").status_code == 403


def test_a_cancel_from_another_site_is_refused():
    client, key = session_client()
    job = Job.objects.create(
        task_path="project.tasks.generate_report",
        submitter_session=key,
        enqueued_at=timezone.now(),
        run_after=timezone.now() + timezone.timedelta(hours=1),
    )
    refused = client.post(
        f"/jobs/{job.pk}/cancel", headers={**JSON, "sec-fetch-site": "cross-site"}
    )
    assert refused.status_code == 403
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_a_session_cookie_without_the_token_gets_json_naming_the_reason(finished):
    client, _ = session_client(enforce_csrf_checks=True)
    refused = _report(client)
    assert refused.status_code == 403
    assert refused.json()["error"].startswith("CSRF check failed: CSRF cookie")
    page = client.post("/demo/report/", REPORT)  # a browser gets Django's page
    assert page.status_code == 403
    assert page["Content-Type"].startswith("text/html")


def test_a_job_s_key_opens_that_job_alone_for_a_client_without_cookies(finished):
    accepted = _report(Client()).json()
    ticket, status_url = accepted["ticket"], accepted["status_url"]
    finished.wait(ticket)
    other = _report(Client()).json()["ticket"]
    stranger = Client()  # no cookie at all: the key is the only credential
    status = stranger.get(status_url)
    assert status.status_code == 200
    assert status.json()["status"] == "succeeded"
    assert status.json()["result_url"] == f"/jobs/{ticket}/result?key={key_for(ticket)}"
    download = stranger.get(status.json()["result_url"])
    assert download.status_code == 200
    page = stranger.get(accepted["page_url"])
    assert page.status_code == 200
    assert f"/jobs/{ticket}/status?key={key_for(ticket)}" in page.text
    # Without it, with a wrong one, or with another job's: the stranger's 404.
    for url in (
        f"/jobs/{ticket}/status",
        f"/jobs/{ticket}/status?key=x{key_for(ticket)}",
        f"/jobs/{other}/status?key={key_for(ticket)}",
        f"/jobs/{ticket}/status?key={'a' * 5000}",
    ):
        answer = stranger.get(url)
        assert answer.status_code == 404, url
        assert answer.json() == {"error": "No such job."}


def test_a_rotated_secret_keeps_old_keys_only_while_it_is_a_fallback(
    settings, finished
):
    accepted = _report(Client()).json()
    ticket, old_url = accepted["ticket"], accepted["status_url"]
    finished.wait(ticket)
    old_secret = settings.SECRET_KEY
    settings.SECRET_KEY = "a-rotated-secret-" + "r" * 40
    settings.SECRET_KEY_FALLBACKS = [old_secret]
    assert Client().get(old_url).status_code == 200  # signed under the old one
    new_key = key_for(ticket)
    assert new_key not in old_url
    assert Client().get(f"/jobs/{ticket}/status?key={new_key}").status_code == 200
    settings.SECRET_KEY_FALLBACKS = []
    assert Client().get(old_url).status_code == 404  # withdrawn
    assert Client().get(f"/jobs/{ticket}/status?key={new_key}").status_code == 200


def test_a_job_s_key_cancels_it_without_a_session(settings):
    settings.SLOWJOBS_MAX_JOBS_PER_ADDRESS = 0
    accepted = (
        Client()
        .post("/demo/report/", {"rows": 100000, "row_ms": 50}, headers=JSON)
        .json()
    )
    ticket = accepted["ticket"]
    cancel = Client().post(f"/jobs/{ticket}/cancel?key={key_for(ticket)}", headers=JSON)
    assert cancel.status_code == 202
    assert cancel.json()["cancel_requested"] is True
    assert Client().post(f"/jobs/{ticket}/cancel", headers=JSON).status_code == 404


def test_json_clients_get_json_for_django_s_own_errors():
    wrong_method = Client().get("/demo/report/", headers=JSON)
    assert wrong_method.status_code == 405
    assert wrong_method["Allow"] == "POST"
    assert wrong_method.json() == {"error": "This method is not allowed here."}
    # Past DATA_UPLOAD_MAX_NUMBER_FIELDS: Django's own 400 (TooManyFieldsSent).
    fields = "&".join(f"f{index}=1" for index in range(1100))
    broken = Client().post(
        "/demo/report/",
        data=fields,
        content_type="application/x-www-form-urlencoded",
        headers=JSON,
    )
    assert broken.status_code == 400
    assert broken.json() == {"error": "The request could not be understood."}
    no_result = Client().get(f"/jobs/{Job().pk}/result", headers=JSON)
    assert no_result.status_code == 404
    assert no_result.json() == {"error": "No such job."}
    # The status URL always answers JSON, whatever the client accepts.
    assert Client().post("/jobs/x/status").json() == {
        "error": "This method is not allowed here."
    }


def test_owners_read_a_plain_error_and_staff_the_real_one(django_user_model):
    client, key = session_client()
    job = Job.objects.create(
        task_path="project.tasks.generate_report",
        status=JobStatus.FAILED,
        error_class="builtins.PermissionError",
        error_message="[Errno 13] Permission denied: '/srv/site/media/results/x.csv'",
        submitter_session=key,
        enqueued_at=timezone.now(),
        finished_at=timezone.now(),
    )
    mine = client.get(f"/jobs/{job.pk}/status").json()
    assert "/srv" not in mine["error"]
    assert "Errno" not in mine["error"]
    assert mine["error"].startswith("The job stopped because of a problem")
    assert "/srv" not in client.get(f"/jobs/{job.pk}/").text
    staff = django_user_model.objects.create_user("ops")
    staff.user_permissions.add(Permission.objects.get(codename="view_job"))
    operator = Client()
    operator.force_login(staff)
    assert (
        operator.get(f"/jobs/{job.pk}/status").json()["error"].startswith("[Errno 13]")
    )
    # A task's own error is the owner's to read.
    Job.objects.filter(pk=job.pk).update(
        error_class="builtins.ValueError", error_message="rows must be positive"
    )
    assert client.get(f"/jobs/{job.pk}/status").json()["error"] == (
        "rows must be positive"
    )


def test_an_unknown_url_under_the_jobs_is_a_json_404_for_json_clients():
    for method in ("get", "post"):
        answer = getattr(Client(), method)(
            f"/jobs/{Job().pk}/nothing-here", headers=JSON
        )
        assert answer.status_code == 404
        assert answer.json() == {"error": "No such job."}
    assert Client().get("/jobs/x/y/z")["Content-Type"].startswith("text/html")
    ticket = Job().pk
    moved = Client().get(f"/jobs/{ticket}?key=k")
    assert moved.status_code == 301
    assert moved["Location"] == f"/jobs/{ticket}/?key=k"
