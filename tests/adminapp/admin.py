"""The job admin again, with an export that holds until the test lets it go
(a file appears), then moves its bar row by row: a slow action a browser
can watch, and run a second time while the first is going."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet

from slowjobs.actions import job_action
from slowjobs.actions.jobexport import export_jobs
from slowjobs.admin import JobAdmin
from slowjobs.engine.context import JobContext
from slowjobs.models import Job

RELEASE = "release-paced-export"


class PacedJobAdmin(JobAdmin):
    actions = [*JobAdmin.actions, "export_jobs_paced"]

    @job_action(description="Export selected jobs, paced", permissions=["view"])
    def export_jobs_paced(
        self, job: JobContext, queryset: QuerySet[Job]
    ) -> dict[str, Any]:
        total = queryset.count()
        release = Path(settings.MEDIA_ROOT) / RELEASE
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            job.progress(0, total, "waiting to be let go")
            time.sleep(0.05)
        for done in range(1, total + 1):
            time.sleep(1.0)
            job.progress(done, total, f"{done} of {total}")
        return export_jobs(job, queryset)


admin.site.unregister(Job)
admin.site.register(Job, PacedJobAdmin)
