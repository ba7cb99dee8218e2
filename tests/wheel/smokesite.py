"""The settings of a bare Django site that uses slowjobs from its wheel.

Its URLs and task are in ``smokeurls``; both run from a folder outside the
repository, so that only the installed package can be imported.
"""

from __future__ import annotations

from pathlib import Path

import django

HERE = Path(__file__).resolve().parent

SECRET_KEY = "wheel-smoke-secret-key-wheel-smoke-secret-key-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
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
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "slowjobs.submitter.SubmitterMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "smokeurls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": HERE / "smoke.sqlite3",
        # What slowjobs.W006 asks of SQLite: writers wait their turn.
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL;",
            "transaction_mode": "IMMEDIATE",
        },
    }
}
STATIC_URL = "/static/"
MEDIA_ROOT = HERE / "media"
USE_TZ = True
TASKS = {"default": {"BACKEND": "slowjobs.backend.SlowJobsBackend"}}
