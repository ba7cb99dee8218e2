"""``pool`` mode: a bounded, priority-ordered queue drained by N threads.

Threads start lazily, one more only when none is idle, so a process that never
runs a job never starts a thread (and nothing runs before a fork).

The queue is a heap (the order) plus a ``SimpleQueue`` of wake-up tokens, one
per item: waking a worker through the C-level queue costs a fraction of
``queue.PriorityQueue``'s condition variables, on every job.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading

from .. import conf, dbhygiene
from ..niceness import lower_this_thread
from .base import Executor, Slot, Work

_Item = tuple[float, int, Slot | None, Work | None]

# Sorts after every job, so a stop request lets queued work start first.
_STOP: _Item = (float("inf"), 0, None, None)


class PoolExecutor(Executor):
    mode = "pool"

    def __init__(
        self,
        *,
        workers: int,
        queue_size: int,
        submit_timeout: float,
        retry_after: int,
    ) -> None:
        super().__init__(
            capacity=workers + queue_size,
            submit_timeout=submit_timeout,
            retry_after=retry_after,
        )
        self.workers = workers
        # Guards _heap; each item put also puts one token in _tokens.
        self._heap_lock = threading.Lock()
        self._heap: list[_Item] = []
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._order = itertools.count()
        # Guards _threads; _idle counts threads waiting for work.
        self._threads_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)

    @property
    def queue_depth(self) -> int:
        return len(self._heap)

    def _put(self, item: _Item) -> None:
        with self._heap_lock:
            heapq.heappush(self._heap, item)
        self._tokens.put(None)

    def _get(self) -> _Item:
        while True:
            self._tokens.get()
            with self._heap_lock:
                if self._heap:  # else take_pending took its item: wait again
                    return heapq.heappop(self._heap)

    def _start(self, slot: Slot, work: Work, priority: int) -> None:
        self._put((-priority, next(self._order), slot, work))
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
        with self._heap_lock:
            items, self._heap = self._heap, []
        taken: list[Work] = []
        for item in sorted(items):
            _, _, slot, work = item
            if slot is None or work is None:
                with self._heap_lock:
                    heapq.heappush(self._heap, item)  # keep stop requests
                continue
            slot.release()  # its token stays: a worker wakes, finds nothing
            taken.append(work)
        return taken

    def _work_loop(self) -> None:
        lower_this_thread(conf.get().thread_niceness)
        try:
            while True:
                _, _, slot, work = self._get()
                if slot is None or work is None:
                    return
                self._run(slot, work)
                self._idle.release()
        finally:
            dbhygiene.at_thread_exit()

    def _stop_threads(self) -> None:
        with self._threads_lock:
            for _ in self._threads:
                self._put(_STOP)

    def _threads_to_join(self) -> list[threading.Thread]:
        with self._threads_lock:
            return list(self._threads)

    def stats(self) -> dict[str, int | str | None]:
        return {**super().stats(), "workers": self.workers, "queued": self.queue_depth}
