from __future__ import annotations

from django.urls import include, path

from bench import views as bench_views

from . import views

urlpatterns = [
    path("bench/plain", bench_views.plain),
    path("bench/insert", bench_views.insert),
    path("bench/floor", bench_views.floor),
    path("bench/enqueue", views.enqueue),
    path("bench/enqueue-many", views.enqueue_many),
    path("bench/enqueue-sleep", views.enqueue_sleep),
    path("jobs/", include("slowjobs.urls")),
]
