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
        ("SLOWJOBS_MEMCACHED", "h:99999", "entries must look like 'host:port'"),
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
