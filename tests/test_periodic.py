"""Periodic schedules in one process: slots, exactly once, missed slots, DST.

The clock is driven with explicit times (``look(now=...)``) against the
real database, so a day of slots, a downtime or a DST change takes no
waiting; the servers' own clocks are tested in test_periodic_servers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from slowjobs.checks import check_periodic
from slowjobs.models import Job, JobStatus, Schedule
from slowjobs.periodic import declared
from slowjobs.periodic.clock import Clock
from slowjobs.signals import slots_missed

pytestmark = pytest.mark.django_db(transaction=True)

NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def periodic(**schedules: dict[str, Any]) -> Any:
    return override_settings(SLOWJOBS_PERIODIC=schedules, SLOWJOBS_PURGE_SCHEDULE=None)


def slots_of(name: str) -> list[datetime]:
    return list(
        Job.objects.filter(schedule=name, scheduled_for__isnull=False)
        .order_by("scheduled_for")
        .values_list("scheduled_for", flat=True)
    )


def started_at(name: str, moment: datetime) -> Clock:
    """A clock whose schedule row was first seen at ``moment``."""
    clock = Clock()
    clock.look(now=moment)
    return clock


def test_every_slot_runs_once_however_many_processes_look():
    with periodic(tick={"task": "tests.tasks.noop", "every": 10}):
        clocks = [started_at("tick", NOON), Clock(), Clock()]
        for second in range(1, 61):
            for clock in clocks:  # three processes at every second
                clock.look(now=NOON + timedelta(seconds=second))
    assert slots_of("tick") == [NOON + timedelta(seconds=s) for s in range(10, 61, 10)]


def test_a_new_schedule_has_no_backlog_and_says_when_it_runs_next():
    with periodic(nightly={"task": "tests.tasks.noop", "cron": "0 3 * * *"}):
        clock = started_at("nightly", NOON)
        assert slots_of("nightly") == []
        assert Schedule.objects.get(name="nightly").last_slot == datetime(
            2026, 6, 1, 3, 0, tzinfo=UTC
        )
        clock.look(now=datetime(2026, 6, 2, 3, 0, 5, tzinfo=UTC))
    assert slots_of("nightly") == [datetime(2026, 6, 2, 3, 0, tzinfo=UTC)]


def test_jobs_of_a_schedule_are_ordinary_jobs_that_run(finished):
    with periodic(adder={"task": "tests.tasks.add", "every": 60, "args": [2, 3]}):
        clock = started_at("adder", NOON)
        look = clock.look(now=NOON + timedelta(seconds=61))
    assert look.enqueued == [("adder", NOON + timedelta(seconds=60))]
    job = Job.objects.get(schedule="adder")
    finished.wait(str(job.pk))
    job.refresh_from_db()
    assert (job.status, job.result, job.task_path) == (
        JobStatus.SUCCEEDED, 5, "tests.tasks.add"
    )  # fmt: skip


@pytest.mark.parametrize(("policy", "expected"), [("latest", 1), ("skip", 0)])
def test_after_downtime_the_policy_says_what_runs(policy, expected):
    received: list[dict[str, Any]] = []

    def receive(sender: str, **kwargs: Any) -> None:
        received.append({"schedule": sender, **kwargs})

    slots_missed.connect(receive)
    try:
        with periodic(
            hourly={"task": "tests.tasks.noop", "cron": "0 * * * *", "missed": policy}
        ):
            started_at("hourly", NOON)
            # Every process down from 12:00 until 17:30: five slots missed.
            Clock().look(now=NOON.replace(hour=17, minute=30))
    finally:
        slots_missed.disconnect(receive)
    newest = NOON.replace(hour=17)
    assert slots_of("hourly") == [newest] * expected
    assert received == [
        {"schedule": "hourly", "signal": slots_missed, "slots": 5, "newest": newest,
         "policy": policy}
    ]  # fmt: skip
    assert Schedule.objects.get(name="hourly").last_slot == newest


def test_a_late_slot_within_the_grace_still_runs_and_none_is_skipped():
    with periodic(tick={"task": "tests.tasks.noop", "every": 5, "grace": 30}):
        started_at("tick", NOON)
        # 25 s without a look (a busy machine): all five slots still run.
        Clock().look(now=NOON + timedelta(seconds=25))
    assert slots_of("tick") == [NOON + timedelta(seconds=s) for s in range(5, 26, 5)]


def test_a_disabled_schedule_enqueues_nothing():
    with periodic(tick={"task": "tests.tasks.noop", "every": 1}):
        started_at("tick", NOON)
        Schedule.objects.filter(name="tick").update(enabled=False)
        Clock().look(now=NOON + timedelta(seconds=5))
    assert slots_of("tick") == []


def test_idle_processes_sleep_until_the_next_slot():
    with periodic(nightly={"task": "tests.tasks.noop", "cron": "0 3 * * *"}):
        clock = Clock()
        clock.look()
        due = clock.due_in()
    assert due is not None
    assert 0 < due <= 24 * 3600


@override_settings(TIME_ZONE="Europe/Berlin")
def test_a_daily_slot_in_the_hour_dst_skips_runs_at_the_change_and_once_when_repeated():
    with periodic(night={"task": "tests.tasks.noop", "cron": "30 2 * * *"}):
        spring = datetime(2026, 3, 27, 12, tzinfo=UTC)
        clock = started_at("night", spring)
        for hour in range(0, 24 * 4):  # looks every hour, 27 to 31 March
            clock.look(now=spring + timedelta(hours=hour, minutes=1))
        autumn = datetime(2026, 10, 23, 12, tzinfo=UTC)
        Schedule.objects.filter(name="night").update(last_slot=autumn)
        for minutes in range(0, 4 * 24 * 60, 10):  # every 10 min, 23 to 27 Oct
            clock.look(now=autumn + timedelta(minutes=minutes))
    assert slots_of("night") == [
        datetime(2026, 3, 28, 1, 30, tzinfo=UTC),  # 02:30 CET
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # 02:30 does not exist: 03:00 CEST
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),  # 02:30 CEST
        datetime(2026, 3, 31, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 24, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 happens twice: once
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),  # 02:30 CET
        datetime(2026, 10, 27, 1, 30, tzinfo=UTC),
    ]


@override_settings(TIME_ZONE="Europe/Berlin")
def test_an_hourly_schedule_runs_every_hour_of_the_long_night():
    with periodic(hourly={"task": "tests.tasks.noop", "cron": "0 * * * *"}):
        night = datetime(2026, 10, 24, 22, 30, tzinfo=UTC)  # 00:30 CEST
        clock = started_at("hourly", night)
        for minutes in range(0, 6 * 60, 5):
            clock.look(now=night + timedelta(minutes=minutes))
    # 01:00 CEST, 02:00 CEST, 02:00 CET, 03:00 CET...: one an hour in UTC.
    assert slots_of("hourly") == [
        datetime(2026, 10, 24, 23, tzinfo=UTC) + timedelta(hours=h) for h in range(6)
    ]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"task": "tests.tasks.noop", "cron": "61 * * * *"}, "bad cron expression"),
        ({"task": "tests.tasks.nothing_here", "every": 5}, "cannot import task"),
        ({"task": "tests.tasks.gate", "every": 5}, "is not a task"),
        ({"task": "tests.tasks.noop"}, "either 'cron' or 'every'"),
        ({"task": "tests.tasks.noop", "every": 0.5}, "'every' must be seconds >= 1"),
        ({"task": "tests.tasks.noop", "every": 5, "timezone": "Mars/Olympus"},
         "unknown time zone"),
        ({"task": "tests.tasks.noop", "every": 5, "missed": "all"}, "'missed' must be"),
        ({"task": "tests.tasks.noop", "every": 5, "cron": "* * * * *"}, "not both"),
        ({"task": "tests.tasks.noop", "every": 5, "when": 1}, "unknown keys 'when'"),
        ({"task": "tests.tasks.echo", "every": 5, "args": [b"x"]}, "args[0]"),
    ],
)  # fmt: skip
def test_a_schedule_that_cannot_run_is_a_check_error_naming_it(spec, says):
    with periodic(broken=spec, fine={"task": "tests.tasks.noop", "every": 5}):
        errors = check_periodic()
        assert [e.id for e in errors] == ["slowjobs.E004"]
        assert "'broken'" in errors[0].msg
        assert says in errors[0].msg
        with pytest.raises(SystemCheckError, match=r"slowjobs\.E004"):
            call_command("check")
        # The others still run.
        assert [s.name for s in Clock()._runnable()] == ["fine"]


def test_purge_is_scheduled_daily_by_default_and_a_setting_turns_it_off():
    good, bad = declared.load()
    assert bad == []
    assert [(s.name, s.cron) for s in good] == [(declared.PURGE, "30 3 * * *")]
    with override_settings(SLOWJOBS_PURGE_SCHEDULE=None):
        assert declared.load() == ([], [])
