"""The Django admin for jobs, the processes that run them, and schedules.

Staff see every job with its live progress, filter and search them, and act
on them in bulk: cancel (queued or running), re-run (failed or cancelled:
a *new* job with the same task, arguments and submitter; the old one stays
as it was), and delete finished ones with their files.  Each action needs
its own permission (``cancel_job``, ``rerun_job``, ``delete_job``).
Periodic schedules have their own page (``slowjobs.periodic.admin``).
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import django
from django.contrib import admin, messages
from django.db.models import (
    Avg,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.templatetags.static import static
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

if TYPE_CHECKING or django.VERSION >= (6, 1):
    from django.contrib.admin.options import ActionLocation

from slowjobs.actions import job_action
from slowjobs.actions.jobexport import export_jobs
from slowjobs.engine.context import JobContext
from slowjobs.exceptions import EnqueueRefused
from slowjobs.jobs.cancel import cancel
from slowjobs.jobs.results import load_task
from slowjobs.models import Job, JobQuerySet, JobStatus, WorkerProcess, percent
from slowjobs.periodic.admin import ScheduleFilter
from slowjobs.progress.records import session_digest
from slowjobs.web.events import progress_events, served_here
from slowjobs.web.joblogs import live_log, row_log
from slowjobs.web.submitter import submitted_by
from slowjobs.web.uploads import remove_stored


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    # Few enough columns for a 1280 px screen: the owner and the start and
    # finish times are on each job's own page.
    list_display = (
        "ticket",
        "task_display",
        "status_badge",
        "progress_bar",
        "submitter",
        "attempts",
        "enqueued_at",
        "timing",
    )
    list_filter = (
        "status",
        "task_path",
        ScheduleFilter,
        ("enqueued_at", admin.DateFieldListFilter),
    )
    search_fields = (
        "=id",
        "title",
        "task_path",
        "submitted_by__username",
        "=submitter_session",
        "=submitter_address",
    )
    list_select_related = ("submitted_by",)
    list_per_page = 50
    show_full_result_count = False  # no COUNT(*) over every job on each page
    date_hierarchy = "enqueued_at"
    actions = ["cancel_jobs", "rerun_jobs", "delete_finished_jobs", "export_jobs_csv"]
    readonly_fields = [field.name for field in Job._meta.fields] + [
        "arguments_display",
        "result_display",
        "checkpoint_display",
        "error_traceback_display",
        "history_display",
        "progress_display",
        "log_display",
        "session_display",
        "queue_wait",
        "run_time",
    ]
    fieldsets = [
        (None, {"fields": ["id", "title", "task_path", "status", "cancel_requested"]}),
        (_("Arguments"), {"fields": ["arguments_display"]}),
        (
            _("Outcome"),
            {
                "fields": [
                    "result_display",
                    "result_file",
                    "error_class",
                    "error_message",
                    "error_traceback_display",
                ]
            },
        ),
        (_("Progress"), {"fields": ["progress_display", "checkpoint_display"]}),
        (_("Log"), {"fields": ["log_display", "log_dropped"]}),
        (
            _("Attempts"),
            {"fields": ["attempts", "history_display", "owner", "heartbeat_at"]},
        ),
        (
            _("Times"),
            {
                "fields": [
                    "enqueued_at",
                    "run_after",
                    "started_at",
                    "finished_at",
                    "queue_wait",
                    "run_time",
                ]
            },
        ),
        (
            _("Submitted by"),
            {
                "fields": [
                    "submitted_by",
                    "session_display",
                    "submitter_address",
                    "input_file",
                    "input_size",
                    "cost",
                ]
            },
        ),
        (
            _("Queue"),
            {
                "fields": [
                    "backend",
                    "queue_name",
                    "priority",
                    "worker_ids",
                    "unique_key",
                    "schedule",
                    "scheduled_for",
                ]
            },
        ),
    ]
    change_list_template = "admin/slowjobs/job/change_list.html"

    # -- columns --------------------------------------------------------------

    @admin.display(description=_("ticket"), ordering="id")
    def ticket(self, job: Job) -> str:
        return str(job.pk)[:8]

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, job: Job) -> str:
        return format_html(
            '<span class="slowjobs-status" data-ticket="{}">{}</span>',
            job.pk,
            job.get_status_display(),
        )

    @admin.display(description=_("progress"))
    def progress_bar(self, job: Job) -> str:
        value = job.percent
        return format_html(
            '<progress class="slowjobs-bar" data-ticket="{}" max="100" value="{}">'
            '</progress> <span class="slowjobs-percent" data-ticket="{}">{}</span>',
            job.pk,
            0 if value is None else value,
            job.pk,
            "" if value is None else f"{value:g}%",
        )

    @admin.display(description=_("submitter"))
    def submitter(self, job: Job) -> str:
        if job.submitted_by is not None:
            return str(job.submitted_by)
        digest = session_digest(job.submitter_session)
        who = f"session {digest[:8]}" if digest else ""
        if job.submitter_address:
            who = f"{who} ({job.submitter_address})" if who else job.submitter_address
        return who or "—"

    @admin.display(description=_("submitter session"))
    def session_display(self, job: Job) -> str:
        """A digest: whoever reads the admin must not be able to take the
        session over (the key itself is never shown)."""
        return session_digest(job.submitter_session)[:12] or "—"

    @admin.display(description=_("task"), ordering="task_path")
    def task_display(self, job: Job) -> str:
        """The title people know it by, the dotted path on hover."""
        return format_html('<span title="{}">{}</span>', job.task_path, job.label)

    @admin.display(description=_("waited · ran"))
    def timing(self, job: Job) -> str:
        return f"{self.queue_wait(job)} · {self.run_time(job)}"

    @admin.display(description=_("queue wait"))
    def queue_wait(self, job: Job) -> str:
        if job.started_at is None:
            return "—"
        return f"{(job.started_at - job.enqueued_at).total_seconds():.1f} s"

    @admin.display(description=_("run time"))
    def run_time(self, job: Job) -> str:
        if job.started_at is None or job.finished_at is None:
            return "—"
        return f"{(job.finished_at - job.started_at).total_seconds():.1f} s"

    @admin.display(description=_("error traceback"))
    def error_traceback_display(self, job: Job) -> str:
        return format_html("<pre>{}</pre>", job.error_traceback or "—")

    @admin.display(description=_("attempts that did not finish"))
    def history_display(self, job: Job) -> str:
        return _pretty(job.history) if job.history else "—"

    @admin.display(description=_("arguments"))
    def arguments_display(self, job: Job) -> str:
        return _pretty({"args": job.args, "kwargs": job.kwargs})

    @admin.display(description=_("result"))
    def result_display(self, job: Job) -> str:
        return "—" if job.result is None else _pretty(job.result)

    @admin.display(description=_("checkpoint"))
    def checkpoint_display(self, job: Job) -> str:
        return "—" if job.checkpoint is None else _pretty(job.checkpoint)

    @admin.display(description=_("lines"))
    def log_display(self, job: Job) -> str:
        """Its lines; followed while it runs (admin_log.js asks for more)."""
        lines = job.log or []
        text = "".join(
            f"{str(line.get('at', ''))[11:23]} {line.get('level', '')} "
            f"{line.get('logger', '')}: {line.get('message', '')}\n"
            for line in lines
        )
        after = (lines[-1].get("n", len(lines) - 1) + 1) if lines else 0
        return format_html(
            '<pre class="slowjobs-log" data-log-url="{}" data-after="{}" '
            'data-finished="{}">{}</pre>'
            '<script src="{}" defer></script>',
            reverse("admin:slowjobs_job_log", args=[job.pk]),
            after,
            "1" if job.is_finished else "0",
            text,
            static("slowjobs/admin_log.js"),
        )

    @admin.display(description=_("progress (latest report)"))
    def progress_display(self, job: Job) -> str:
        value = job.percent
        return format_html(
            "{} / {} ({}) {}",
            "—" if job.progress_current is None else job.progress_current,
            "—" if job.progress_total is None else job.progress_total,
            "—" if value is None else f"{value:g}%",
            job.progress_message,
        )

    # -- permissions ----------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs are enqueued by code, not typed in

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record is the history: read only

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("slowjobs.cancel_job")

    def has_rerun_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("slowjobs.rerun_job")

    # -- actions --------------------------------------------------------------

    @admin.action(description=_("Cancel the selected jobs"), permissions=["cancel"])
    def cancel_jobs(self, request: HttpRequest, queryset: JobQuerySet) -> None:
        unfinished = list(queryset.unfinished().values_list("pk", flat=True))
        for ticket in unfinished:
            cancel(ticket)
        skipped = queryset.count() - len(unfinished)
        self.message_user(
            request,
            ngettext(
                "Cancel requested for %(count)d job.",
                "Cancel requested for %(count)d jobs.",
                len(unfinished),
            )
            % {"count": len(unfinished)}
            + (f" {skipped} had already finished." if skipped else ""),
            messages.SUCCESS,
        )

    @admin.action(description=_("Re-run the selected jobs"), permissions=["rerun"])
    def rerun_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        again = queryset.filter(status__in=[JobStatus.FAILED, JobStatus.CANCELLED])
        started = 0
        for job in again.select_related("submitted_by"):
            try:
                task = load_task(job)
                with submitted_by(
                    user=job.submitted_by, session_key=job.submitter_session
                ):
                    task.enqueue(*job.args, **job.kwargs)
                started += 1
            except EnqueueRefused as exc:
                self.message_user(request, str(exc), messages.ERROR)
                break
            except Exception as exc:  # a task that no longer imports, say
                self.message_user(request, f"{job.pk}: {exc}", messages.ERROR)
        skipped = queryset.count() - again.count()
        self.message_user(
            request,
            ngettext(
                "Started %(count)d new job.", "Started %(count)d new jobs.", started
            )
            % {"count": started}
            + (f" {skipped} were neither failed nor cancelled." if skipped else ""),
            messages.SUCCESS if started else messages.WARNING,
        )

    @admin.action(
        description=_("Delete the selected finished jobs and their files"),
        permissions=["delete"],
    )
    def delete_finished_jobs(self, request: HttpRequest, queryset: JobQuerySet) -> None:
        finished = queryset.finished()
        for input_file, result_file in finished.values_list(
            "input_file", "result_file"
        ):
            for name in filter(None, (input_file, result_file)):
                remove_stored(name)
        deleted = finished.delete()[0]
        self.message_user(
            request,
            ngettext("Deleted %(count)d job.", "Deleted %(count)d jobs.", deleted)
            % {"count": deleted},
            messages.SUCCESS,
        )

    @job_action(description=_("Export selected jobs as CSV"), permissions=["view"])
    def export_jobs_csv(
        self, job: JobContext, queryset: QuerySet[Job]
    ) -> dict[str, Any]:
        return export_jobs(job, queryset)

    def has_delete_permission(
        self, request: HttpRequest, obj: Job | None = None
    ) -> bool:
        """Only finished jobs may go: an unfinished one's thread would go on,
        uncancellable, with its row gone."""
        if obj is not None and not obj.is_finished:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: Job) -> None:
        for name in filter(None, (obj.input_file, obj.result_file)):
            remove_stored(name)
        super().delete_model(request, obj)

    if TYPE_CHECKING or django.VERSION >= (6, 1):

        def get_actions(
            self,
            request: HttpRequest,
            action_location: ActionLocation = ActionLocation.CHANGE_LIST,
        ) -> dict[str, Any]:
            actions = super().get_actions(request, action_location=action_location)
            actions.pop("delete_selected", None)  # unfinished jobs must not vanish
            return actions

    else:  # Django 5.2: no action locations

        def get_actions(self, request: HttpRequest) -> dict[str, Any]:
            actions = super().get_actions(request)
            actions.pop("delete_selected", None)
            return actions

    # -- the list's extras: counts per status, live progress ------------------

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        counts = dict(
            Job.objects.values_list("status").annotate(n=Count("pk")).order_by()
        )
        extra = {
            "progress_events": served_here(request),
            "status_counts": [
                (label, counts.get(value, 0)) for value, label in JobStatus.choices
            ],
            **last_hour_summary(),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "progress/",
                self.admin_site.admin_view(self.progress_view),
                name="slowjobs_job_progress",
            ),
            # Pushed under ASGI (not wrapped: the view checks who asks).
            path(
                "progress/events/",
                progress_events,
                name="slowjobs_job_progress_events",
            ),
            path(
                "<uuid:ticket>/log/",
                self.admin_site.admin_view(self.log_view),
                name="slowjobs_job_log",
            ),
            *super().get_urls(),
        ]

    def progress_view(self, request: HttpRequest) -> JsonResponse:
        """Status and progress of the jobs on the page (staff who may view)."""
        if not self.has_view_permission(request):
            return JsonResponse({"error": "forbidden"}, status=403)
        return JsonResponse(progress_of(request.GET.getlist("t")))

    def log_view(self, request: HttpRequest, ticket: uuid.UUID) -> JsonResponse:
        """A job's log lines from number ``after`` on, live while it runs."""
        if not self.has_view_permission(request):
            return JsonResponse({"error": "forbidden"}, status=403)
        job = (
            Job.objects.filter(pk=ticket)
            .only("status", "attempts", "log", "log_dropped")
            .first()
        )
        if job is None:
            return JsonResponse({"error": "No such job."}, status=404)
        try:
            after = max(0, int(request.GET.get("after", "0")))
        except ValueError:
            return JsonResponse({"error": "after must be a number."}, status=400)
        log = None
        if job.status == JobStatus.RUNNING:
            log = live_log(str(job.pk), job.attempts)
        log = log or row_log(job)
        return JsonResponse(
            {
                "lines": [line for line in log["lines"] if line.get("n", 0) >= after],
                "dropped": log["dropped"],
                "finished": job.is_finished,
            }
        )


def progress_of(tickets: list[str]) -> dict[str, dict[str, Any]]:
    """Status and progress of up to 200 jobs, as the changelist shows them."""
    rows = Job.objects.filter(pk__in=_valid_uuids(tickets[:200])).values_list(
        "pk", "status", "progress_current", "progress_total", "progress_message"
    )
    labels = dict(JobStatus.choices)
    return {
        str(pk): {
            "status": str(labels[status]),
            "finished": status in JobStatus.finished(),
            "percent": percent(current, total),
            "message": message,
        }
        for pk, status, current, total, message in rows
    }


def _pretty(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


def last_hour_summary() -> dict[str, Any]:
    """Jobs that ended in the last hour: how many, and timings per task."""
    recent = Job.objects.filter(finished_at__gte=timezone.now() - timedelta(hours=1))
    totals = recent.aggregate(
        succeeded=Count("pk", filter=Q(status=JobStatus.SUCCEEDED)),
        failed=Count("pk", filter=Q(status=JobStatus.FAILED)),
        cancelled=Count("pk", filter=Q(status=JobStatus.CANCELLED)),
    )
    per_task = (
        recent.exclude(started_at=None)
        .values("task_path")
        .annotate(
            jobs=Count("pk"),
            wait=Avg(
                ExpressionWrapper(
                    F("started_at") - F("enqueued_at"), output_field=DurationField()
                )
            ),
            run=Avg(
                ExpressionWrapper(
                    F("finished_at") - F("started_at"), output_field=DurationField()
                )
            ),
        )
        .order_by("task_path")
    )
    return {"last_hour": totals, "last_hour_tasks": list(per_task)}


def _valid_uuids(values: list[str]) -> list[str]:
    valid = []
    for value in values:
        try:
            valid.append(str(uuid.UUID(value)))
        except ValueError:
            continue
    return valid


@admin.register(WorkerProcess)
class WorkerProcessAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Every process that runs jobs; the dead ones with what they left."""

    list_display = (
        "id",
        "host",
        "pid",
        "mode",
        "load",
        "jobs_done",
        "last_seen",
        "alive",
        "unfinished_jobs",
    )
    readonly_fields = [field.name for field in WorkerProcess._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WorkerProcess]:
        left = (
            Job.objects.unfinished()
            .filter(owner=OuterRef("id"))
            .order_by()
            .values("owner")
            .annotate(n=Count("pk"))
            .values("n")
        )
        processes: QuerySet[WorkerProcess] = super().get_queryset(request)
        return processes.annotate(unfinished=Coalesce(Subquery(left), 0))

    @admin.display(description=_("jobs now"))
    def load(self, process: WorkerProcess) -> str:
        """Running and waiting jobs against its places (workers + queue)."""
        places = (
            _("of %(n)d places") % {"n": process.capacity}
            if process.capacity is not None
            else _("no bound")
        )
        return _("%(busy)d running, %(queued)d waiting, %(places)s") % {
            "busy": process.busy,
            "queued": process.queued,
            "places": places,
        }

    @admin.display(boolean=True, description=_("alive"))
    def alive(self, process: WorkerProcess) -> bool:
        from slowjobs.lifecycle.orphans import lease_cutoff

        return not process.stopping and process.last_seen >= lease_cutoff()

    @admin.display(description=_("unfinished jobs"), ordering="unfinished")
    def unfinished_jobs(self, process: WorkerProcess) -> int:
        return int(getattr(process, "unfinished", 0))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
