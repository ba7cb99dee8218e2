"""The bare site's URLs and its one task."""

from __future__ import annotations

from django.contrib import admin
from django.tasks import task
from django.urls import include, path


@task
def double(number: int) -> int:
    return number * 2


urlpatterns = [
    path("admin/", admin.site.urls),
    path("jobs/", include("slowjobs.urls")),
]
