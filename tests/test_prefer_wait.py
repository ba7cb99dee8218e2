"""``Prefer: wait=N`` on a submit: a job done within N seconds is answered
in the same response (RFC 7240); a slower one gets the usual 202."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections
from django.test import Client, override_settings

from slowjobs.models import Job
from slowjobs.web import waiting

pytestmark = pytest.mark.django_db(transaction=True)

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture(autouse=True)
def _places(settings):
    # Django's test client says it is a single-threaded server, where by
    # default nobody waits (see the test of that below).
    settings.SLOWJOBS_MAX_WAITERS = 4


def _submit(client, rows, row_ms, prefer=None, **headers):
    if prefer is not None:
        headers["HTTP_PREFER"] = prefer
    return client.post(
        "/demo/report/", {"rows": rows, "row_ms": row_ms}, **JSON, **headers
    )


def test_a_quick_job_is_answered_200_with_its_status(client):
    began = time.monotonic()
    response = _submit(client, 5, 20, "wait=5")
    took = time.monotonic() - began
    assert response.status_code == 200
    assert response["Preference-Applied"] == "wait=5"
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["result"]["rows"] == 5
    assert body["result_url"]
    assert response["Content-Location"].endswith(
        f"/jobs/{body['ticket']}/status?key="
        + response["Content-Location"].split("key=")[1]
    )
    assert took < 4  # not the whole wait
    # The same as the status the client would have polled for.
    assert client.get(response["Content-Location"]).json() == body


def test_a_slow_job_is_answered_202_after_the_wait_and_goes_on(client):
    began = time.monotonic()
    response = _submit(client, 15, 100, "respond-async, wait=1")
    took = time.monotonic() - began
    assert response.status_code == 202
    assert response["Preference-Applied"] == "wait=1"
    assert 0.9 <= took < 3
    ticket = response.json()["ticket"]
    assert Job.objects.get(pk=ticket).status in ("queued", "running")


@pytest.mark.parametrize(
    "prefer",
    ["", "respond-async", "wait=", "wait=abc", "wait=-1", "wait=0", "handling=lenient"],
)
def test_without_a_wait_the_answer_is_202_at_once(client, prefer):
    began = time.monotonic()
    response = _submit(client, 5, 0, prefer)
    assert response.status_code == 202
    assert "Preference-Applied" not in response
    assert time.monotonic() - began < 1.0


def test_the_wait_is_cut_to_the_setting(client, settings):
    settings.SLOWJOBS_MAX_WAIT = 1
    began = time.monotonic()
    response = _submit(client, 15, 100, "wait=60")
    assert response.status_code == 202
    assert response["Preference-Applied"] == "wait=1"
    assert time.monotonic() - began < 3


def test_no_place_to_wait_answers_202_at_once(client, settings):
    settings.SLOWJOBS_MAX_WAITERS = 0
    began = time.monotonic()
    response = _submit(client, 5, 20, "wait=5")
    assert response.status_code == 202
    assert "Preference-Applied" not in response
    assert time.monotonic() - began < 1.0


def test_a_single_threaded_server_lets_nobody_wait_by_default(client, settings):
    settings.SLOWJOBS_MAX_WAITERS = None
    began = time.monotonic()
    response = _submit(client, 3, 0, "wait=5", **{"wsgi.multithread": False})
    assert response.status_code == 202
    assert "Preference-Applied" not in response
    assert time.monotonic() - began < 1.0
    settings.SLOWJOBS_MAX_WAITERS = None
    threaded = _submit(client, 3, 0, "wait=5", **{"wsgi.multithread": True})
    assert threaded.status_code == 200


def test_one_visitor_holds_at_most_its_share_of_the_places(settings):
    settings.SLOWJOBS_MAX_WAITERS_PER_VISITOR = 1
    answers = {}

    def wait_long(name):
        answers[name] = _submit(Client(), 40, 100, "wait=3")  # held 3 s
        connections.close_all()

    first = threading.Thread(target=wait_long, args=("first",))
    first.start()
    deadline = time.monotonic() + 5
    while waiting.waiting_now() < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    began = time.monotonic()
    second = _submit(Client(), 3, 0, "wait=5")  # the same address: no place
    assert second.status_code == 202
    assert "Preference-Applied" not in second
    assert time.monotonic() - began < 1.0
    other = _submit(Client(), 3, 0, "wait=5", REMOTE_ADDR="127.0.0.9")
    assert other.status_code == 200  # another visitor still waits
    first.join()
    assert answers["first"].status_code == 202
    assert answers["first"]["Preference-Applied"] == "wait=3"
    assert waiting.waiting_now() == 0


def test_a_browser_that_waited_is_sent_to_the_finished_page(client):
    client.get("/")
    response = client.post(
        "/demo/report/", {"rows": 3, "row_ms": 0}, HTTP_PREFER="wait=5"
    )
    assert response.status_code == 303
    assert response["Preference-Applied"] == "wait=5"
    page = client.get(response["Location"])
    assert b'<span id="status" class="status-succeeded">' in page.content


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("wait=5", 5),
        ("WAIT = 7", 7),
        ('wait="3"', 3),
        ("respond-async, wait=10", 10),
        ("handling=strict; x=1, wait=2;foo", 2),
        ("wait=1, wait=9", 1),
        ("wait=1.5", None),
        ("wait=99999999999", None),
        ("waiting=3", None),
        ("", None),
        (",,,", None),
    ],
)
def test_preferences_are_read_as_rfc_7240_says(header, seconds):
    assert waiting.preferred_wait(header) == seconds


def test_no_wait_inside_a_transaction_nor_for_a_job_deferred_past_it():
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    assert waiting.can_wait(5)
    with transaction.atomic():  # the job would start at the commit
        assert not waiting.can_wait(5)
    assert waiting.can_wait(5, timezone.now() + timedelta(seconds=2))
    assert not waiting.can_wait(5, timezone.now() + timedelta(seconds=60))


def test_each_answered_wait_is_signalled_with_its_outcome(client, settings):
    from slowjobs.signals import submit_waited

    seen = []

    def receive(sender, **kwargs):
        seen.append(kwargs)

    submit_waited.connect(receive)
    try:
        _submit(client, 2, 0, "wait=5")
        _submit(client, 15, 100, "wait=1")
        settings.SLOWJOBS_MAX_WAITERS = 0
        _submit(client, 2, 0, "wait=5")
        _submit(client, 2, 0)  # asked for no wait: nothing to tell
    finally:
        submit_waited.disconnect(receive)
    assert [s["outcome"] for s in seen] == ["ended", "timed_out", "no_place"]
    assert {s["task"] for s in seen} == {"project.tasks.generate_report"}
    assert 0.9 <= seen[1]["seconds"] < 3
    assert seen[2]["seconds"] < 0.5


@override_settings(SLOWJOBS_WORKERS=1, SLOWJOBS_QUEUE_SIZE=0)
def test_a_full_executor_answers_503_at_once_without_waiting(client):
    from tests import tasks

    gate = tasks.gate("prefer-full")
    tasks.wait_for_gate.enqueue("prefer-full")
    try:
        began = time.monotonic()
        response = _submit(client, 1, 0, "wait=5")
        assert response.status_code == 503
        assert response["Retry-After"].isdigit()
        assert "Preference-Applied" not in response
        assert time.monotonic() - began < 4  # not the 5 s it asked to wait
        assert Job.objects.count() == 1  # only the one holding the place
    finally:
        gate.set()


def test_with_memcached_down_a_job_of_this_process_is_still_answered(
    client, own_memcached
):
    """The wait hears this process's own jobs end; the live store being
    away changes nothing for them."""
    assert _submit(client, 2, 0, "wait=5").status_code == 200  # store reachable
    own_memcached.stop()
    began = time.monotonic()
    response = _submit(client, 5, 20, "wait=5")
    assert response.status_code == 200, response.content
    assert response["Preference-Applied"] == "wait=5"
    assert response.json()["status"] == "succeeded"
    assert time.monotonic() - began < 4
    slow = _submit(client, 15, 100, "wait=1")
    assert slow.status_code == 202
    assert Job.objects.get(pk=slow.json()["ticket"]).status in ("queued", "running")
