"""Admin actions as jobs in Chromium, against gunicorn: select rows, run the
action, watch its bar on the job's page, download its CSV; the same action
on the same rows while the first run goes on leads to the first one's page."""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from slowjobs.models import Job, JobStatus
from tests.adminapp.admin import RELEASE
from tests.conftest import start_gunicorn, stop
from tests.staff import log_in, staff_user
from tests.test_admin import make_job
from tests.test_browser import TIMEOUT_MS

pytestmark = pytest.mark.django_db(transaction=True)

JOB_PAGE = re.compile(r"/jobs/[0-9a-f-]{36}/$")


@pytest.fixture
def server(collected_static, tmp_path: Path, memcached: Any) -> Any:
    (Path(settings.MEDIA_ROOT) / RELEASE).unlink(missing_ok=True)
    server = start_gunicorn(
        tmp_path,
        DJANGO_SETTINGS_MODULE="tests.server_settings",
        SLOWJOBS_MEMCACHED=memcached.location,
    )
    yield server
    stop(server.process)
    (Path(settings.MEDIA_ROOT) / RELEASE).unlink(missing_ok=True)


def staff_page(browser: Any, url: str, django_user_model: Any) -> Any:
    staff_user(django_user_model, "clerk", "view_job")
    context = browser.new_context(base_url=url, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    log_in(page, "clerk")
    return page


def run_action(page: Any, action: str, tickets: list[str]) -> None:
    page.goto("/admin/slowjobs/job/")
    for ticket in tickets:
        page.check(f"input.action-select[value='{ticket}']")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")
    page.wait_for_url(JOB_PAGE)


def wait_for_status(page: Any, label: str) -> None:
    # Polled on a timer: a page behind another of its context gets no
    # animation frames, which the default polling waits for.
    page.wait_for_function(
        "label => document.getElementById('status').textContent.trim() === label",
        arg=label,
        polling=100,
    )


def downloaded_rows(page: Any) -> list[list[str]]:
    with page.expect_download() as download:
        page.click("#download")
    return list(csv.reader(io.StringIO(download.value.path().read_text())))


def test_an_admin_action_runs_as_a_job_with_its_bar_and_its_download(
    browser, server, django_user_model
):
    jobs = [make_job(), make_job(JobStatus.FAILED), make_job(), make_job()]
    tickets = sorted(str(job.pk) for job in jobs)
    page = staff_page(browser, server.url, django_user_model)
    try:
        run_action(page, "export_jobs_paced", tickets[:3])
        first = page.url
        assert page.inner_text("h1") == "Export selected jobs, paced"
        assert page.is_visible("#cancel-form")
        page.wait_for_function(
            "text => document.getElementById('message').textContent.includes(text)",
            arg="waiting to be let go",
            polling=100,
        )
        # The same rows again while it goes on: the first run's page.
        again = page.context.new_page()
        run_action(again, "export_jobs_paced", list(reversed(tickets[:3])))
        assert again.url == first
        again.close()
        assert Job.objects.filter(title="Export selected jobs, paced").count() == 1
        (Path(settings.MEDIA_ROOT) / RELEASE).touch()
        page.wait_for_function(
            "id => { const bar = document.getElementById(id);"
            " return bar.value > 0 && bar.value < 100; }",
            arg="bar",
            polling=100,
        )
        wait_for_status(page, "Succeeded")
        assert page.eval_on_selector("#bar", "bar => bar.value") == 100
        rows = downloaded_rows(page)
        assert sorted(row[0] for row in rows[1:]) == tickets[:3]
        # The job admin's own export, on every row: done at once.
        run_action(page, "export_jobs_csv", tickets)
        wait_for_status(page, "Succeeded")
        exported = downloaded_rows(page)
        assert rows[0] == exported[0]
        assert set(tickets) <= {row[0] for row in exported[1:]}
        export = Job.objects.get(title="Export selected jobs as CSV")
        assert export.submitted_by.username == "clerk"
    finally:
        page.context.close()


def test_an_admin_action_cut_off_by_a_crash_is_finished_by_the_next_server(
    browser, collected_static, tmp_path: Path, memcached, django_user_model
):
    """The job names its action by site, model and name: a fresh server
    process finds it again, and runs it to the end by itself."""
    from tests.conftest import kill_group

    env = {
        "DJANGO_SETTINGS_MODULE": "tests.server_settings",
        "SLOWJOBS_MEMCACHED": memcached.location,
        "SLOWJOBS_LEASE": "2",
        "SLOWJOBS_HEARTBEAT_INTERVAL": "0.5",
    }
    release = Path(settings.MEDIA_ROOT) / RELEASE
    release.unlink(missing_ok=True)
    jobs = [make_job(), make_job()]
    first = start_gunicorn(tmp_path, **env)
    page = staff_page(browser, first.url, django_user_model)
    try:
        run_action(page, "export_jobs_paced", [str(job.pk) for job in jobs])
        ticket = page.url.rstrip("/").rsplit("/", 1)[1]
        deadline = time.monotonic() + 20
        while Job.objects.get(pk=ticket).status != JobStatus.RUNNING:
            assert time.monotonic() < deadline, "the action's job did not start"
            time.sleep(0.05)
    finally:
        page.context.close()
        kill_group(first.process)
    release.touch()
    second = start_gunicorn(tmp_path, **env)  # nobody runs resume_jobs
    try:
        deadline = time.monotonic() + 60
        while (job := Job.objects.get(pk=ticket)).status not in JobStatus.finished():
            assert time.monotonic() < deadline, (job.status, job.owner)
            time.sleep(0.1)
        assert job.status == JobStatus.SUCCEEDED, job.error_message
        assert job.attempts == 2
        assert job.result["jobs"] == 2
        assert job.submitted_by.username == "clerk"
    finally:
        stop(second.process)
        release.unlink(missing_ok=True)
