"""The bare site's URLs and its one task."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from slowjobs.tasksapi import task


@task
def double(number: int) -> int:
    return number * 2


urlpatterns = [
    path("admin/", admin.site.urls),
    path("jobs/", include("slowjobs.urls")),
]
