"""The order in which queued jobs get a pool thread: fair, not first come.

Jobs wait by priority (higher first); within a priority, submitters take
turns (round robin over *lanes*, one lane per submitter), first come first
served within a lane.  A lane with as many running jobs as
``SLOWJOBS_MAX_RUNNING_PER_SUBMITTER`` is passed over, and so is a job whose
task is at its ``concurrency`` bound: one visitor's hundred jobs never hold
every thread, and a newcomer's single job starts next.

Not thread-safe by itself: the pool calls it under its own lock.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from dataclasses import dataclass

from slowjobs.engine.executor.base import Limit, Slot, Work


@dataclass(slots=True)
class Entry:
    slot: Slot
    work: Work
    lane: str
    limit: Limit | None


class FairQueue:
    def __init__(self, *, running_per_lane: int) -> None:
        self.running_per_lane = running_per_lane
        # priority -> lane -> its jobs, lanes in turn order (next first).
        self._levels: dict[int, OrderedDict[str, deque[Entry]]] = {}
        self._size = 0
        self._running_lanes: Counter[str] = Counter()
        self._running_limits: Counter[str] = Counter()

    def __len__(self) -> int:
        return self._size

    def put(self, entry: Entry, priority: int) -> None:
        lanes = self._levels.get(priority)
        if lanes is None:
            lanes = self._levels[priority] = OrderedDict()
        waiting = lanes.get(entry.lane)
        if waiting is None:
            waiting = lanes[entry.lane] = deque()
        waiting.append(entry)
        self._size += 1

    def take(self) -> Entry | None:
        """The next job that may start now (counted as running), or None."""
        if not self._size:
            return None
        for priority in sorted(self._levels, reverse=True):
            lanes = self._levels[priority]
            for lane, waiting in lanes.items():
                # The empty lane (no submitter: commands, scripts) has no cap.
                if lane and self._running_lanes[lane] >= self.running_per_lane:
                    continue
                entry = self._first_within_limits(waiting)
                if entry is None:
                    continue
                if waiting:
                    lanes.move_to_end(lane)  # its turn is over
                else:
                    del lanes[lane]
                    if not lanes:
                        del self._levels[priority]
                self._size -= 1
                self._running_lanes[entry.lane] += 1
                if entry.limit is not None:
                    self._running_limits[entry.limit[0]] += 1
                return entry
        return None

    def _first_within_limits(self, waiting: deque[Entry]) -> Entry | None:
        for index, entry in enumerate(waiting):
            limit = entry.limit
            if limit is None or self._running_limits[limit[0]] < limit[1]:
                del waiting[index]
                return entry
        return None

    def done(self, entry: Entry) -> None:
        """A job that ``take`` gave out has ended."""
        self._running_lanes[entry.lane] -= 1
        if not self._running_lanes[entry.lane]:
            del self._running_lanes[entry.lane]
        if entry.limit is not None:
            key = entry.limit[0]
            self._running_limits[key] -= 1
            if not self._running_limits[key]:
                del self._running_limits[key]

    def drain(self) -> list[Entry]:
        """Remove every waiting job, in the order they would have started."""
        entries: list[Entry] = []
        for priority in sorted(self._levels, reverse=True):
            for waiting in self._levels[priority].values():
                entries.extend(waiting)
        self._levels.clear()
        self._size = 0
        return entries
