"""``delegate`` mode: a thread per job, optionally capped.

Nothing waits in a queue: a job starts the moment its row is committed, or
is refused at enqueue when the cap is reached and stays reached for the
submit timeout.  The one wait is a task's ``concurrency`` bound: its thread
waits for a turn before the job starts.  Submitters do not take turns here
(every job has its thread at once); that is the pool's fair queue.
"""

from __future__ import annotations

import threading
from collections import Counter

from slowjobs import conf
from slowjobs.engine.executor.base import Executor, Limit, Slot, Work
from slowjobs.engine.niceness import lower_this_thread
from slowjobs.jobs import dbhygiene


class DelegateExecutor(Executor):
    mode = "delegate"

    def __init__(
        self, *, max_threads: int | None, submit_timeout: float, retry_after: int
    ) -> None:
        super().__init__(
            capacity=max_threads, submit_timeout=submit_timeout, retry_after=retry_after
        )
        # Guards _threads, the job threads that may still be running.
        self._threads_lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        # Guards _bounded: running jobs per concurrency key.
        self._turns = threading.Condition(threading.Lock())
        self._bounded: Counter[str] = Counter()

    def _start(
        self,
        slot: Slot,
        work: Work,
        priority: int,
        lane: str,
        limit: Limit | None,
    ) -> None:
        thread = threading.Thread(
            target=self._run_one,
            args=(slot, work, limit),
            name="slowjobs-job",
            daemon=True,
        )
        with self._threads_lock:
            self._threads.add(thread)
        thread.start()

    def _run_one(self, slot: Slot, work: Work, limit: Limit | None) -> None:
        lower_this_thread(conf.get().thread_niceness)
        try:
            if limit is None:
                self._run(slot, work)
            else:
                self._run_bounded(slot, work, limit)
        finally:
            dbhygiene.at_thread_exit()
            with self._threads_lock:
                self._threads.discard(threading.current_thread())

    def _run_bounded(self, slot: Slot, work: Work, limit: Limit) -> None:
        key, most = limit
        with self._turns:
            while self._bounded[key] >= most:
                self._turns.wait()
            self._bounded[key] += 1
        try:
            self._run(slot, work)
        finally:
            with self._turns:
                self._bounded[key] -= 1
                if not self._bounded[key]:
                    del self._bounded[key]
                self._turns.notify_all()

    def _stop_threads(self) -> None:
        """Job threads end on their own; there is no idle thread to stop."""

    def _threads_to_join(self) -> list[threading.Thread]:
        with self._threads_lock:
            return list(self._threads)
