from __future__ import annotations

from django.urls import include, path

from . import views

urlpatterns = [
    path("bench/plain", views.plain),
    path("bench/insert", views.insert),
    path("bench/enqueue", views.enqueue),
    path("jobs/", include("slowjobs.urls")),
]
