"""Observability: log lines carry their job's ticket; Prometheus metrics."""

from __future__ import annotations

import logging
import time

import pytest
from django.contrib.auth.models import Permission
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from slowjobs.exceptions import ExecutorFull
from slowjobs.jobs.cancel import cancel
from slowjobs.models import Job
from slowjobs.monitoring import metrics
from slowjobs.monitoring.logs import JobTicketFilter
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_log_line_about_a_job_carries_its_ticket(finished, caplog):
    caplog.handler.addFilter(JobTicketFilter())
    with caplog.at_level(logging.DEBUG):
        result = tasks.log_and_fail.enqueue("boom")
        finished.wait(result.id)
        logging.getLogger("tests").warning("not about a job")
    about_job = [r for r in caplog.records if result.id in r.getMessage()]
    from_task = [r for r in caplog.records if r.name == "tests.tasks"]
    assert from_task, "the task's own line"
    assert any("failed" in r.getMessage() for r in about_job)
    for record in [*about_job, *from_task]:
        assert record.ticket == result.id, record.getMessage()
    outside = [r for r in caplog.records if r.getMessage() == "not about a job"]
    assert outside[0].ticket == "-"


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.fixture
def metrics_on(settings):
    settings.SLOWJOBS_METRICS = True
    settings.SLOWJOBS_METRICS_TOKEN = SCRAPER_TOKEN
    metrics.connect()
    yield
    metrics.disconnect()


SCRAPER_TOKEN = "scraper-token"


def _scrape(**extra) -> dict:
    extra.setdefault("HTTP_AUTHORIZATION", f"Bearer {SCRAPER_TOKEN}")
    response = Client().get("/metrics", **extra)
    assert response.status_code == 200, response.content
    return _samples(response.content.decode())


def test_metrics_count_jobs_by_task_and_outcome(metrics_on, finished):
    before = _scrape()
    ok = tasks.add.enqueue(1, 2)
    bad = tasks.fail.enqueue("no")
    held = tasks.loop_until_cancelled.enqueue("metrics")
    for result in (ok, bad):
        finished.wait(result.id)
    deadline = time.monotonic() + 10
    while Job.objects.get(pk=held.id).status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    queued_after = _scrape()
    cancel(Job.objects.get(pk=held.id).pk)
    finished.wait(held.id)
    after = _scrape()

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("slowjobs_jobs_enqueued_total", task="tests.tasks.add") == 1
    assert (
        delta(
            "slowjobs_jobs_finished_total", task="tests.tasks.add", outcome="succeeded"
        )
        == 1
    )
    assert (
        delta("slowjobs_jobs_finished_total", task="tests.tasks.fail", outcome="failed")
        == 1
    )
    assert (
        delta(
            "slowjobs_jobs_finished_total",
            task="tests.tasks.loop_until_cancelled",
            outcome="cancelled",
        )
        == 1
    )
    assert (
        delta(
            "slowjobs_job_run_seconds_count",
            task="tests.tasks.add",
            outcome="succeeded",
        )
        == 1
    )
    # Read from the database: the held job was running at the second scrape.
    assert queued_after[("slowjobs_jobs_unfinished", (("state", "running"),))] >= 1
    assert after[("slowjobs_workers_processes", ())] >= 1


@override_settings(SLOWJOBS_WORKERS=1, SLOWJOBS_QUEUE_SIZE=0, SLOWJOBS_SUBMIT_TIMEOUT=0)
def test_metrics_count_refusals(metrics_on):
    before = _scrape()
    tasks.gate("full")
    tasks.wait_for_gate.enqueue("full")
    with pytest.raises(ExecutorFull):
        tasks.noop.enqueue()
    tasks.gate("full").set()
    after = _scrape()
    key = (
        "slowjobs_jobs_refused_total",
        (("reason", "ExecutorFull"), ("task", "tests.tasks.noop")),
    )
    assert after[key] - before.get(key, 0) == 1


def test_metrics_need_the_token_or_the_permission_and_loopback_only_by_opt_in(
    metrics_on, settings, django_user_model
):
    settings.SLOWJOBS_METRICS_TOKEN = ""
    # Loopback is no credential (a reverse proxy on this host is loopback).
    assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert Client().get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    settings.SLOWJOBS_METRICS_TOKEN = "s3cret"
    with_token = Client().get(
        "/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer s3cret"
    )
    assert with_token.status_code == 200
    wrong = Client().get(
        "/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer s3cre"
    )
    assert wrong.status_code == 403
    # A staff flag alone grants nothing; the view permission does.
    staff = django_user_model.objects.create_user("staff", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(django_user_model.objects.get(pk=staff.pk))
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 200
    settings.SLOWJOBS_METRICS_LOOPBACK = True
    assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


def test_metrics_off_answers_404(settings):
    settings.SLOWJOBS_METRICS = False
    assert Client().get("/metrics").status_code == 404


def test_metrics_count_submits_that_waited_by_outcome(metrics_on, settings):
    settings.SLOWJOBS_MAX_WAITERS = 4
    before = _scrape()
    json = {"HTTP_ACCEPT": "application/json", "HTTP_PREFER": "wait=5"}
    quick = Client().post("/demo/report/", {"rows": 2, "row_ms": 0}, **json)
    assert quick.status_code == 200
    settings.SLOWJOBS_MAX_WAITERS = 0
    at_once = Client().post("/demo/report/", {"rows": 2, "row_ms": 0}, **json)
    assert at_once.status_code == 202
    after = _scrape()

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("slowjobs_submit_waits_total", outcome="ended") == 1
    assert delta("slowjobs_submit_waits_total", outcome="no_place") == 1
    assert delta("slowjobs_submit_wait_seconds_count", outcome="ended") == 1
