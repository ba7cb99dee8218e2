"""The demo site's settings plus the benchmark's views and table."""

from __future__ import annotations

from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS, LOGGING

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]
ROOT_URLCONF = "bench.urls"
LOGGING["loggers"]["slowjobs"]["level"] = "WARNING"
SLOWJOBS_QUEUE_SIZE = 100_000
