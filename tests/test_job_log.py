"""A job's own log: what its code logs while it runs, kept with the job.

Real job threads and real job processes, several at once: each job keeps
its own lines and no one else's, within the bounds, counting what made way.
"""

from __future__ import annotations

import logging
import threading

import pytest

from slowjobs.models import Job, JobStatus
from slowjobs.progress import get_store
from slowjobs.progress.base import log_key
from slowjobs.progress.records import opened
from tests import tasks
from tests.staff import log_in, staff_user

pytestmark = pytest.mark.django_db(transaction=True)


def messages(ticket: str) -> list[str]:
    return [line["message"] for line in Job.objects.get(pk=ticket).log]


@pytest.mark.parametrize("task", [tasks.log_lines, tasks.log_lines_in_process])
def test_concurrent_jobs_keep_their_own_lines_and_nothing_from_outside(task, finished):
    outside = logging.getLogger("tests.joblog")
    stop = threading.Event()

    def chatter() -> None:  # a request thread logging all the while
        while not stop.is_set():
            outside.warning("outside any job")
            stop.wait(0.005)

    chatterer = threading.Thread(target=chatter)
    chatterer.start()
    try:
        results = [task.enqueue(name, 30, 0.01) for name in ("alpha", "beta", "gamma")]
        for result in results:
            finished.wait(result.id, timeout=60)
    finally:
        stop.set()
        chatterer.join()
    for name, result in zip(("alpha", "beta", "gamma"), results, strict=True):
        job = Job.objects.get(pk=result.id)
        assert job.status == JobStatus.SUCCEEDED, job.error_message
        assert messages(result.id) == [f"{name} line {n}" for n in range(30)]
        assert {line["logger"] for line in job.log} == {"tests.joblog"}
        assert {line["level"] for line in job.log} == {"WARNING"}
        assert job.log_dropped == 0


@pytest.mark.parametrize("task", [tasks.log_lines, tasks.log_lines_in_process])
def test_the_newest_lines_are_kept_within_the_bounds_and_the_rest_counted(
    task, settings, finished
):
    settings.SLOWJOBS_JOB_LOG_LINES = 10
    result = task.enqueue("many", 25)
    finished.wait(result.id, timeout=60)
    job = Job.objects.get(pk=result.id)
    assert messages(result.id) == [f"many line {n}" for n in range(15, 25)]
    assert job.log_dropped == 15


def test_long_lines_are_bounded_by_bytes_too(settings, finished):
    settings.SLOWJOBS_JOB_LOG_BYTES = 2000
    result = tasks.echo_log.enqueue("x" * 900, 5)
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert 1 <= len(job.log) <= 2
    assert job.log_dropped == 5 - len(job.log)


def test_capture_off_keeps_nothing(settings, finished):
    settings.SLOWJOBS_JOB_LOG_LINES = 0
    result = tasks.log_lines.enqueue("quiet", 3)
    finished.wait(result.id)
    assert Job.objects.get(pk=result.id).log == []


def test_the_lines_are_live_in_memcached_while_it_runs(memcached, finished):
    result = tasks.log_then_wait.enqueue("live-log")
    key = log_key(result.id)
    store = get_store()
    deadline = 50
    record = None
    while deadline and record is None:
        found = store.get(key)
        record = opened(key, found) if found is not None else None
        if record is None:
            threading.Event().wait(0.1)
            deadline -= 1
    assert record is not None, "the log never reached memcached"
    assert [line["message"] for line in record["lines"]] == ["live-log waiting"]
    tasks.gate("live-log").set()
    finished.wait(result.id)
    assert store.get(key) is None  # it goes with the live record
    assert messages(result.id) == ["live-log waiting"]


def test_the_status_shows_the_log_to_staff_and_to_owners_who_were_meant_to(
    finished, django_user_model
):
    from django.contrib.auth.models import Permission

    from slowjobs.web.submitter import submitted_by
    from tests.sessions import session_client

    owner, key = session_client()
    with submitted_by(session_key=key):
        private = tasks.log_lines.enqueue("private", 2)
        shared = tasks.log_lines_for_owner.enqueue("shared", 2)
    finished.wait(private.id)
    finished.wait(shared.id)
    assert "log" not in owner.get(f"/jobs/{private.id}/status").json()
    log = owner.get(f"/jobs/{shared.id}/status").json()["log"]
    assert [line["message"] for line in log["lines"]] == [
        "shared line 0",
        "shared line 1",
    ]
    assert log["dropped"] == 0
    staff = django_user_model.objects.create_user("staff", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename="view_job"))
    from django.test import Client

    viewer = Client()
    viewer.force_login(staff)
    seen = viewer.get(f"/jobs/{private.id}/status").json()["log"]
    assert [line["message"] for line in seen["lines"]] == [
        "private line 0",
        "private line 1",
    ]
    # A staff flag alone grants nothing, the log included.
    flagged = Client()
    flagged.force_login(django_user_model.objects.create_user("flag", is_staff=True))
    assert flagged.get(f"/jobs/{private.id}/status").status_code == 404
    # The owner's page shows the lines only where the task says so.
    assert "shared line 1" in owner.get(f"/jobs/{shared.id}/").content.decode()
    assert "private line 1" not in owner.get(f"/jobs/{private.id}/").content.decode()


def test_the_admin_follows_a_running_jobs_lines_in_chromium(
    browser, collected_static, tmp_path, memcached, django_user_model
):
    """The job runs in this process, the admin page is served by gunicorn:
    the lines reach it through memcached while the job runs."""
    from tests.conftest import start_gunicorn, stop

    staff_user(django_user_model, "watcher", "view_job")
    from django.conf import settings

    # The same secret: the server opens the records this process seals.
    server = start_gunicorn(
        tmp_path, SLOWJOBS_MEMCACHED=memcached.location, SECRET_KEY=settings.SECRET_KEY
    )
    context = browser.new_context(base_url=server.url)
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        log_in(page, "watcher")
        result = tasks.log_lines.enqueue("followed", 12, 0.4)
        page.goto(f"/admin/slowjobs/job/{result.id}/change/")
        first = page.inner_text("pre.slowjobs-log")
        assert "followed line 11" not in first
        page.wait_for_function(
            "() => document.querySelector('pre.slowjobs-log').textContent"
            ".includes('followed line 11')"
        )
        shown = page.inner_text("pre.slowjobs-log").splitlines()
        assert [line.split(": ", 1)[1] for line in shown] == [
            f"followed line {n}" for n in range(12)
        ]
        page.wait_for_function(
            "() => document.querySelector('pre.slowjobs-log').dataset.finished === '1'"
        )
    finally:
        context.close()
        stop(server.process)
