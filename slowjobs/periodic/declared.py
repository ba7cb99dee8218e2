"""The schedules of ``SLOWJOBS_PERIODIC``, checked, with their slot times.

A schedule runs its task at each slot: the times of a cron expression in
its time zone (Django's ``TIME_ZONE`` unless it names its own), or every N
seconds.  Cron expressions are read by cronsim, which follows Debian's cron
through DST changes: a slot in the hour that is skipped runs at the change,
and one in the hour that repeats runs once.  Interval slots are multiples
of the interval since the epoch, so every process agrees on them.
"""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cronsim import CronSim, CronSimError
from django.conf import settings as django_settings

from slowjobs import conf

MISSED_POLICIES = ("latest", "skip")
KEYS = frozenset(
    {"task", "cron", "every", "args", "kwargs", "missed", "timezone", "grace"}
)
# The name of the schedule that purges old jobs (SLOWJOBS_PURGE_SCHEDULE).
PURGE = "slowjobs.purge_jobs"
PURGE_TASK = "slowjobs.periodic.tasks.purge_jobs"
# The common cron nicknames, as the five fields they stand for.
NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# A cron expression that matches nothing within cronsim's 50 years.
NEVER = datetime.max.replace(tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)


class BadSchedule(ValueError):
    """A schedule that cannot run; the message names it and says why."""


@dataclass(frozen=True)
class Declared:
    name: str
    task_path: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    cron: str | None = None
    every: float | None = None
    zone: zoneinfo.ZoneInfo = field(default_factory=lambda: zoneinfo.ZoneInfo("UTC"))
    missed: str = "latest"
    grace: float = 60.0

    @property
    def description(self) -> str:
        if self.every is not None:
            return f"every {self.every:g} s"
        return f"{self.cron} ({self.zone.key})"

    def next_after(self, moment: datetime) -> datetime:
        """The first slot strictly after ``moment`` (UTC)."""
        if self.every is not None:
            return _from_epoch(
                (math.floor(_epoch(moment) / self.every) + 1) * self.every
            )
        return self._cron_from(moment, reverse=False)

    def at_or_before(self, moment: datetime) -> datetime:
        """The newest slot at or before ``moment`` (UTC)."""
        if self.every is not None:
            return _from_epoch(math.floor(_epoch(moment) / self.every) * self.every)
        return self._cron_from(moment + ONE_MICROSECOND, reverse=True)

    def slots(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """The slots in (after, until], oldest first."""
        slot = self.next_after(after)
        while slot <= until:
            yield slot
            slot = self.next_after(slot)

    def _cron_from(self, moment: datetime, *, reverse: bool) -> datetime:
        assert self.cron is not None
        try:
            found = next(
                CronSim(self.cron, moment.astimezone(self.zone), reverse=reverse)
            )
        except StopIteration:
            return NEVER if not reverse else datetime.min.replace(tzinfo=UTC)
        return found.astimezone(UTC)


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def parse(name: object, spec: object, *, default_zone: str) -> Declared:
    """One entry of ``SLOWJOBS_PERIODIC``; ``BadSchedule`` says what is wrong."""
    if not isinstance(name, str) or not name or len(name) > 100:
        raise BadSchedule(
            f"Schedule names must be strings of 1 to 100 characters, not {name!r}."
        )
    if not isinstance(spec, dict):
        raise BadSchedule(f"Schedule {name!r} must be a dict, not {spec!r}.")
    unknown = sorted(set(spec) - KEYS)
    if unknown:
        raise BadSchedule(
            f"Schedule {name!r} has unknown keys {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(sorted(KEYS))})."
        )
    task_path = spec.get("task")
    if not isinstance(task_path, str) or "." not in task_path:
        raise BadSchedule(
            f"Schedule {name!r} needs 'task': the dotted path of a task, "
            f"not {task_path!r}."
        )
    cron, every = spec.get("cron"), spec.get("every")
    if (cron is None) == (every is None):
        raise BadSchedule(
            f"Schedule {name!r} needs either 'cron' or 'every' (not both)."
        )
    args, kwargs = spec.get("args", []), spec.get("kwargs", {})
    if not isinstance(args, list | tuple) or not isinstance(kwargs, dict):
        raise BadSchedule(
            f"Schedule {name!r}: 'args' must be a list and 'kwargs' a dict."
        )
    missed = spec.get("missed", "latest")
    if missed not in MISSED_POLICIES:
        raise BadSchedule(
            f"Schedule {name!r}: 'missed' must be one of "
            f"{', '.join(MISSED_POLICIES)}, not {missed!r}."
        )
    grace = spec.get("grace", conf.get().periodic_grace)
    if isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0:
        raise BadSchedule(
            f"Schedule {name!r}: 'grace' must be seconds >= 0, not {grace!r}."
        )
    zone_name = spec.get("timezone", default_zone)
    try:
        zone = zoneinfo.ZoneInfo(str(zone_name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise BadSchedule(
            f"Schedule {name!r}: unknown time zone {zone_name!r}."
        ) from exc
    if every is not None:
        if isinstance(every, bool) or not isinstance(every, int | float) or every < 1:
            raise BadSchedule(
                f"Schedule {name!r}: 'every' must be seconds >= 1, not {every!r}."
            )
        return Declared(name, task_path, list(args), dict(kwargs), every=float(every),
                        zone=zone, missed=missed, grace=float(grace))  # fmt: skip
    if not isinstance(cron, str):
        raise BadSchedule(f"Schedule {name!r}: 'cron' must be a string, not {cron!r}.")
    expression = NICKNAMES.get(cron.strip().lower(), cron.strip())
    try:
        CronSim(expression, datetime.now(zone))
    except CronSimError as exc:
        raise BadSchedule(
            f"Schedule {name!r}: bad cron expression {cron!r} ({exc})."
        ) from exc
    return Declared(name, task_path, list(args), dict(kwargs), cron=expression,
                    zone=zone, missed=missed, grace=float(grace))  # fmt: skip


def declared_specs() -> dict[object, object]:
    """Every entry, the purge schedule first (unless turned off)."""
    settings = conf.get()
    specs: dict[object, object] = {}
    if settings.purge_schedule is not None:
        specs[PURGE] = {"task": PURGE_TASK, "cron": settings.purge_schedule}
    specs.update(settings.periodic)
    return specs


def default_zone() -> str:
    return str(getattr(django_settings, "TIME_ZONE", None) or "UTC")


def load() -> tuple[list[Declared], list[BadSchedule]]:
    """The schedules that can run, and what is wrong with the others."""
    good: list[Declared] = []
    bad: list[BadSchedule] = []
    zone = default_zone()
    for name, spec in declared_specs().items():
        try:
            good.append(parse(name, spec, default_zone=zone))
        except BadSchedule as exc:
            bad.append(exc)
    return good, bad
