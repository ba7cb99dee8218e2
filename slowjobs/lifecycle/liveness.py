"""Which owners of unfinished jobs are gone, as soon as that can be proved.

Three proofs, from the quickest to the slowest:

1. same machine (same kernel boot and pid namespace): the owner's pid no
   longer runs, or now runs another process (its start time differs);
2. PostgreSQL, any host: the owner's advisory lock is free, so its session
   has ended (``slowjobs.lifecycle.processlock``);
3. otherwise the lease: no heartbeat for ``SLOWJOBS_LEASE`` seconds, from
   the process or for the job.  A process that lives but is silent that
   long (stopped, deadlocked) loses its jobs too; its late writes then
   match no row (every write names the owner and the attempt).

The first two are asked here; the lease is part of the orphan query itself
(``slowjobs.lifecycle.orphans.orphaned``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from slowjobs import conf
from slowjobs.lifecycle import processlock
from slowjobs.lifecycle.identity import machine, process_id, runs_here
from slowjobs.models import WorkerProcess


def gone_owners(owners: Iterable[str], using: str = "default") -> set[str]:
    """The owners among ``owners`` that are proved dead now (never this one)."""
    wanted = set(owners) - {"", process_id()}
    if not wanted:
        return set()
    here = machine()
    gone: set[str] = set()
    ask_lock: list[str] = []
    rows = WorkerProcess.objects.using(using).filter(id__in=wanted)
    for row in rows.only("id", "machine", "pid", "pid_start", "locked"):
        if here and row.machine == here:
            if not runs_here(row.pid, row.pid_start):
                gone.add(row.id)
        elif row.locked:
            ask_lock.append(row.id)
    if ask_lock and processlock.supported(using):
        gone |= processlock.provably_gone(ask_lock, using)
    return gone


@dataclass(frozen=True, slots=True)
class Silence:
    """An owner that looks alive but has not been heard from lately."""

    owner: str
    last_heard: datetime

    @property
    def lease_ends(self) -> datetime:
        return self.last_heard + timedelta(seconds=conf.get().lease)

    def seconds_left(self, now: datetime | None = None) -> float:
        return max((self.lease_ends - (now or timezone.now())).total_seconds(), 0.0)


def owner_is_alive(
    owner: str, heartbeat_at: datetime | None, using: str = "default"
) -> bool:
    """Whether a job's owner may still be running it (for showing its status).

    Alive unless it is proved gone, or neither it nor the job (whose
    ``heartbeat_at`` is passed) has been heard from within the lease.
    Costs one or two small queries.
    """
    if not owner:
        return False
    if owner == process_id():
        return True
    cutoff = timezone.now() - timedelta(seconds=conf.get().lease)
    if heartbeat_at is None or heartbeat_at < cutoff:
        heard = WorkerProcess.objects.using(using).alive().filter(id=owner)
        if not heard.exists():
            return False
    return owner not in gone_owners([owner], using)
