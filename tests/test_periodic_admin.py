"""The admin's schedules: enable/disable (persisted) and "run now", each
behind its own permission, and the job list filtered by schedule.

The browser test drives Debian's headless Chromium against gunicorn whose
workers keep the clock; the others use Django's test client.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings

from slowjobs.models import Job, JobStatus, Schedule
from slowjobs.periodic.clock import Clock
from tests.conftest import start_gunicorn, stop
from tests.recovery_scenarios import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT_MS = 30_000
SCHEDULES = {
    "tick": {"task": "tests.tasks.noop", "every": 1},
    "nightly": {"task": "tests.tasks.add", "cron": "0 3 * * *", "args": [2, 2]},
}
PASSWORD = "a-long-password-1"


def staff_with(django_user_model, name: str, *codenames: str):
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    user = django_user_model.objects.create_user(name, is_staff=True)
    # Hashed as the server (project settings) checks it, not with the tests' MD5.
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "saltsalt")
    user.save()
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def post_action(client, action: str, *names: str):
    return client.post(
        "/admin/slowjobs/schedule/",
        {"action": action, "_selected_action": list(names)},
        follow=True,
    )


@override_settings(SLOWJOBS_PERIODIC=SCHEDULES)
def test_each_action_needs_its_own_permission_not_the_staff_flag(
    client, django_user_model
):
    Clock().look()  # the rows a server's clock makes
    client.force_login(staff_with(django_user_model, "viewer", "view_schedule"))
    page = client.get("/admin/slowjobs/schedule/")
    assert page.status_code == 200
    assert b"tick" in page.content
    assert b"run_schedules_now" not in page.content
    post_action(client, "disable_schedules", "tick")
    post_action(client, "run_schedules_now", "nightly")
    assert Schedule.objects.get(name="tick").enabled
    assert not Job.objects.filter(schedule="nightly").exists()


@override_settings(SLOWJOBS_PERIODIC=SCHEDULES)
def test_a_declared_schedule_cannot_be_deleted(client, django_user_model):
    Clock().look()
    keeper = staff_with(
        django_user_model, "keeper", "view_schedule", "change_schedule",
        "delete_schedule",
    )  # fmt: skip
    client.force_login(keeper)
    page = client.get("/admin/slowjobs/schedule/tick/delete/")
    assert page.status_code == 403
    assert Schedule.objects.filter(name="tick").exists()


def test_disable_and_run_now_from_the_admin_in_chromium(
    browser, collected_static, tmp_path, django_user_model
):
    staff_with(
        django_user_model, "operator", "view_schedule", "change_schedule",
        "run_schedule", "view_job",
    )  # fmt: skip
    server = start_gunicorn(tmp_path, SLOWJOBS_PERIODIC=json.dumps(SCHEDULES))
    context = browser.new_context(base_url=server.url)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        wait_until(
            lambda: Job.objects.filter(schedule="tick").count() >= 2,
            60,
            "the servers' clocks did not run the 1 s schedule",
        )
        page = context.new_page()
        page.goto("/admin/login/")
        page.fill("#id_username", "operator")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(re.compile(r"/admin/$"))

        page.goto("/admin/slowjobs/schedule/")
        rows = page.inner_text("#result_list")
        assert "every 1 s" in rows
        assert "0 3 * * * (UTC)" in rows
        assert "slowjobs.purge_jobs" in rows  # scheduled by default

        page.check("input[name=_selected_action][value=tick]")
        page.select_option("select[name=action]", "disable_schedules")
        page.click("button[name=index]")
        assert "Disabled 1 schedule." in page.inner_text(".messagelist")
        off = datetime.now(UTC)
        time.sleep(3)
        assert not Job.objects.filter(schedule="tick", enqueued_at__gt=off).exists()
        assert not Schedule.objects.get(name="tick").enabled  # persisted

        page.check("input[name=_selected_action][value=nightly]")
        page.select_option("select[name=action]", "run_schedules_now")
        page.click("button[name=index]")
        page.click(".messagelist a:text('job enqueued')")
        page.wait_for_url(re.compile(r"/admin/slowjobs/job/[0-9a-f-]{36}/change/$"))
        job = Job.objects.get(schedule="nightly")
        assert job.scheduled_for is None
        wait_until(
            lambda: Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED,
            30,
            "the job run from the admin did not succeed",
        )
        assert Job.objects.get(pk=job.pk).result == 4

        page.goto("/admin/slowjobs/schedule/")
        nightly = page.locator("#result_list tr", has_text="nightly")
        assert "Succeeded" in nightly.inner_text()
        nightly.locator("a:text('its jobs')").click()
        page.wait_for_url(re.compile(r"/admin/slowjobs/job/\?schedule=nightly$"))
        assert page.locator("#result_list tbody tr").count() == 1

        page.goto("/admin/slowjobs/schedule/")
        page.check("input[name=_selected_action][value=tick]")
        page.select_option("select[name=action]", "enable_schedules")
        before_enabling = datetime.now(UTC)
        page.click("button[name=index]")
        assert "Enabled 1 schedule." in page.inner_text(".messagelist")
        on = datetime.now(UTC)
        wait_until(
            lambda: Job.objects.filter(schedule="tick", scheduled_for__gt=on).exists(),
            10,
            "an enabled schedule did not run again",
        )
        # Nothing is owed for the slots that passed while it was off.
        assert not Job.objects.filter(
            schedule="tick", scheduled_for__gt=off, scheduled_for__lt=before_enabling
        ).exists()
    finally:
        context.close()
        stop(server.process)


@override_settings(SLOWJOBS_PERIODIC=SCHEDULES)
def test_enabled_again_from_its_form_it_owes_nothing_for_the_time_off(
    client, django_user_model
):
    from datetime import timedelta

    Clock().look()
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    Schedule.objects.filter(name="tick").update(enabled=False, last_slot=long_ago)
    editor = staff_with(django_user_model, "editor", "view_schedule", "change_schedule")
    client.force_login(editor)
    answer = client.post("/admin/slowjobs/schedule/tick/change/", {"enabled": "on"})
    assert answer.status_code == 302
    row = Schedule.objects.get(name="tick")
    assert row.enabled
    assert row.last_slot > long_ago + timedelta(hours=1)
    look = Clock().look()
    assert look.missed == {}
