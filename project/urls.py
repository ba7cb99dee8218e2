from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from slowjobs.monitoring.metrics import metrics_view

from . import openapi, views

urlpatterns = [
    path("", views.home, name="home"),
    path("openapi.json", openapi.openapi_view, name="openapi"),
    path("metrics", metrics_view, name="metrics"),
    path("demo/report/", views.submit_report, name="demo-report"),
    path("demo/checksum/", views.submit_checksum, name="demo-checksum"),
    path("jobs/", include("slowjobs.urls")),
    path("admin/", admin.site.urls),
]
