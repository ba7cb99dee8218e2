from __future__ import annotations

import csv
import io

import psycopg
import pytest
from django.db import connection
from django.test import Client, override_settings

from slowjobs.models import Job
from slowjobs.web.jobkeys import key_for
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)

JSON = {"HTTP_ACCEPT": "application/json"}


def test_api_client_gets_202_with_ticket_and_location(client, finished):
    response = client.post("/demo/report/", {"rows": 5, "row_ms": 0}, **JSON)
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"ticket", "status_url", "page_url"}
    key = key_for(body["ticket"])
    base = f"http://testserver/jobs/{body['ticket']}"
    assert body["status_url"] == f"{base}/status?key={key}"
    assert body["page_url"] == f"{base}/?key={key}"
    assert response["Location"] == body["status_url"]
    finished.wait(body["ticket"])
    status = client.get(body["status_url"]).json()
    assert status["status"] == "succeeded"
    assert status["result"]["rows"] == 5
    download = client.get(status["result_url"])
    assert download.status_code == 200
    assert "attachment" in download["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert [int(row[0]) for row in rows[1:]] == [1, 2, 3, 4, 5]


def test_browser_form_post_is_redirected_to_the_status_page(client):
    client.get("/")  # a visitor first loads the form
    response = client.post("/demo/report/", {"rows": 3, "row_ms": 0})
    assert response.status_code == 303
    ticket = Job.objects.get().pk
    assert response["Location"] == f"/jobs/{ticket}/"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"rows": 0, "row_ms": 0}, "rows"),
        ({"rows": 100001, "row_ms": 0}, "rows"),
        ({"rows": "many", "row_ms": 0}, "rows"),
        ({"rows": 5, "row_ms": 10001}, "row_ms"),
        ({"rows": 5}, "row_ms"),
    ],
)
def test_invalid_input_is_400_with_errors_and_no_job(client, data, field):
    response = client.post("/demo/report/", data, **JSON)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Job.objects.exists()


def test_invalid_browser_input_re_renders_the_form(client):
    response = client.post("/demo/report/", {"rows": 0, "row_ms": 0})
    assert response.status_code == 400
    assert b"<form" in response.content
    assert b"greater than or equal to 1" in response.content


@override_settings(SLOWJOBS_WORKERS=1, SLOWJOBS_QUEUE_SIZE=0)
def test_a_full_executor_is_503_with_retry_after(client):
    gate = tasks.gate("demo-full")
    tasks.wait_for_gate.enqueue("demo-full")
    response = client.post("/demo/report/", {"rows": 1, "row_ms": 0}, **JSON)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "only job place is taken" in response.json()["error"]
    assert Job.objects.count() == 1
    gate.set()


def test_post_with_a_session_cookie_needs_the_csrf_token():
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/")
    browser.cookies["sessionid"] = "some-session"
    refused = browser.post("/demo/report/", {"rows": 1, "row_ms": 0}, **JSON)
    assert refused.status_code == 403
    token = page.context["csrf_token"]
    accepted = browser.post(
        "/demo/report/",
        {"rows": 1, "row_ms": 0, "csrfmiddlewaretoken": token},
        **JSON,
    )
    assert accepted.status_code == 202


def test_post_without_a_session_cookie_is_an_api_call():
    api = Client(enforce_csrf_checks=True)
    response = api.post("/demo/report/", {"rows": 1, "row_ms": 0}, **JSON)
    assert response.status_code == 202
    # The anonymous client now owns the job through the session it was given.
    assert api.get(response.json()["status_url"]).status_code == 200


def test_report_page_is_get_or_405(client):
    assert client.get("/demo/report/").status_code == 405


def test_a_stopping_server_answers_503(client):
    from slowjobs.lifecycle.control import shutdown

    shutdown(timeout=1)
    response = client.post("/demo/report/", {"rows": 1, "row_ms": 0}, **JSON)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "shutting down" in response.json()["error"]
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_first_job_creates_one_session_and_sends_its_cookie():
    from django.contrib.sessions.models import Session
    from django.test import Client

    client = Client()
    reply = client.post(
        "/demo/report/",
        {"rows": 1, "row_ms": 0},
        headers={"Accept": "application/json"},
    )
    assert reply.status_code == 202
    cookie = reply.cookies["sessionid"]
    assert cookie["httponly"]
    assert "Cookie" in reply["Vary"]
    assert Session.objects.filter(session_key=cookie.value).count() == 1
    status = client.get(reply.json()["status_url"])
    assert status.status_code == 200


def test_a_first_job_writes_its_session_once():
    from django.contrib.sessions.models import Session
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = Client()
    json_wanted = {"Accept": "application/json"}
    with CaptureQueriesContext(connection) as queries:
        reply = client.post(
            "/demo/report/", {"rows": 1, "row_ms": 0}, headers=json_wanted
        )
    assert reply.status_code == 202
    session_writes = [
        q["sql"]
        for q in queries.captured_queries
        if Session._meta.db_table in q["sql"]
        and q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))
    ]
    assert len(session_writes) == 1, session_writes


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs a server that drops connections"
)
def test_a_read_on_a_connection_the_database_dropped_is_answered(client, finished):
    """After a database restart each kept connection is broken; the first
    read on it is answered on a fresh one, not with a 503."""
    body = client.post("/demo/report/", {"rows": 2, "row_ms": 0}, **JSON).json()
    finished.wait(body["ticket"])
    assert client.get(body["status_url"]).status_code == 200
    backend_pid = connection.connection.info.backend_pid
    settings = connection.get_connection_params()
    with psycopg.connect(**settings, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
    response = client.get(body["status_url"])
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "succeeded"
    assert connection.connection.info.backend_pid != backend_pid
