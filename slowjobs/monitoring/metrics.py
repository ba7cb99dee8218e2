"""Prometheus metrics (optional: ``pip install slowjobs[metrics]``).

Turn them on with ``SLOWJOBS_METRICS = True`` and mount the view where your
scraper looks::

    path("metrics", slowjobs.metrics.metrics_view)

It answers requests bearing ``Authorization: Bearer <SLOWJOBS_METRICS_TOKEN>``
(when that is set) and users with ``slowjobs.view_job``; loopback clients
only with ``SLOWJOBS_METRICS_LOOPBACK`` (behind a proxy on the same host,
every request is a loopback one).  Anyone else gets 403.

Two kinds of figures:

- counted in each process from slowjobs' and Django's task signals: jobs
  enqueued, refused (by reason), retried, and finished (by task and
  outcome) with their run time and queue wait as histograms.  With several
  server processes set ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's
  multiprocess mode), so that any process answers for all of them;
- read from the database at each scrape, so true for every process at
  once: jobs queued (due and deferred) and running, and the live processes'
  capacity, busy workers and waiting jobs.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from slowjobs import conf
from slowjobs.jobs.transitions import CANCELLED_CLASS
from slowjobs.signals import enqueue_refused, job_retrying, submit_waited
from slowjobs.tasksapi import TaskResultStatus, task_enqueued, task_finished
from slowjobs.web.access import VIEW_ANY

# Job run times span milliseconds to hours.
SECONDS_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
)  # fmt: skip


class Instruments:
    """This process's counters and histograms (files, in multiprocess mode)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        # In multiprocess mode the values live in files that the view reads.
        target = None if multiprocess() else self.registry
        self.enqueued = Counter(
            "slowjobs_jobs_enqueued", "Jobs enqueued.", ["task"], registry=target
        )
        self.refused = Counter(
            "slowjobs_jobs_refused",
            "Enqueues refused (executor full, stopping, database away).",
            ["task", "reason"],
            registry=target,
        )
        self.retried = Counter(
            "slowjobs_jobs_retried",
            "Failed attempts queued again.",
            ["task"],
            registry=target,
        )
        self.finished = Counter(
            "slowjobs_jobs_finished",
            "Jobs finished, by outcome.",
            ["task", "outcome"],
            registry=target,
        )
        self.run_seconds = Histogram(
            "slowjobs_job_run_seconds",
            "Time from a job's start to its end.",
            ["task", "outcome"],
            buckets=SECONDS_BUCKETS,
            registry=target,
        )
        self.submit_waits = Counter(
            "slowjobs_submit_waits",
            "Submits sent with Prefer: wait, by how they were answered.",
            ["outcome"],
            registry=target,
        )
        self.submit_wait_seconds = Histogram(
            "slowjobs_submit_wait_seconds",
            "How long submits sent with Prefer: wait held their request.",
            ["outcome"],
            buckets=SECONDS_BUCKETS,
            registry=target,
        )
        self.wait_seconds = Histogram(
            "slowjobs_job_queue_wait_seconds",
            "Time from a job's enqueue to its (last) start.",
            ["task"],
            buckets=SECONDS_BUCKETS,
            registry=target,
        )


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


_lock = threading.Lock()
_instruments: Instruments | None = None


def instruments() -> Instruments:
    global _instruments
    with _lock:
        if _instruments is None:
            _instruments = Instruments()
        return _instruments


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def _on_enqueued(sender: Any, task_result: Any, **kwargs: Any) -> None:
    instruments().enqueued.labels(task_result.task.module_path).inc()


def _on_refused(sender: Any, task: Any, reason: str, **kwargs: Any) -> None:
    instruments().refused.labels(task.module_path, reason).inc()


def _on_retrying(sender: Any, task_path: str, **kwargs: Any) -> None:
    instruments().retried.labels(task_path).inc()


def _on_finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
    task = task_result.task.module_path
    if task_result.status == TaskResultStatus.SUCCESSFUL:
        outcome = "succeeded"
    elif any(e.exception_class_path == CANCELLED_CLASS for e in task_result.errors):
        outcome = "cancelled"
    else:
        outcome = "failed"
    found = instruments()
    found.finished.labels(task, outcome).inc()
    run = _seconds(task_result.started_at, task_result.finished_at)
    if run is not None:
        found.run_seconds.labels(task, outcome).observe(run)
    wait = _seconds(task_result.enqueued_at, task_result.started_at)
    if wait is not None:
        found.wait_seconds.labels(task).observe(wait)


def _on_waited(sender: Any, outcome: str, seconds: float, **kwargs: Any) -> None:
    found = instruments()
    found.submit_waits.labels(outcome).inc()
    found.submit_wait_seconds.labels(outcome).observe(seconds)


def connect() -> None:
    """Count from the signals (AppConfig.ready does this when enabled)."""
    instruments()
    task_enqueued.connect(_on_enqueued, dispatch_uid="slowjobs.metrics")
    task_finished.connect(_on_finished, dispatch_uid="slowjobs.metrics")
    enqueue_refused.connect(_on_refused, dispatch_uid="slowjobs.metrics")
    job_retrying.connect(_on_retrying, dispatch_uid="slowjobs.metrics")
    submit_waited.connect(_on_waited, dispatch_uid="slowjobs.metrics")


def disconnect() -> None:
    task_enqueued.disconnect(dispatch_uid="slowjobs.metrics")
    task_finished.disconnect(dispatch_uid="slowjobs.metrics")
    enqueue_refused.disconnect(dispatch_uid="slowjobs.metrics")
    job_retrying.disconnect(dispatch_uid="slowjobs.metrics")
    submit_waited.disconnect(dispatch_uid="slowjobs.metrics")


class StateCollector:
    """Figures read from the database at each scrape: the same in every process."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from slowjobs.models import Job, JobStatus, WorkerProcess

        now = timezone.now()
        jobs = Job.objects.unfinished().aggregate(
            queued=Count("pk", filter=Q(status=JobStatus.QUEUED)),
            deferred=Count("pk", filter=Q(status=JobStatus.QUEUED, run_after__gt=now)),
            running=Count("pk", filter=Q(status=JobStatus.RUNNING)),
        )
        depth = GaugeMetricFamily(
            "slowjobs_jobs_unfinished",
            "Unfinished jobs, from the database (deferred: waiting for run_after).",
            labels=["state"],
        )
        depth.add_metric(["queued"], jobs["queued"] - jobs["deferred"])
        depth.add_metric(["deferred"], jobs["deferred"])
        depth.add_metric(["running"], jobs["running"])
        yield depth
        alive = WorkerProcess.objects.alive(now).aggregate(
            processes=Count("pk"),
            capacity=Sum("capacity"),
            busy=Sum("busy"),
            waiting=Sum("queued"),
        )
        for name, help_text in (
            ("processes", "Processes running jobs, by their heartbeat."),
            ("capacity", "Jobs the live processes take at once (running + queue)."),
            ("busy", "Workers running a job, as last reported."),
            ("waiting", "Jobs waiting in the live processes' queues."),
        ):
            gauge = GaugeMetricFamily(f"slowjobs_workers_{name}", help_text)
            gauge.add_metric([], alive[name] or 0)
            yield gauge


class _Forward:
    """Exposes this process's own registry inside the scrape's registry."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        return iter(self.registry.collect())


def _allowed(request: HttpRequest) -> bool:
    """The token, or a user who may view every job; loopback only if the
    project says so (``SLOWJOBS_METRICS_LOOPBACK``)."""
    settings = conf.get()
    token = settings.metrics_token
    sent = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return True
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.has_perm(VIEW_ANY):
        return True
    if not settings.metrics_loopback:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


@csrf_exempt
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not conf.get().metrics:
        return HttpResponse(
            "Metrics are off (SLOWJOBS_METRICS = False).",
            status=404,
            content_type="text/plain",
        )
    if not _allowed(request):
        return HttpResponse("Forbidden.", status=403, content_type="text/plain")
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        generate_latest,
    )

    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        from prometheus_client import multiprocess as prometheus_multiprocess

        prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Forward(instruments().registry))
    registry.register(StateCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
