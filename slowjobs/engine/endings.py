"""A job's end, told at once to whoever waits for it.

A request that asked ``Prefer: wait=N`` (``slowjobs.web.waiting``) waits
for its job without an executor slot or a database connection.  The
process that runs a job calls ``ended`` once the outcome is durable (its
row committed), which wakes that process's waiters at once and, with a
shared live store, leaves a short-lived sealed end record that waiters in
other processes look for.

A job can end between its enqueue returning and its waiter being known:
while a ``Waiter`` is on its way (``expecting``), endings are remembered
for it, and forgotten as soon as none is.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from types import TracebackType

from slowjobs.progress import get_store
from slowjobs.progress.base import KEY_PREFIX
from slowjobs.progress.records import opened, sealed

# Seconds an end record stays for waiters in other processes: longer than
# any wait (SLOWJOBS_MAX_WAIT is at most 300).
END_TTL = 600
# Endings remembered for waiters on their way, at most.
RECENT_LIMIT = 4096


def end_key(ticket: str) -> str:
    return f"{KEY_PREFIX}{ticket}:end"


# Guards _waiters, _expecting and _recent.
_lock = threading.Lock()
_waiters: dict[str, list[threading.Event]] = {}
_expecting = 0
_recent: OrderedDict[str, None] = OrderedDict()


def ended(ticket: str, status: str) -> None:
    """The job's end is written: wake its waiters, here and elsewhere."""
    with _lock:
        events = _waiters.pop(ticket, ())
        if _expecting and not events:
            _recent[ticket] = None
            while len(_recent) > RECENT_LIMIT:
                _recent.popitem(last=False)
    for event in events:
        event.set()
    store = get_store()
    if store.shared:
        key = end_key(ticket)
        store.set(key, sealed(key, {"ticket": ticket, "status": status}), END_TTL)


def store_is_shared() -> bool:
    return get_store().shared


def ended_elsewhere(ticket: str) -> bool | None:
    """Whether the shared store says the job ended; None without one (or
    while it does not answer)."""
    store = get_store()
    if not store.shared:
        return None
    key = end_key(ticket)
    found = store.get_many([key])
    if found is None:
        return None
    record = opened(key, found[key]) if key in found else None
    return record is not None and record.get("ticket") == ticket


class Waiter:
    """``with Waiter() as waiter: ticket = enqueue(); waiter.follow(ticket)``."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._ticket = ""
        self._expecting = False

    def __enter__(self) -> Waiter:
        global _expecting
        with _lock:
            _expecting += 1
            self._expecting = True
        return self

    def follow(self, ticket: str) -> None:
        """Be woken when ``ticket`` ends (at once if it already has)."""
        with _lock:
            if ticket in _recent:
                del _recent[ticket]
                self.event.set()
            else:
                self._ticket = ticket
                _waiters.setdefault(ticket, []).append(self.event)
            self._stop_expecting()

    def wait(self, timeout: float) -> bool:
        return self.event.wait(timeout)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with _lock:
            self._stop_expecting()
            events = _waiters.get(self._ticket)
            if events is not None:
                if self.event in events:
                    events.remove(self.event)
                if not events:
                    del _waiters[self._ticket]

    def _stop_expecting(self) -> None:
        """Under ``_lock``: endings need no longer be kept for this one."""
        global _expecting
        if self._expecting:
            self._expecting = False
            _expecting -= 1
            if not _expecting:
                _recent.clear()


def _forget_after_fork() -> None:
    global _lock, _waiters, _expecting, _recent
    _lock = threading.Lock()
    _waiters, _expecting, _recent = {}, 0, OrderedDict()


os.register_at_fork(after_in_child=_forget_after_fork)
