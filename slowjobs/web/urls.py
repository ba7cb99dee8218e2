"""Mount with ``path("jobs/", include("slowjobs.urls"))``."""

from __future__ import annotations

from django.urls import path

from slowjobs.web import events, joblist, openapi, views

app_name = "slowjobs"

urlpatterns = [
    path("", joblist.job_list, name="list"),
    path("openapi.json", openapi.openapi_view, name="openapi"),
    path("<str:ticket>/", views.job_page, name="page"),
    path("<str:ticket>/status", views.job_status, name="status"),
    path("<str:ticket>/cancel", views.job_cancel, name="cancel"),
    path("<str:ticket>/result", views.job_result, name="result"),
    path("<str:ticket>/events", events.job_events, name="events"),
    # Anything else under the mount: 404, as JSON to a JSON client too.
    path("<path:rest>", views.no_such_page),
]
