"""Settings for every system in the comparison: the demo site's, plus the
peers' apps; ``BENCH_SYSTEM`` says which one a process serves or runs.

The peers keep their Django state (results, task rows) in the same database
as slowjobs would, so every system writes to the same kind of store.
"""

from __future__ import annotations

import os

from bench.settings import *  # noqa: F403
from bench.settings import INSTALLED_APPS

SYSTEM = os.environ.get("BENCH_SYSTEM", "slowjobs")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")

INSTALLED_APPS = [
    *INSTALLED_APPS,
    "django_celery_results",
    "django_rq",
    "django_tasks_db",
]
ROOT_URLCONF = "bench.peers.urls"
SLOWJOBS_QUEUE_SIZE = int(os.environ.get("SLOWJOBS_QUEUE_SIZE", "100"))

# Celery: Redis broker; results in the database through django-celery-results
# unless the system is the no-result-store variant.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None if SYSTEM.endswith("-noresults") else "django-db"
CELERY_TASK_IGNORE_RESULT = SYSTEM.endswith("-noresults")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# RQ through django-rq.
RQ_QUEUES = {"default": {"URL": REDIS_URL}}

if SYSTEM == "django-tasks-db":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
