from __future__ import annotations

from django.urls import include, path

from project import views as demo_views

from . import views

urlpatterns = [
    path("bench/plain", views.plain),
    path("bench/plain-get", views.plain_get),
    path("bench/insert", views.insert),
    path("bench/floor", views.floor),
    path("bench/enqueue", views.enqueue),
    path("bench/crunch", views.crunch_view),
    path("demo/report/", demo_views.submit_report, name="demo-report"),
    path("jobs/", include("slowjobs.urls")),
]
