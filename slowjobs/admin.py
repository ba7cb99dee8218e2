"""Job admin: a read-mostly window onto the Job table."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "id",
        "task_path",
        "status",
        "progress_display",
        "attempts",
        "owner",
        "enqueued_at",
        "started_at",
        "finished_at",
    )
    list_filter = ("status", "task_path", "enqueued_at")
    search_fields = ("id", "task_path", "submitted_by__username", "submitter_session")
    list_select_related = ("submitted_by",)
    date_hierarchy = "enqueued_at"
    readonly_fields = [field.name for field in Job._meta.fields]

    @admin.display(description="progress")
    def progress_display(self, job: Job) -> str:
        percent = job.percent
        return "" if percent is None else f"{percent:g}%"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
