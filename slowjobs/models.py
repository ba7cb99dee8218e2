"""The Job row: the durable record of every job and the admin's view of it.

The row is written at enqueue time, so ``queued`` is a real, durable state;
every later transition is a conditional UPDATE (see ``runner.py``) so that a
job's final state is written once, by its current attempt.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from slowjobs import conf
from slowjobs.tasksapi import TaskResultStatus


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")

    @classmethod
    def finished(cls) -> frozenset[str]:
        return frozenset({cls.SUCCEEDED, cls.FAILED, cls.CANCELLED})

    def to_task_status(self) -> TaskResultStatus:
        return _TASK_STATUS[self]


_TASK_STATUS = {
    JobStatus.QUEUED: TaskResultStatus.READY,
    JobStatus.RUNNING: TaskResultStatus.RUNNING,
    JobStatus.SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    JobStatus.FAILED: TaskResultStatus.FAILED,
    JobStatus.CANCELLED: TaskResultStatus.FAILED,
}


def percent(current: int | None, total: int | None) -> float | None:
    """current/total as a percentage with one decimal, within 0..100."""
    if current is None or not total:
        return None
    return round(max(0.0, min(100.0, 100.0 * current / total)), 1)


class JobQuerySet(models.QuerySet["Job"]):
    def unfinished(self) -> JobQuerySet:
        # finished_at is set with every final status; naming it lets the
        # database use the partial index of unfinished jobs.
        return self.filter(
            status__in=[JobStatus.QUEUED, JobStatus.RUNNING], finished_at__isnull=True
        )

    def finished(self) -> JobQuerySet:
        return self.filter(status__in=JobStatus.finished())

    def visible_to(
        self,
        *,
        user: Any,
        session_key: str | None,
        permission: str = "slowjobs.view_job",
    ) -> JobQuerySet:
        """Jobs this visitor may act on: all of them with ``permission``
        (a staff flag alone grants nothing), otherwise only their own."""
        if user is not None and user.is_authenticated and user.has_perm(permission):
            return self
        mine = models.Q(pk__in=[])
        if user is not None and user.is_authenticated:
            mine |= models.Q(submitted_by=user)
        if session_key:
            mine |= models.Q(submitter_session=session_key)
        return self.filter(mine)


# The database fills the columns a new job starts with, so the INSERT every
# enqueue makes names only the columns it sets (see slowjobs.jobsql).
EMPTY_LIST = models.Value([], output_field=models.JSONField())


class Job(models.Model):
    id = models.UUIDField(
        _("ticket"), primary_key=True, default=uuid.uuid4, editable=False
    )
    # Not indexed: on PostgreSQL a varchar index is two, both paid on every
    # write; task filters look among few rows (unfinished) or page anyway.
    task_path = models.CharField(_("task"), max_length=255)
    # The task's title when the job was enqueued (``@task(title=...)``).
    title = models.CharField(
        _("title"), max_length=200, blank=True, default="", db_default=""
    )
    backend = models.CharField(_("backend"), max_length=100, default="default")
    queue_name = models.CharField(_("queue"), max_length=100, default="default")
    priority = models.SmallIntegerField(_("priority"), default=0)
    args = models.JSONField(_("positional arguments"), default=list, blank=True)
    kwargs = models.JSONField(_("keyword arguments"), default=dict, blank=True)

    status = models.CharField(
        _("status"),
        max_length=10,
        choices=JobStatus.choices,
        default=JobStatus.QUEUED,
    )
    cancel_requested = models.BooleanField(
        _("cancel requested"), default=False, db_default=False
    )

    # A throttled copy of the live progress, so the admin and processes
    # without memcached can show it.
    progress_current = models.BigIntegerField(_("progress"), null=True, blank=True)
    progress_total = models.BigIntegerField(_("progress total"), null=True, blank=True)
    progress_message = models.CharField(
        _("progress message"), max_length=200, blank=True, db_default=""
    )

    result = models.JSONField(_("result"), null=True, blank=True)
    error_class = models.CharField(
        _("error class"), max_length=255, blank=True, db_default=""
    )
    error_message = models.TextField(_("error message"), blank=True, db_default="")
    error_traceback = models.TextField(_("error traceback"), blank=True, db_default="")

    attempts = models.PositiveIntegerField(_("attempts"), default=0, db_default=0)
    worker_ids = models.JSONField(
        _("worker ids"), default=list, blank=True, db_default=EMPTY_LIST
    )
    owner = models.CharField(_("owner process"), max_length=255, blank=True)
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)

    enqueued_at = models.DateTimeField(_("enqueued at"), db_index=True)
    # Not before: set for deferred jobs and for failed attempts waiting for
    # their retry; such a queued job has no owner until it is due.
    run_after = models.DateTimeField(_("run after"), null=True, blank=True)
    # One unfinished job per key (see SlowJobsTask.unique_key).  NULL, not
    # "", for jobs without one: NULLs never collide in the unique index.
    unique_key = models.CharField(  # noqa: DJ001
        _("uniqueness key"), max_length=500, null=True, blank=True
    )
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("submitted by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    submitter_session = models.CharField(
        _("submitter session"), max_length=64, blank=True
    )
    # The client address (an IPv6 one as its /64) of a job submitted over
    # HTTP: anonymous visitors' caps count by it, as a new session is free.
    submitter_address = models.CharField(
        _("submitter address"), max_length=50, blank=True, db_default=""
    )
    # The task's declared cost (@task(cost=...)): what the job counts for
    # against its submitter's cap on unfinished jobs.
    cost = models.PositiveSmallIntegerField(_("cost"), default=1, db_default=1)

    checkpoint = models.JSONField(_("checkpoint"), null=True, blank=True)
    # One entry per attempt that ended without finishing the job:
    # {"attempt", "owner", "outcome", "at"} (and "error" for a failed one
    # that is retried).
    history = models.JSONField(
        _("interrupted attempts"), default=list, blank=True, db_default=EMPTY_LIST
    )
    input_file = models.CharField(
        _("input file"), max_length=500, blank=True, db_default=""
    )
    result_file = models.CharField(
        _("result file"), max_length=500, blank=True, db_default=""
    )
    # Bytes of the input file, for the upload quotas; 0 once it is removed.
    input_size = models.BigIntegerField(_("input size"), default=0, db_default=0)
    # What the job's code logged while it ran (slowjobs.monitoring.joblog):
    # the newest lines within the bounds, and how many older ones made way.
    log = models.JSONField(_("log"), default=list, blank=True, db_default=EMPTY_LIST)
    log_dropped = models.PositiveIntegerField(
        _("log lines dropped"), default=0, db_default=0
    )
    # The periodic schedule that enqueued the job (SLOWJOBS_PERIODIC), and
    # the slot it is for; a "run now" from the admin has no slot.
    schedule = models.CharField(
        _("schedule"), max_length=100, blank=True, db_default=""
    )
    scheduled_for = models.DateTimeField(_("scheduled for"), null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        ordering = ["-enqueued_at"]
        permissions = [
            ("cancel_job", _("Can cancel queued or running jobs")),
            ("rerun_job", _("Can re-run failed or cancelled jobs")),
        ]
        # Every index is paid for on each of a job's writes.  Recovery and
        # the heartbeat look for unfinished jobs by owner: a partial index
        # holds just those.  Its condition is on finished_at, which the
        # runner's conditional UPDATEs (WHERE id = %s AND status = %s AND
        # owner = %s) never name, so no plan can prefer it to the primary
        # key (every unfinished job of a process has the same owner).
        indexes = [
            models.Index(
                fields=["owner"],
                condition=models.Q(finished_at__isnull=True),
                name="slowjobs_unfinished_owner",
            ),
            # Admission counts a submitter's unfinished jobs (signed-in
            # users' by the foreign key's own index).  Jobs from commands
            # have neither column set and are in neither index.
            models.Index(
                fields=["submitter_session"],
                condition=models.Q(finished_at__isnull=True)
                & ~models.Q(submitter_session=""),
                name="slowjobs_unfinished_session",
            ),
            # The upload quotas sum the sizes of kept inputs: few rows.
            models.Index(
                fields=["input_size"],
                condition=~models.Q(input_file=""),
                name="slowjobs_kept_inputs",
            ),
            # A visitor's list of their jobs (GET /jobs/), for anonymous
            # sessions; a signed-in user's go by the foreign key's index.
            models.Index(
                fields=["submitter_session", "-enqueued_at"],
                condition=~models.Q(submitter_session=""),
                name="slowjobs_session_jobs",
            ),
            models.Index(
                fields=["submitter_address"],
                condition=models.Q(finished_at__isnull=True)
                & ~models.Q(submitter_address=""),
                name="slowjobs_unfinished_address",
            ),
        ]
        constraints = [
            # Only keyed, unfinished jobs are in it: others never pay for it.
            models.UniqueConstraint(
                fields=["unique_key"],
                condition=models.Q(finished_at__isnull=True, unique_key__isnull=False),
                name="slowjobs_unique_unfinished_key",
            ),
            # One job per slot of a schedule, finished or not, whoever
            # enqueues it: every other process's attempt at it is a no-op.
            # Only periodic jobs are in it; it also serves the admin's filter.
            models.UniqueConstraint(
                fields=["schedule", "scheduled_for"],
                condition=~models.Q(schedule=""),
                name="slowjobs_one_job_per_slot",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} [{self.status}] {self.id}"

    @property
    def label(self) -> str:
        """What people call the job: its task's title, else its path."""
        return self.title or self.task_path

    @property
    def is_finished(self) -> bool:
        return self.status in JobStatus.finished()

    @property
    def percent(self) -> float | None:
        value = percent(self.progress_current, self.progress_total)
        if value is None and self.status == JobStatus.SUCCEEDED:
            return 100.0
        return value


class Schedule(models.Model):
    """The state of a periodic schedule that outlives processes and deploys.

    What to run and when is declared in ``SLOWJOBS_PERIODIC``; the row keeps
    what the admin decides (``enabled``) and how far the schedule has got
    (``last_slot``), so every process agrees on both.
    """

    name = models.CharField(_("name"), max_length=100, primary_key=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    # The newest slot that was enqueued, or passed over as missed: no
    # process enqueues a slot at or before it.
    last_slot = models.DateTimeField(_("last slot"), null=True, blank=True)
    created_at = models.DateTimeField(_("first seen"), default=timezone.now)

    class Meta:
        verbose_name = _("periodic schedule")
        verbose_name_plural = _("periodic schedules")
        ordering = ["name"]
        permissions = [("run_schedule", _("Can run a periodic schedule now"))]

    def __str__(self) -> str:
        return self.name


class WorkerProcessQuerySet(models.QuerySet["WorkerProcess"]):
    def alive(self, now: datetime | None = None) -> WorkerProcessQuerySet:
        """The one rule for a live process: heard from within the lease, and
        not stopping (a stopping one hands its jobs back, takes none)."""
        cutoff = (now or timezone.now()) - timedelta(seconds=conf.get().lease)
        return self.filter(last_seen__gte=cutoff, stopping=False)


class WorkerProcess(models.Model):
    """A server or command process that runs jobs, as its heartbeat says."""

    id = models.CharField(_("process"), max_length=255, primary_key=True)
    host = models.CharField(_("host"), max_length=255)
    pid = models.PositiveIntegerField(_("pid"))
    # The process table the pid belongs to (slowjobs.process.machine) and
    # the pid's start in clock ticks since boot: together they prove, on
    # the same machine, that the process is gone or its pid reused.
    machine = models.CharField(_("machine"), max_length=300, blank=True, db_default="")
    pid_start = models.BigIntegerField(_("pid start (ticks)"), null=True, blank=True)
    # PostgreSQL: it holds its advisory lock (slowjobs.processlock), so a
    # free lock proves, from any host, that it died.
    locked = models.BooleanField(_("holds its lock"), default=False, db_default=False)
    started_at = models.DateTimeField(_("started at"))
    last_seen = models.DateTimeField(_("last heartbeat"), db_index=True)
    mode = models.CharField(_("executor mode"), max_length=20)
    capacity = models.PositiveIntegerField(
        _("job places"),
        null=True,
        blank=True,
        help_text=_(
            "Jobs the process takes at once: running (its workers) plus waiting "
            "in its queue (SLOWJOBS_WORKERS + SLOWJOBS_QUEUE_SIZE); empty when "
            "it has no bound."
        ),
    )
    busy = models.PositiveIntegerField(_("busy"), default=0)
    queued = models.PositiveIntegerField(_("queued"), default=0)
    jobs_done = models.PositiveBigIntegerField(_("jobs done"), default=0)
    stopping = models.BooleanField(_("stopping"), default=False)

    objects = WorkerProcessQuerySet.as_manager()

    class Meta:
        verbose_name = _("worker process")
        verbose_name_plural = _("worker processes")
        ordering = ["host", "pid"]

    def __str__(self) -> str:
        return self.id
