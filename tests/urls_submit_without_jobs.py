"""A URLconf with a view that submits a job, but no slowjobs.urls."""

from __future__ import annotations

from django.urls import path

from project.views import submit_report

urlpatterns = [path("report/", submit_report)]
