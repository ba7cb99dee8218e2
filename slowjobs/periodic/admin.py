"""The admin's list of periodic schedules (imported by ``slowjobs.admin``).

What runs when comes from ``SLOWJOBS_PERIODIC``; the admin shows each
schedule's next slot, its last job and that job's outcome, and acts on the
persisted part: enable and disable (``change_schedule``), and "run now"
(``run_schedule``), which enqueues an ordinary job outside the slots.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from slowjobs.exceptions import EnqueueRefused
from slowjobs.models import Job, JobStatus, Schedule
from slowjobs.periodic import declared
from slowjobs.periodic.clock import run_now
from slowjobs.periodic.declared import BadSchedule, Declared


def declared_by_name() -> dict[str, Declared]:
    return {schedule.name: schedule for schedule in declared.load()[0]}


def resumed_from(schedule: Schedule) -> Any:
    """Where a schedule enabled again starts: slots that passed while it
    was off are not owed (it runs from the next one)."""
    found = declared_by_name().get(schedule.name)
    return found.at_or_before(timezone.now()) if found else schedule.last_slot


class ScheduleFilter(admin.SimpleListFilter):
    """The job list's filter: the jobs of one schedule (its slots and runs)."""

    title = _("schedule")
    parameter_name = "schedule"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = {*declared_by_name(), *Schedule.objects.values_list("name", flat=True)}
        return [(name, name) for name in sorted(names)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> QuerySet[Job]:
        value = self.value()
        return queryset.filter(schedule=value) if value else queryset


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "name",
        "task",
        "when",
        "enabled",
        "next_run",
        "last_run",
        "last_outcome",
        "jobs",
    )
    list_filter = ("enabled",)
    actions = ["enable_schedules", "disable_schedules", "run_schedules_now"]
    fields = ("name", "enabled", "task", "when", "next_run", "last_slot", "created_at")
    readonly_fields = ("name", "task", "when", "next_run", "last_slot", "created_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Schedule]:
        latest = Job.objects.filter(schedule=OuterRef("name")).order_by("-enqueued_at")
        schedules: QuerySet[Schedule] = super().get_queryset(request)
        return schedules.annotate(
            last_ticket=Subquery(latest.values("pk")[:1]),
            last_status=Subquery(latest.values("status")[:1]),
            last_enqueued=Subquery(latest.values("enqueued_at")[:1]),
        )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        waiting = set(declared_by_name()) - set(
            Schedule.objects.values_list("name", flat=True)
        )
        if waiting and request.method == "GET":
            self.message_user(
                request,
                _(
                    "No process has looked at %(names)s yet: schedules run in "
                    "servers started with slowjobs' gunicorn hooks (or that "
                    "serve requests) and in run_jobs workers."
                )
                % {"names": ", ".join(sorted(waiting))},
                messages.WARNING,
            )
        return super().changelist_view(request, extra_context)

    # -- columns --------------------------------------------------------------

    def _declared(self, schedule: Schedule) -> Declared | None:
        return declared_by_name().get(schedule.name)

    @admin.display(description=_("task"))
    def task(self, schedule: Schedule) -> str:
        found = self._declared(schedule)
        return found.task_path if found else str(_("(no longer declared)"))

    @admin.display(description=_("when"))
    def when(self, schedule: Schedule) -> str:
        found = self._declared(schedule)
        return found.description if found else "—"

    @admin.display(description=_("next run"))
    def next_run(self, schedule: Schedule) -> Any:
        found = self._declared(schedule)
        if found is None or not schedule.enabled:
            return "—"
        return found.next_after(timezone.now())

    @admin.display(description=_("last run"))
    def last_run(self, schedule: Schedule) -> Any:
        ticket = getattr(schedule, "last_ticket", None)
        enqueued = getattr(schedule, "last_enqueued", None)
        if ticket is None or enqueued is None:
            return "—"
        url = reverse("admin:slowjobs_job_change", args=[ticket])
        return format_html('<a href="{}">{}</a>', url, timezone.localtime(enqueued))

    @admin.display(description=_("last outcome"))
    def last_outcome(self, schedule: Schedule) -> str:
        status = getattr(schedule, "last_status", None)
        if status is None:
            return "—"
        return format_html(
            '<span class="slowjobs-status">{}</span>', JobStatus(status).label
        )

    @admin.display(description=_("jobs"))
    def jobs(self, schedule: Schedule) -> str:
        url = reverse("admin:slowjobs_job_changelist")
        return format_html(
            '<a href="{}?{}">{}</a>',
            url,
            urlencode({"schedule": schedule.name}),
            _("its jobs"),
        )

    def save_model(
        self, request: HttpRequest, obj: Schedule, form: Any, change: bool
    ) -> None:
        if change and obj.enabled and "enabled" in form.changed_data:
            obj.last_slot = resumed_from(obj)
        super().save_model(request, obj, form, change)

    # -- permissions ------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # schedules are declared in settings

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A declared schedule's row would only come back with its state lost.
        if obj is not None and obj.name in declared_by_name():
            return False
        return super().has_delete_permission(request, obj)

    def has_run_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("slowjobs.run_schedule")

    # -- actions ----------------------------------------------------------------

    @admin.action(
        description=_("Enable the selected schedules"), permissions=["change"]
    )
    def enable_schedules(
        self, request: HttpRequest, queryset: QuerySet[Schedule]
    ) -> None:
        enabled = 0
        for schedule in queryset.filter(enabled=False):
            enabled += Schedule.objects.filter(pk=schedule.pk, enabled=False).update(
                enabled=True, last_slot=resumed_from(schedule)
            )
        self.message_user(
            request,
            ngettext("Enabled %(n)d schedule.", "Enabled %(n)d schedules.", enabled)
            % {"n": enabled},
            messages.SUCCESS,
        )

    @admin.action(
        description=_("Disable the selected schedules"), permissions=["change"]
    )
    def disable_schedules(
        self, request: HttpRequest, queryset: QuerySet[Schedule]
    ) -> None:
        disabled = queryset.filter(enabled=True).update(enabled=False)
        self.message_user(
            request,
            ngettext("Disabled %(n)d schedule.", "Disabled %(n)d schedules.", disabled)
            % {"n": disabled},
            messages.SUCCESS,
        )

    @admin.action(description=_("Run the selected schedules now"), permissions=["run"])
    def run_schedules_now(
        self, request: HttpRequest, queryset: QuerySet[Schedule]
    ) -> None:
        known = declared_by_name()
        for schedule in queryset:
            found = known.get(schedule.name)
            if found is None:
                self.message_user(
                    request,
                    _("%(name)s is no longer declared in SLOWJOBS_PERIODIC.")
                    % {"name": schedule.name},
                    messages.ERROR,
                )
                continue
            try:
                result = run_now(found)
            except (BadSchedule, EnqueueRefused) as exc:
                self.message_user(request, f"{schedule.name}: {exc}", messages.ERROR)
                continue
            url = reverse("admin:slowjobs_job_change", args=[result.id])
            self.message_user(
                request,
                format_html(
                    '{}: <a href="{}">{}</a>', schedule.name, url, _("job enqueued")
                ),
                messages.SUCCESS,
            )
