"""What happens after a job's write, off the state writer's thread.

A job's ``task_finished`` and ``job_retrying`` signals (and the row read a
lost write needs) run once its state is committed.  On the writer's own
thread, one slow signal receiver would hold up every later commit of the
process, every other job's outcome with it; so each writer hands its
after-write callbacks to a notifier thread of its own, which runs them in
commit order.  A slow receiver then delays only the signals behind it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from slowjobs.jobs import dbhygiene

logger = logging.getLogger("slowjobs.statewriter")

Notice = Callable[[], None]


class Notifier:
    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.SimpleQueue[list[Notice] | threading.Event | None]
        self._queue = queue.SimpleQueue()
        # Guards _thread and _stopped.
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def post_all(self, notices: list[Notice]) -> None:
        """Run the notices in order; each one's failure is logged, and the
        ones after it still run."""
        with self._lock:
            if self._stopped:
                for notice in notices:
                    _run(notice)  # after stop: in the caller's thread
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=self.name, daemon=True
                )
                self._thread.start()
        self._queue.put(notices)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every notice posted so far has run."""
        with self._lock:
            if self._thread is None or self._stopped:
                return True
        marker = threading.Event()
        self._queue.put(marker)
        return marker.wait(timeout)

    def stop(self, timeout: float | None = None) -> bool:
        flushed = self.flush(timeout)
        with self._lock:
            self._stopped = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)
        return flushed

    def _loop(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                if isinstance(item, threading.Event):
                    item.set()
                    continue
                for notice in item:
                    _run(notice)
        finally:
            dbhygiene.at_thread_exit()


def _run(notice: Notice) -> None:
    try:
        notice()
    except Exception:
        logger.exception("slowjobs: after-write callback failed")
