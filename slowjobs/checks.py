"""System checks: misconfiguration found by ``manage.py check``, with a way out."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse

from . import conf

MIDDLEWARE_PATH = "slowjobs.submitter.SubmitterMiddleware"


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        conf.load()
    except ImproperlyConfigured as exc:
        return [
            Error(
                str(exc),
                hint="See the configuration reference in the slowjobs README.",
                id="slowjobs.E001",
            )
        ]
    return []


def check_backend(alias: str) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    middleware = list(getattr(settings, "MIDDLEWARE", []))
    if MIDDLEWARE_PATH not in middleware:
        messages.append(
            Warning(
                f"Task backend {alias!r} is slowjobs, but {MIDDLEWARE_PATH} is not "
                "in MIDDLEWARE: jobs enqueued by requests record no submitter, so "
                "only staff can see them.",
                hint=f"Add {MIDDLEWARE_PATH!r} after AuthenticationMiddleware.",
                id="slowjobs.W001",
            )
        )
    elif "django.contrib.auth.middleware.AuthenticationMiddleware" in middleware:
        auth = middleware.index(
            "django.contrib.auth.middleware.AuthenticationMiddleware"
        )
        if middleware.index(MIDDLEWARE_PATH) < auth:
            messages.append(
                Error(
                    f"{MIDDLEWARE_PATH} must come after AuthenticationMiddleware, "
                    "or it cannot see who is logged in.",
                    hint="Move it below AuthenticationMiddleware in MIDDLEWARE.",
                    id="slowjobs.E002",
                )
            )
    try:
        reverse("slowjobs:status", args=["00000000-0000-0000-0000-000000000000"])
    except NoReverseMatch:
        messages.append(
            Warning(
                f"Task backend {alias!r} is slowjobs, but its URLs are not mounted: "
                "slowjobs.responses.submit() cannot point clients at a ticket.",
                hint='Add path("jobs/", include("slowjobs.urls")) to your URLconf.',
                id="slowjobs.W002",
            )
        )
    return messages
