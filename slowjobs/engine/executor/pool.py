"""``pool`` mode: a bounded queue drained by N threads, in a fair order.

Threads start lazily, one more only when none is idle, so a process that never
runs a job never starts a thread (and nothing runs before a fork).

The order is a ``FairQueue`` (priority, then submitters in turn); a
``SimpleQueue`` of wake-up tokens wakes the threads, one token per job put
and one more each time a job ends while others wait (one of them may have
been held back by its submitter's or its task's bound): waking a worker
through the C-level queue costs a fraction of a condition variable's wake.
"""

from __future__ import annotations

import queue
import threading

from slowjobs import conf
from slowjobs.engine.executor.base import Executor, Limit, Slot, Work
from slowjobs.engine.executor.fairqueue import Entry, FairQueue
from slowjobs.engine.niceness import lower_this_thread
from slowjobs.jobs import dbhygiene


class PoolExecutor(Executor):
    mode = "pool"

    def __init__(
        self,
        *,
        workers: int,
        queue_size: int,
        submit_timeout: float,
        retry_after: int,
        running_per_submitter: int | None = None,
    ) -> None:
        super().__init__(
            capacity=workers + queue_size,
            submit_timeout=submit_timeout,
            retry_after=retry_after,
        )
        self.workers = workers
        # Guards _queue and _stops; each job put also puts one token.
        self._lock = threading.Lock()
        self._queue = FairQueue(running_per_lane=running_per_submitter or workers)
        # Threads asked to stop once no queued job may start.
        self._stops = 0
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        # Guards _threads; _idle counts threads waiting for work.
        self._threads_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def _get(self) -> Entry | None:
        """The next job this thread runs, or None: stop."""
        while True:
            self._tokens.get()
            with self._lock:
                entry = self._queue.take()
                if entry is not None:
                    return entry
                if self._stops:
                    self._stops -= 1
                    return None
            # Nothing may start yet (or take_pending took it): wait again.

    def _start(
        self, slot: Slot, work: Work, priority: int, lane: str, limit: Limit | None
    ) -> None:
        with self._lock:
            self._queue.put(Entry(slot, work, lane, limit), priority)
        self._tokens.put(None)
        if self._idle.acquire(blocking=False):
            return
        with self._threads_lock:
            if len(self._threads) < self.workers:
                thread = threading.Thread(
                    target=self._work_loop,
                    name=f"slowjobs-pool-{len(self._threads) + 1}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()

    def take_pending(self) -> list[Work]:
        with self._lock:
            entries = self._queue.drain()
        for entry in entries:
            entry.slot.release()  # its token stays: a worker wakes, finds nothing
        return [entry.work for entry in entries]

    def _work_loop(self) -> None:
        lower_this_thread(conf.get().thread_niceness)
        try:
            while True:
                entry = self._get()
                if entry is None:
                    return
                try:
                    self._run(entry.slot, entry.work)
                finally:
                    with self._lock:
                        self._queue.done(entry)
                        waiting = len(self._queue)
                    if waiting:
                        self._tokens.put(None)
                self._idle.release()
        finally:
            dbhygiene.at_thread_exit()

    def _stop_threads(self) -> None:
        with self._threads_lock:
            count = len(self._threads)
        with self._lock:
            self._stops += count
        for _ in range(count):
            self._tokens.put(None)

    def _threads_to_join(self) -> list[threading.Thread]:
        with self._threads_lock:
            return list(self._threads)

    def stats(self) -> dict[str, int | str | None]:
        return {**super().stats(), "workers": self.workers, "queued": self.queue_depth}
