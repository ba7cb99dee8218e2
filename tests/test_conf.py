from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from slowjobs import conf


def test_defaults():
    settings = conf.load()
    assert settings.executor == "pool"
    assert settings.workers == 4
    assert settings.max_upload_mb == 1024


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "SLOWJOBS_EXECUTOR",
            "fork",
            "SLOWJOBS_EXECUTOR must be one of pool, delegate",
        ),
        ("SLOWJOBS_WORKERS", 0, "SLOWJOBS_WORKERS must be an integer >= 1, not 0"),
        ("SLOWJOBS_WORKERS", "4", "SLOWJOBS_WORKERS must be an integer >= 1"),
        ("SLOWJOBS_MAX_THREADS", -1, "SLOWJOBS_MAX_THREADS must be an integer >= 1"),
        ("SLOWJOBS_SUBMIT_TIMEOUT", -1, "SLOWJOBS_SUBMIT_TIMEOUT must be a number"),
        ("SLOWJOBS_MEMCACHED", "localhost", "entries must look like 'host:port'"),
        ("SLOWJOBS_MAX_WAIT", 301, "SLOWJOBS_MAX_WAIT must be at most 300 seconds"),
        ("SLOWJOBS_MAX_WAIT", -1, "SLOWJOBS_MAX_WAIT must be a number of seconds"),
        ("SLOWJOBS_MAX_WAITERS", -1, "SLOWJOBS_MAX_WAITERS must be an integer >= 0"),
        ("SLOWJOBS_MEMCACHED", "h:99999", "entries must look like 'host:port'"),
        ("SLOWJOBS_RUNS_IN", "fork", "SLOWJOBS_RUNS_IN must be one of thread, process"),
        ("SLOWJOBS_PROCESSES", 0, "SLOWJOBS_PROCESSES must be an integer >= 1"),
        ("SLOWJOBS_PROCESS_NICENESS", 20, "must be an integer from 0 to 19, not 20"),
        ("SLOWJOBS_THREAD_NICENESS", -1, "must be an integer from 0 to 19, not -1"),
        ("SLOWJOBS_PROCESS_STOP_GRACE", -1, "must be a number of seconds >= 0"),
        ("SLOWJOBS_ADOPT", "yes", "SLOWJOBS_ADOPT must be True or False"),
        ("SLOWJOBS_ADOPT_INTERVAL", 0, "must be a number of seconds > 0"),
        ("SLOWJOBS_HOST", 7, "SLOWJOBS_HOST must be a string"),
        ("SLOWJOBS_ADVISORY_LOCKS", "no", "must be True or False"),
    ],
)
def test_a_bad_setting_is_a_clear_error_naming_it(name, value, message):
    with (
        override_settings(**{name: value}),
        pytest.raises(ImproperlyConfigured, match=message),
    ):
        conf.load()


def test_memcached_servers_parse_from_a_string_or_a_list():
    assert conf.parse_servers("X", "a:1, b:2") == (("a", 1), ("b", 2))
    assert conf.parse_servers("X", ["[::1]:11211"]) == (("::1", 11211),)
    assert conf.parse_servers("X", "") == ()


def test_settings_are_reread_after_a_change():
    assert conf.get().workers == 4
    with override_settings(SLOWJOBS_WORKERS=7):
        assert conf.get().workers == 7
    assert conf.get().workers == 4


@pytest.mark.django_db
def test_system_check_reports_a_bad_setting():
    with (
        override_settings(SLOWJOBS_QUEUE_SIZE=-5),
        pytest.raises(SystemCheckError, match=r"slowjobs\.E001"),
    ):
        call_command("check")


@pytest.mark.django_db
def test_system_check_warns_without_the_submitter_middleware(settings):
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "slowjobs.submitter.SubmitterMiddleware"
    ]
    with pytest.raises(SystemCheckError, match=r"slowjobs\.W001"):
        call_command("check", fail_level="WARNING")


@pytest.mark.django_db
def test_system_check_warns_when_the_job_urls_are_not_mounted(settings):
    settings.ROOT_URLCONF = "tests.urls_without_jobs"
    with pytest.raises(SystemCheckError, match=r"slowjobs\.W002"):
        call_command("check", fail_level="WARNING")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("servers", "warned"),
    [
        (["127.0.0.1:11211"], False),
        (["localhost:11211", "[::1]:11211"], False),
        (["10.0.0.5:11211"], True),
        (["cache.internal:11211"], True),
    ],
)
def test_system_check_warns_about_memcached_off_this_host(settings, servers, warned):
    settings.SLOWJOBS_MEMCACHED = servers
    settings.SILENCED_SYSTEM_CHECKS = ["slowjobs.W009"]  # none of them runs
    if warned:
        with pytest.raises(SystemCheckError, match=r"slowjobs\.W003"):
            call_command("check", fail_level="WARNING")
        settings.SLOWJOBS_MEMCACHED_TRUSTED = True  # the note that silences it
    call_command("check", fail_level="WARNING")


@pytest.mark.django_db
def test_system_check_warns_about_debug_with_public_hosts(settings):
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    call_command("check", fail_level="WARNING")
    settings.ALLOWED_HOSTS = ["localhost", "jobs.example.com"]
    with pytest.raises(SystemCheckError, match=r"slowjobs\.W005.*jobs\.example\.com"):
        call_command("check", fail_level="WARNING")
    settings.DEBUG = False
    call_command("check", fail_level="WARNING")


@pytest.mark.django_db
def test_database_check_warns_when_processes_share_no_progress_store(settings):
    from django.utils import timezone

    from slowjobs.models import WorkerProcess

    now = timezone.now()
    for pid in (101, 102):
        WorkerProcess.objects.create(
            id=f"web:{pid}",
            host="web",
            pid=pid,
            started_at=now,
            last_seen=now,
            mode="pool",
        )
    settings.SLOWJOBS_MEMCACHED = []
    with pytest.raises(SystemCheckError, match=r"slowjobs\.W004"):
        call_command("check", databases=["default"], fail_level="WARNING")
    call_command("check", fail_level="WARNING")  # without the database: quiet
    settings.SLOWJOBS_MEMCACHED = ["127.0.0.1:11211"]
    settings.SILENCED_SYSTEM_CHECKS = ["slowjobs.W009"]  # no memcached runs there
    call_command("check", databases=["default"], fail_level="WARNING")


def test_nothing_in_the_package_can_pickle():
    """No pickle anywhere: nothing imports it, and Django's pickling cache is unused."""
    import pathlib
    import re

    package = pathlib.Path(__file__).resolve().parent.parent / "slowjobs"
    importing = [
        str(path)
        for path in package.rglob("*.py")
        if re.search(
            r"^\s*(import|from)\s+(c?pickle|marshal|shelve)\b", path.read_text(), re.M
        )
    ]
    assert importing == []


def test_sqlite_without_immediate_transactions_is_warned_about():
    from slowjobs.checks import sqlite_transaction_warnings

    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": "x.sqlite3"}
    deferred = sqlite_transaction_warnings({"default": sqlite})
    assert [message.id for message in deferred] == ["slowjobs.W006"]
    assert "'default'" in deferred[0].msg
    immediate = {**sqlite, "OPTIONS": {"transaction_mode": "IMMEDIATE"}}
    postgres = {"ENGINE": "django.db.backends.postgresql", "NAME": "x"}
    assert sqlite_transaction_warnings({"a": immediate, "b": postgres}) == []


def test_adoption_is_on_by_default_and_the_old_setting_still_counts(settings):
    from slowjobs.checks import check_deprecated

    del settings.SLOWJOBS_ADOPT  # the test settings turn it off
    assert conf.load().adopt is True
    assert check_deprecated() == []
    settings.SLOWJOBS_ADOPT_ON_START = False
    assert conf.load().adopt is False
    assert [message.id for message in check_deprecated()] == ["slowjobs.W007"]
    settings.SLOWJOBS_ADOPT_ON_START = "no"
    with pytest.raises(ImproperlyConfigured, match="SLOWJOBS_ADOPT_ON_START must"):
        conf.load()
    settings.SLOWJOBS_ADOPT = True  # the new setting wins
    assert conf.load().adopt is True
