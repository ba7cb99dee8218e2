"""A new user's missteps: each is a system check with its fix, or a clear
refusal before anything is enqueued, never a traceback or a lost job."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone

from slowjobs.exceptions import InvalidTaskArguments
from slowjobs.models import Job, JobStatus
from slowjobs.tasksapi import TASKS_LOGGER
from tests import tasks
from tests.conftest import ROOT
from tests.services import free_port

pytestmark = pytest.mark.django_db(transaction=True)

JSON = {"HTTP_ACCEPT": "application/json"}
JSON_TYPE = "application/json"
IMMEDIATE = {
    "default": {
        "BACKEND": f"{TASKS_LOGGER}.backends.immediate.ImmediateBackend",
    }
}


def ids(**settings: object) -> dict[str, str]:
    with override_settings(**settings):
        return {message.id or "": message.msg for message in run_checks()}


def check_in_a_new_process(tmp_path, settings_text: str) -> subprocess.CompletedProcess:
    (tmp_path / "badsettings.py").write_text(
        "from tests.settings import *  # noqa\n" + textwrap.dedent(settings_text)
    )
    return subprocess.run(
        [sys.executable, "-m", "django", "check", "--settings", "badsettings"],
        cwd=ROOT,
        env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_wrong_setting_is_e001_at_check_never_a_traceback(tmp_path):
    done = check_in_a_new_process(tmp_path, 'SLOWJOBS_WORKERS = "four"\n')
    assert done.returncode == 1
    assert "slowjobs.E001" in done.stderr
    assert "SLOWJOBS_WORKERS must be an integer >= 1, not 'four'" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_a_misspelt_setting_is_named_with_the_one_it_looks_like():
    found = ids(SLOWJOBS_WORKRES=8)
    assert "SLOWJOBS_WORKRES is not a slowjobs setting" in found["slowjobs.W008"]
    with override_settings(SLOWJOBS_WORKRES=8):
        (warning,) = [m for m in run_checks() if m.id == "slowjobs.W008"]
    assert warning.hint == "Did you mean SLOWJOBS_WORKERS?"
    assert "slowjobs.W008" not in ids()


def test_a_memcached_that_does_not_answer_is_w009():
    silent = f"127.0.0.1:{free_port()}"
    found = ids(SLOWJOBS_MEMCACHED=[silent])
    assert silent in found["slowjobs.W009"]


def test_a_running_memcached_is_no_warning(memcached):
    assert "slowjobs.W009" not in ids(SLOWJOBS_MEMCACHED=[memcached.location])


def test_no_slowjobs_backend_is_w010_and_submit_refuses_before_enqueueing(
    client: Client,
):
    with override_settings(TASKS=IMMEDIATE):
        assert "ImmediateBackend" in ids()["slowjobs.W010"]
        with pytest.raises(ImproperlyConfigured, match=r"slowjobs\.W010"):
            client.post("/demo/report/", {"rows": 1, "row_ms": 0}, **JSON)
    assert not Job.objects.exists()
    assert "slowjobs.W010" not in ids()


def test_no_job_urls_submit_refuses_before_enqueueing(client: Client):
    with (
        override_settings(ROOT_URLCONF="tests.urls_submit_without_jobs"),
        pytest.raises(ImproperlyConfigured, match=r"slowjobs\.W002"),
    ):
        client.post("/report/", {"rows": 1, "row_ms": 0}, **JSON)
    assert not Job.objects.exists()


def test_no_submitter_middleware_submit_refuses_before_enqueueing(
    client: Client, settings
):
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "slowjobs.submitter.SubmitterMiddleware"
    ]
    with pytest.raises(ImproperlyConfigured, match=r"slowjobs\.W001"):
        client.post("/demo/report/", {"rows": 1, "row_ms": 0}, **JSON)
    assert not Job.objects.exists()


def test_a_bad_setting_at_run_time_refuses_with_e001_and_other_pages_work(
    client: Client,
):
    with override_settings(SLOWJOBS_LEASE="long"):
        assert client.get("/admin/login/").status_code == 200
        with pytest.raises(ImproperlyConfigured, match=r"slowjobs\.E001.*LEASE"):
            client.post("/demo/report/", {"rows": 1, "row_ms": 0}, **JSON)
    assert not Job.objects.exists()


def test_the_backend_check_reports_without_a_urlconf(settings):
    del settings.ROOT_URLCONF  # a worker-only settings module
    from slowjobs.tasksapi import task_backends

    messages = task_backends["default"].check()
    assert all(m.id != "slowjobs.W002" for m in messages)


def test_non_json_arguments_are_the_programs_error_not_the_visitors():
    from django.test import RequestFactory

    from slowjobs.responses import submit
    from slowjobs.submitter import submitted_by

    request = RequestFactory().post("/x/", HTTP_ACCEPT="application/json")
    with submitted_by(session_key="s"), pytest.raises(InvalidTaskArguments):
        submit(request, tasks.echo, {1, 2})
    assert not Job.objects.exists()


def test_bytes_returned_are_utf8_text_as_with_djangos_backends(finished):
    result = tasks.return_bytes.enqueue("héllo")
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert (job.status, job.result) == (JobStatus.SUCCEEDED, {"text": "héllo"})


def test_a_task_title_is_what_the_page_and_the_admin_show(admin_client, finished):
    result = tasks.titled.enqueue()
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert job.title == "Nightly clean-up"
    page = admin_client.get(f"/jobs/{result.id}/").content.decode()
    assert "<h1>Nightly clean-up</h1>" in page
    assert "<title>Nightly clean-up" in page
    listing = admin_client.get("/admin/slowjobs/job/").content.decode()
    assert 'title="tests.tasks.titled">Nightly clean-up' in listing


def test_a_full_server_tells_a_browser_on_a_page(client: Client):
    with override_settings(SLOWJOBS_WORKERS=1, SLOWJOBS_QUEUE_SIZE=0):
        gate = tasks.gate("first-hour-full")
        tasks.wait_for_gate.enqueue("first-hour-full")
        try:
            response = client.post(
                "/demo/report/",
                {"rows": 1, "row_ms": 0},
                HTTP_REFERER="http://testserver/",
            )
        finally:
            gate.set()
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    body = response.content.decode()
    assert "The server is busy" in body
    assert "only job place is taken; try again in 5 seconds." in body
    assert 'content="5; url=/"' in body


def slow_count_orphan(total: int, pause: float) -> Job:
    """A slow job a dead process left, for resume_jobs to take."""
    long_ago = timezone.now() - timedelta(hours=1)
    return Job.objects.create(
        task_path=tasks.slow_count.module_path,
        title="Slow count",
        kwargs={"total": total, "pause": pause},
        owner="gone:1:1",
        enqueued_at=long_ago,
        heartbeat_at=long_ago,
    )


def test_resume_jobs_names_each_running_job_s_progress_when_piped():
    job = slow_count_orphan(6, 0.4)
    out = io.StringIO()
    call_command("resume_jobs", stdout=out, stderr=io.StringIO())
    lines = out.getvalue().splitlines()
    progress = [line for line in lines if f"{str(job.pk)[:8]} Slow count" in line]
    assert any("%" in line and "(step " in line for line in progress), lines
    assert "Resumed 1: 1 succeeded" in lines[-1]
    assert Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED


def test_progress_never_goes_back_between_two_server_processes_without_memcached(
    collected_static, tmp_path
):
    """Two gunicorn workers, the in-process store: the job's owner knows its
    progress in memory, the other only the row's copy; every answer comes
    from the row, so no two answers disagree backwards."""
    from tests.conftest import start_gunicorn, stop
    from tests.http_client import HttpClient

    server = start_gunicorn(tmp_path, workers=2, SLOWJOBS_MEMCACHED="")
    try:
        client = HttpClient(server.url)
        reply = client.post(
            "/demo/report/", {"rows": 60, "row_ms": 50}, headers={"Accept": JSON_TYPE}
        )
        assert reply.status == 202, reply.body
        status_url = reply.json()["status_url"]
        seen: list[int] = []
        while True:
            body = client.get(status_url, headers={"Accept": JSON_TYPE}).json()
            if body["status"] == "running" and body["progress"]["current"] is not None:
                seen.append(body["progress"]["current"])
            if body["status"] in {"succeeded", "failed", "cancelled"}:
                break
        assert body["status"] == "succeeded"
        assert len(set(seen)) >= 2, seen
        assert seen == sorted(seen), seen
    finally:
        stop(server.process)


def test_resume_jobs_in_a_terminal_draws_a_bar_per_running_job():
    import os
    import pty

    from tests.conftest import child_env

    slow_count_orphan(8, 0.3)
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "resume_jobs"],
        cwd=ROOT,
        env=child_env(COLUMNS="120"),
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the command exited and closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(leader)
    assert process.wait(30) == 0
    text = screen.decode(errors="replace")
    assert "Slow count" in text
    assert "━" in text  # rich's bar
    assert "step " in text  # the job's own message beside its bar
    assert "Resumed 1: 1 succeeded" in text


@pytest.mark.parametrize(
    ("referer", "link"),
    [
        ("http://testserver/demo/?x=1", "/demo/?x=1"),
        ("http://testserver//evil.example/x", ""),  # would be //evil.example
        ("http://testserver/\\evil.example", ""),
        ("http://elsewhere.example/form/", ""),
        ("javascript:alert(1)", ""),
        ("http://testserver/jobs/00000000-0000-0000-0000-000000000001/", ""),
    ],
)
def test_the_link_back_goes_only_to_a_page_of_this_site(referer, link):
    from django.test import RequestFactory

    from slowjobs.web.referer import came_from

    request = RequestFactory().get("/jobs/x/", HTTP_REFERER=referer)
    assert came_from(request) == link
