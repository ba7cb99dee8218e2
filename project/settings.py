"""Settings of the slowjobs demo site, twelve-factor style.

Every variable is optional; the defaults run a self-contained site on
127.0.0.1 with SQLite and the embedded progress store.  See README.md.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import django
import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def _default_secret_key() -> str:
    """A key kept in a file beside the project, so every worker process shares it."""
    path = BASE_DIR / ".secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    candidate = secrets.token_urlsafe(50)
    try:
        with path.open("x") as handle:  # the first process to start writes it
            handle.write(candidate)
    except FileExistsError:
        pass
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="") or _default_secret_key()
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
HTTPS = env.bool("HTTPS", default=False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "slowjobs",
]
if django.VERSION < (6, 0):  # Django 5.2 LTS: the Tasks framework's backport
    INSTALLED_APPS.append("django_tasks")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "slowjobs.submitter.SubmitterMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
}
# Keep connections between requests (and in job threads). Health checks cost
# a SELECT 1 per request, so they are opt-in.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=300)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool(
    "CONN_HEALTH_CHECKS", default=False
)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers (status polls) run beside the job writers; with
    # synchronous=NORMAL a commit survives a crash of the process (not of the
    # machine) without an fsync per commit.  IMMEDIATE transactions take the
    # write lock up front, so writers queue on the timeout instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {"default": {"BACKEND": "slowjobs.backend.SlowJobsBackend"}}

SLOWJOBS_EXECUTOR = env.str("SLOWJOBS_EXECUTOR", default="pool")
SLOWJOBS_WORKERS = env.int("SLOWJOBS_WORKERS", default=4)
SLOWJOBS_QUEUE_SIZE = env.int("SLOWJOBS_QUEUE_SIZE", default=100)
SLOWJOBS_SUBMIT_TIMEOUT = env.float("SLOWJOBS_SUBMIT_TIMEOUT", default=0.5)
SLOWJOBS_RETRY_AFTER = env.int("SLOWJOBS_RETRY_AFTER", default=5)
SLOWJOBS_OVERFLOW = env.bool("SLOWJOBS_OVERFLOW", default=False)
SLOWJOBS_MEMCACHED = env.str("SLOWJOBS_MEMCACHED", default="")
SLOWJOBS_MEMCACHED_TRUSTED = env.bool("SLOWJOBS_MEMCACHED_TRUSTED", default=False)
SLOWJOBS_METRICS = env.bool("SLOWJOBS_METRICS", default=False)
SLOWJOBS_METRICS_TOKEN = env.str("SLOWJOBS_METRICS_TOKEN", default="")
SLOWJOBS_METRICS_LOOPBACK = env.bool("SLOWJOBS_METRICS_LOOPBACK", default=False)
SLOWJOBS_MAX_UPLOAD_MB = env.int("SLOWJOBS_MAX_UPLOAD_MB", default=1024)
SLOWJOBS_UPLOAD_QUOTA_MB = env.int("SLOWJOBS_UPLOAD_QUOTA_MB", default=2048)
SLOWJOBS_UPLOAD_TOTAL_MB = env.int("SLOWJOBS_UPLOAD_TOTAL_MB", default=20480)
SLOWJOBS_MAX_JOBS_PER_USER = env.int("SLOWJOBS_MAX_JOBS_PER_USER", default=50)
SLOWJOBS_MAX_JOBS_PER_SESSION = env.int("SLOWJOBS_MAX_JOBS_PER_SESSION", default=10)
SLOWJOBS_MAX_JOBS_PER_ADDRESS = env.int("SLOWJOBS_MAX_JOBS_PER_ADDRESS", default=20)
SLOWJOBS_MAX_RUNNING_PER_SUBMITTER = env.int(
    "SLOWJOBS_MAX_RUNNING_PER_SUBMITTER", default=None
)
SLOWJOBS_TRUSTED_PROXIES = env.int("SLOWJOBS_TRUSTED_PROXIES", default=0)
SLOWJOBS_HEARTBEAT_INTERVAL = env.float("SLOWJOBS_HEARTBEAT_INTERVAL", default=5.0)
SLOWJOBS_LEASE = env.float("SLOWJOBS_LEASE", default=30.0)
SLOWJOBS_DRAIN_TIMEOUT = env.float("SLOWJOBS_DRAIN_TIMEOUT", default=10.0)
SLOWJOBS_CANCEL_CHECK_INTERVAL = env.float(
    "SLOWJOBS_CANCEL_CHECK_INTERVAL", default=0.5
)
SLOWJOBS_MAX_THREADS = env.int("SLOWJOBS_MAX_THREADS", default=None)
SLOWJOBS_RUNS_IN = env.str("SLOWJOBS_RUNS_IN", default="thread")
SLOWJOBS_PROCESSES = env.int("SLOWJOBS_PROCESSES", default=None)
SLOWJOBS_PROCESS_NICENESS = env.int("SLOWJOBS_PROCESS_NICENESS", default=10)
SLOWJOBS_THREAD_NICENESS = env.int("SLOWJOBS_THREAD_NICENESS", default=0)
SLOWJOBS_PROCESS_STOP_GRACE = env.float("SLOWJOBS_PROCESS_STOP_GRACE", default=1.0)
SLOWJOBS_PROCESS_MAX_JOBS = env.int("SLOWJOBS_PROCESS_MAX_JOBS", default=None)
SLOWJOBS_PROGRESS_INTERVAL = env.float("SLOWJOBS_PROGRESS_INTERVAL", default=0.2)
SLOWJOBS_PROGRESS_DB_INTERVAL = env.float("SLOWJOBS_PROGRESS_DB_INTERVAL", default=1.0)
SLOWJOBS_JOB_TIMEOUT = env.float("SLOWJOBS_JOB_TIMEOUT", default=None)
SLOWJOBS_SCHEDULER_INTERVAL = env.float("SLOWJOBS_SCHEDULER_INTERVAL", default=2.0)
SLOWJOBS_RETENTION_DAYS = env.int("SLOWJOBS_RETENTION_DAYS", default=7)
# Periodic jobs, as JSON: {"name": {"task": "project.tasks.x", "every": 60}}.
SLOWJOBS_PERIODIC = env.json("SLOWJOBS_PERIODIC", default={})
SLOWJOBS_JOB_LOG_LINES = env.int("SLOWJOBS_JOB_LOG_LINES", default=500)
SLOWJOBS_JOB_LOG_BYTES = env.int("SLOWJOBS_JOB_LOG_BYTES", default=32768)
SLOWJOBS_MAX_WATCHERS = env.int("SLOWJOBS_MAX_WATCHERS", default=1000)
SLOWJOBS_MAX_WATCHERS_PER_VISITOR = env.int(
    "SLOWJOBS_MAX_WATCHERS_PER_VISITOR", default=20
)
SLOWJOBS_WATCH_SECONDS = env.float("SLOWJOBS_WATCH_SECONDS", default=600.0)
SLOWJOBS_MAX_WAIT = env.float("SLOWJOBS_MAX_WAIT", default=10.0)
SLOWJOBS_MAX_WAITERS = env.int("SLOWJOBS_MAX_WAITERS", default=None)
SLOWJOBS_MAX_WAITERS_PER_VISITOR = env.int(
    "SLOWJOBS_MAX_WAITERS_PER_VISITOR", default=2
)
SLOWJOBS_PERIODIC_GRACE = env.float("SLOWJOBS_PERIODIC_GRACE", default=60.0)
# purge_jobs runs daily by itself; an empty SLOWJOBS_PURGE_SCHEDULE turns it off.
SLOWJOBS_PURGE_SCHEDULE = env.str("SLOWJOBS_PURGE_SCHEDULE", default="30 3 * * *")
# Every server takes over what a crashed or stopped one left (the default).
SLOWJOBS_ADOPT = env.bool("SLOWJOBS_ADOPT", default=True)
SLOWJOBS_ADOPT_INTERVAL = env.float("SLOWJOBS_ADOPT_INTERVAL", default=0.5)
SLOWJOBS_HOST = env.str("SLOWJOBS_HOST", default="")
SLOWJOBS_ADVISORY_LOCKS = env.bool("SLOWJOBS_ADVISORY_LOCKS", default=True)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve the apps' static files even before collectstatic has run (a fresh
# checkout); collectstatic still gives the compressed, cached copies.
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(BASE_DIR / "media"))
# Uploads stream to disk (never whole in memory) beside the jobs' files, so
# keeping one for its job is a rename, not a second copy.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.TemporaryFileUploadHandler"]
FILE_UPLOAD_TEMP_DIR = str(MEDIA_ROOT) + "/slowjobs/incoming"
os.makedirs(FILE_UPLOAD_TEMP_DIR, exist_ok=True)

SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Every line says which job it is about (or "-").
    "filters": {"ticket": {"()": "slowjobs.logs.JobTicketFilter"}},
    "formatters": {
        "jobs": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(ticket)s] %(message)s"
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["ticket"],
            "formatter": "jobs",
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "slowjobs": {
            "handlers": ["console"],
            "level": env.str("LOG_LEVEL", "INFO"),
            "propagate": False,
        },
        # The Tasks framework's own lines (django_tasks: the 5.2 backport's).
        "django.tasks": {
            "handlers": ["console"],
            "level": "WARNING",
            "propagate": False,
        },
        "django_tasks": {
            "handlers": ["console"],
            "level": "WARNING",
            "propagate": False,
        },
    },
}
