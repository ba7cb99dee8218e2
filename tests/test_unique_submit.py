"""A unique-key submit leads only those who may see the job to it.

The 202 of a unique-key submit that finds the job already under way names
that job, with its key: handed to another visitor, it would read someone
else's job and result.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from slowjobs.jobs import files as jobfiles
from slowjobs.models import Job
from tests import tasks

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.urls_unique"),
]

JSON = {"HTTP_ACCEPT": "application/json"}


def _client(user_model, name, *codenames):
    user = user_model.objects.create_user(name)
    if codenames:
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_another_submitter_is_told_the_job_is_under_way(django_user_model, finished):
    owner = _client(django_user_model, "owner")
    other = _client(django_user_model, "other")
    manager = _client(django_user_model, "manager", "view_job")
    gate = tasks.gate("sync-7")
    first = owner.post("/sync/", {"account": 7}, **JSON)
    assert first.status_code == 202
    ticket = first.json()["ticket"]
    try:
        refused = other.post("/sync/", {"account": 7}, **JSON)
        assert refused.status_code == 409
        assert refused["Retry-After"].isdigit()
        assert "already under way" in refused.json()["error"]
        assert ticket not in refused.content.decode()
        assert "Location" not in refused
        # An anonymous visitor with a session of its own is someone else too.
        assert Client().post("/sync/", {"account": 7}, **JSON).status_code == 409
        # The owner, and staff who may read every job, are led to it.
        again = owner.post("/sync/", {"account": 7}, **JSON)
        assert (again.status_code, again.json()["ticket"]) == (202, ticket)
        seen = manager.post("/sync/", {"account": 7}, **JSON)
        assert (seen.status_code, seen.json()["ticket"]) == (202, ticket)
        # Another account is another job, the other user's own.
        own = other.post("/sync/", {"account": 8}, **JSON)
        assert own.status_code == 202
        tasks.gate("sync-8").set()
        assert Job.objects.count() == 2
    finally:
        gate.set()
    finished.wait(ticket)
    # Once it has ended the key is free: the other user gets a job of theirs.
    later = other.post("/sync/", {"account": 7}, **JSON)
    assert later.status_code == 202
    assert later.json()["ticket"] != ticket


def test_a_first_submit_is_the_submitters_own_however_they_are_known():
    """A cookieless API client, and a view that names the submitter itself
    (``submitted_by``), get the job they just started."""
    from django.test import RequestFactory

    from slowjobs.responses import submit
    from slowjobs.submitter import submitted_by

    gates = [tasks.gate("sync-21"), tasks.gate("sync-22")]
    try:
        first = Client().post("/sync/", {"account": 21}, **JSON)
        assert first.status_code == 202, first.content
        request = RequestFactory().post("/x/", HTTP_ACCEPT="application/json")
        with submitted_by(session_key="a-session-of-the-views-own"):
            named = submit(request, tasks.sync_account, 22)
            assert named.status_code == 202, named.content
            again = submit(request, tasks.sync_account, 22)
        assert (
            json.loads(again.content)["ticket"] == json.loads(named.content)["ticket"]
        )
        with submitted_by(session_key="another-session"):
            assert submit(request, tasks.sync_account, 22).status_code == 409
    finally:
        for gate in gates:
            gate.set()


def test_a_browser_gets_a_page_that_says_so(django_user_model):
    owner = _client(django_user_model, "owner")
    other = _client(django_user_model, "other")
    gate = tasks.gate("sync-9")
    try:
        assert owner.post("/sync/", {"account": 9}).status_code == 303
        page = other.post("/sync/", {"account": 9}, HTTP_REFERER="http://testserver/")
        assert page.status_code == 409
        assert page["Retry-After"].isdigit()
        html = page.content.decode()
        assert "This job is already under way" in html
        assert "/jobs/" not in html
    finally:
        gate.set()


def test_an_upload_led_to_an_earlier_job_is_not_kept(django_user_model):
    """The job that holds the key has its own input: the new upload would
    stay on disk with no job to remove it."""
    owner = _client(django_user_model, "owner")
    other = _client(django_user_model, "other")
    uploads = jobfiles.root()

    def stored() -> set[Path]:
        return {path for path in uploads.rglob("*") if path.is_file()}

    gate = tasks.gate("sync-11")
    try:
        before = stored()
        first = owner.post(
            "/sync-upload/",
            {"account": 11, "file": SimpleUploadedFile("a.txt", b"first")},
            **JSON,
        )
        assert first.status_code == 202
        kept = stored() - before
        assert len(kept) == 1
        for client, status in ((owner, 202), (other, 409)):
            reply = client.post(
                "/sync-upload/",
                {"account": 11, "file": SimpleUploadedFile("b.txt", b"second")},
                **JSON,
            )
            assert reply.status_code == status
            assert stored() - before == kept  # the second file is gone
        job = Job.objects.get(pk=first.json()["ticket"])
        assert jobfiles.resolve(job.input_file).read_bytes() == b"first"
    finally:
        gate.set()
