from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("demo/report/", views.submit_report, name="demo-report"),
    path("demo/checksum/", views.submit_checksum, name="demo-checksum"),
    path("jobs/", include("slowjobs.urls")),
    path("admin/", admin.site.urls),
]
