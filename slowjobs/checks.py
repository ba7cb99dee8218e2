"""System checks: misconfiguration found by ``manage.py check``, with a way out.

- E001: a setting has a wrong value.
- W001, E002: the submitter middleware is missing or misplaced.
- W002: the job URLs are not mounted.
- W003: memcached on an address other hosts may reach (memcached has no
  authentication: whoever reaches it can read progress and cancel jobs).
- W004: several live processes run jobs with the in-process progress store
  (a database check: ``manage.py check --database default``, and ``migrate``).
- W005: ``DEBUG`` on while the site answers non-local host names.
- E003: ``SLOWJOBS_METRICS`` on without prometheus-client installed.
- W006: a SQLite database with deferred transactions (job threads and
  requests write at once; a read that turns into a write then fails with
  "database is locked" instead of waiting its turn).
- W007: ``SLOWJOBS_ADOPT_ON_START`` is set: ``SLOWJOBS_ADOPT`` replaced it.
- W008: a ``SLOWJOBS_`` setting that slowjobs does not read (a misspelling).
- W009: a memcached server of ``SLOWJOBS_MEMCACHED`` does not answer.
- W010: slowjobs is installed, but no ``TASKS`` backend is slowjobs.
- E004: a periodic schedule that cannot run (a bad cron expression or
  interval, an unknown task or time zone, arguments that are not JSON).
- W011: Django 5.2 without ``"django_tasks"`` in ``INSTALLED_APPS`` (the
  backport's checks and log lines are off; slowjobs runs its own checks).
"""

from __future__ import annotations

import difflib
import ipaddress
import socket
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from slowjobs import conf

MIDDLEWARE_PATH = "slowjobs.submitter.SubmitterMiddleware"
# Where the class lives; either path in MIDDLEWARE is the same middleware.
MIDDLEWARE_PATHS = (MIDDLEWARE_PATH, "slowjobs.web.submitter.SubmitterMiddleware")


CONFIGURATION_DOCS = "docs/configuration.md in slowjobs"


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        conf.load()
    except ImproperlyConfigured as exc:
        return [
            Error(
                str(exc),
                hint=f"Fix the value in your settings; {CONFIGURATION_DOCS} "
                "lists every setting with its default.",
                id="slowjobs.E001",
            )
        ]
    return []


@register()
def check_unknown_settings(
    app_configs: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for name in conf.unknown_settings():
        near = difflib.get_close_matches(name, conf.DEFAULTS, n=1, cutoff=0.8)
        messages.append(
            Warning(
                f"{name} is not a slowjobs setting, so it changes nothing.",
                hint=f"Did you mean {near[0]}?"
                if near
                else f"{CONFIGURATION_DOCS} lists every setting.",
                id="slowjobs.W008",
            )
        )
    return messages


def _answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@register()
def check_memcached_reachable(
    app_configs: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    if conf.problem() is not None:
        return []  # E001 says why
    silent = [f"{h}:{p}" for h, p in conf.get().memcached if not _answers(h, p)]
    if not silent:
        return []
    return [
        Warning(
            f"SLOWJOBS_MEMCACHED names {', '.join(silent)}, which does not answer: "
            "jobs still run, but progress and cancel requests go through the "
            "database until it does.",
            hint="Start memcached there, or correct SLOWJOBS_MEMCACHED.",
            id="slowjobs.W009",
        )
    ]


def _is_slowjobs(path: object) -> bool:
    from django.utils.module_loading import import_string

    from slowjobs.backend import SlowJobsBackend

    try:
        backend = import_string(str(path))
    except ImportError:
        return False  # Django's own check of TASKS names it
    return isinstance(backend, type) and issubclass(backend, SlowJobsBackend)


@register()
def check_tasks_backend(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    backends = getattr(settings, "TASKS", None) or {}
    ours = [
        alias
        for alias, params in backends.items()
        if isinstance(params, dict) and _is_slowjobs(params.get("BACKEND"))
    ]
    messages: list[CheckMessage] = []
    if not ours:
        default = (backends.get("default") or {}).get("BACKEND", "ImmediateBackend")
        messages.append(
            Warning(
                "slowjobs is installed, but no TASKS backend is slowjobs: tasks run "
                f"on {default}, and slowjobs.responses.submit() refuses them.",
                hint='Set TASKS = {"default": {"BACKEND": '
                '"slowjobs.backend.SlowJobsBackend"}}.',
                id="slowjobs.W010",
            )
        )
    from django.apps import apps

    if __import__("django").VERSION < (6, 0) and not apps.is_installed("django_tasks"):
        messages.append(
            Warning(
                "On Django 5.2 the Tasks framework is the django_tasks app, which "
                "is not in INSTALLED_APPS: its checks and log lines are off.",
                hint='Add "django_tasks" to INSTALLED_APPS.',
                id="slowjobs.W011",
            )
        )
        # Its check of every backend is off with it: slowjobs runs its own.
        for alias in ours:
            messages.extend(check_backend(alias))
    return messages


@register()
def check_deprecated(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not hasattr(settings, conf.DEPRECATED_ADOPT):
        return []
    return [
        Warning(
            f"{conf.DEPRECATED_ADOPT} is replaced by SLOWJOBS_ADOPT (on by "
            "default): every process now takes orphaned and handed-back jobs "
            "for as long as it lives, not only as it starts.",
            hint=(
                f"Remove {conf.DEPRECATED_ADOPT}; set SLOWJOBS_ADOPT = False "
                "only for a process that must take nothing."
            ),
            id="slowjobs.W007",
        )
    ]


def check_backend(alias: str) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    middleware = list(getattr(settings, "MIDDLEWARE", []))
    ours = next((path for path in middleware if path in MIDDLEWARE_PATHS), None)
    if ours is None:
        messages.append(
            Warning(
                f"Task backend {alias!r} is slowjobs, but {MIDDLEWARE_PATH} is not "
                "in MIDDLEWARE: jobs enqueued by requests record no submitter, so "
                "only users with slowjobs.view_job can see them.",
                hint=f"Add {MIDDLEWARE_PATH!r} after AuthenticationMiddleware.",
                id="slowjobs.W001",
            )
        )
    elif "django.contrib.auth.middleware.AuthenticationMiddleware" in middleware:
        auth = middleware.index(
            "django.contrib.auth.middleware.AuthenticationMiddleware"
        )
        if middleware.index(ours) < auth:
            messages.append(
                Error(
                    f"{MIDDLEWARE_PATH} must come after AuthenticationMiddleware, "
                    "or it cannot see who is logged in.",
                    hint="Move it below AuthenticationMiddleware in MIDDLEWARE.",
                    id="slowjobs.E002",
                )
            )
    if not urls_mounted():
        messages.append(url_warning(alias))
    return messages


def urls_mounted() -> bool:
    """Whether ``slowjobs.urls`` is included; a worker-only settings module
    (no ``ROOT_URLCONF``) or a URLconf that fails to import has no say here."""
    from slowjobs.web.joburls import PLACEHOLDER, job_url

    if not getattr(settings, "ROOT_URLCONF", None):
        return True
    try:
        return job_url("status", PLACEHOLDER) is not None
    except Exception:  # Django's own URL checks report a broken URLconf
        return True


def url_warning(alias: str) -> Warning:
    return Warning(
        f"Task backend {alias!r} is slowjobs, but its URLs are not mounted: "
        "slowjobs.responses.submit() cannot point clients at a ticket.",
        hint='Add path("jobs/", include("slowjobs.urls")) to your URLconf.',
        id="slowjobs.W002",
    )


LOCAL_HOST_NAMES = frozenset(
    {"localhost", ".localhost", "127.0.0.1", "::1", "[::1]", "testserver"}
)


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


@register(Tags.security)
def check_memcached_exposure(
    app_configs: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    try:
        settings_ = conf.get()
    except ImproperlyConfigured:
        return []  # E001 says why
    exposed = [f"{h}:{p}" for h, p in settings_.memcached if not is_loopback(h)]
    if not exposed or settings_.memcached_trusted:
        return []
    return [
        Warning(
            f"SLOWJOBS_MEMCACHED names servers off this host ({', '.join(exposed)}). "
            "memcached has no authentication: anyone who reaches them can read "
            "job progress and cancel jobs.",
            hint="Keep memcached on a private network or firewalled to the web "
            "servers, then set SLOWJOBS_MEMCACHED_TRUSTED = True to say so.",
            id="slowjobs.W003",
        )
    ]


def local_store_warning(processes: int) -> CheckMessage:
    return Warning(
        f"{processes} processes run jobs, but SLOWJOBS_MEMCACHED is empty: each "
        "keeps live progress in its own memory, which the others cannot read, "
        "so every status answer comes from the database copy (up to "
        "SLOWJOBS_PROGRESS_DB_INTERVAL old), and cancel requests wait for the "
        "database look.",
        hint="Run memcached and set SLOWJOBS_MEMCACHED to its address.",
        id="slowjobs.W004",
    )


@register(Tags.database)
def check_store_shared_by_processes(
    app_configs: Any = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if not databases or "default" not in databases:
        return []
    try:
        if conf.get().memcached:
            return []
    except ImproperlyConfigured:
        return []
    from django.db import DatabaseError

    from slowjobs.models import WorkerProcess

    try:
        alive = WorkerProcess.objects.alive().count()
    except DatabaseError:
        return []  # not migrated yet: nothing runs
    return [local_store_warning(alive)] if alive > 1 else []


@register(Tags.security)
def check_debug_exposure(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not settings.DEBUG:
        return []
    public = [
        host for host in settings.ALLOWED_HOSTS if host.lower() not in LOCAL_HOST_NAMES
    ]
    if not public:
        return []
    return [
        Warning(
            f"DEBUG is on while ALLOWED_HOSTS accepts {', '.join(public)}: an error "
            "page would show visitors tracebacks with job arguments, results and "
            "settings.",
            hint="Turn DEBUG off, or keep ALLOWED_HOSTS to local names.",
            id="slowjobs.W005",
        )
    ]


@register()
def check_periodic(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if conf.problem() is not None:
        return []  # E001 says what is wrong first
    from slowjobs.periodic import declared
    from slowjobs.periodic.clock import task_for

    good, bad = declared.load()
    for schedule in good:
        try:
            task_for(schedule)
        except declared.BadSchedule as exc:
            bad.append(exc)
    return [
        Error(
            str(problem),
            hint="Fix the schedule in SLOWJOBS_PERIODIC (or SLOWJOBS_PURGE_SCHEDULE); "
            "until then it does not run, and the others do.",
            id="slowjobs.E004",
        )
        for problem in bad
    ]


@register()
def check_metrics(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from importlib.util import find_spec

    try:
        wanted = conf.get().metrics
    except ImproperlyConfigured:
        return []
    if wanted and find_spec("prometheus_client") is None:
        return [
            Error(
                "SLOWJOBS_METRICS is True, but prometheus-client is not installed.",
                hint="pip install 'slowjobs[metrics]', or turn SLOWJOBS_METRICS off.",
                id="slowjobs.E003",
            )
        ]
    return []


def sqlite_transaction_warnings(databases: dict[str, Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for alias, database in databases.items():
        if database.get("ENGINE") != "django.db.backends.sqlite3":
            continue
        mode = (database.get("OPTIONS") or {}).get("transaction_mode")
        if str(mode).upper() != "IMMEDIATE":
            messages.append(
                Warning(
                    f"Database {alias!r} is SQLite with deferred transactions: job "
                    "threads and requests write at once, and a transaction that "
                    "reads before it writes fails with 'database is locked' "
                    "instead of waiting its turn.",
                    hint=f"Add DATABASES[{alias!r}]['OPTIONS'] = "
                    "{'transaction_mode': 'IMMEDIATE'} to your settings (with "
                    "WAL, also 'init_command': 'PRAGMA journal_mode=WAL;').",
                    id="slowjobs.W006",
                )
            )
    return messages


@register()
def check_sqlite_transactions(
    app_configs: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    return sqlite_transaction_warnings(settings.DATABASES)
