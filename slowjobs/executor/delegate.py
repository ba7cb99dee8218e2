"""``delegate`` mode: a thread per job, optionally capped.

Nothing waits in a queue: a job starts the moment its row is committed, or
is refused at enqueue when the cap is reached and stays reached for the
submit timeout.
"""

from __future__ import annotations

import threading

from .. import conf, dbhygiene
from ..niceness import lower_this_thread
from .base import Executor, Slot, Work


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

    def _start(self, slot: Slot, work: Work, priority: int) -> None:
        thread = threading.Thread(
            target=self._run_one, args=(slot, work), name="slowjobs-job", daemon=True
        )
        with self._threads_lock:
            self._threads.add(thread)
        thread.start()

    def _run_one(self, slot: Slot, work: Work) -> None:
        lower_this_thread(conf.get().thread_niceness)
        try:
            self._run(slot, work)
        finally:
            dbhygiene.at_thread_exit()
            with self._threads_lock:
                self._threads.discard(threading.current_thread())

    def _stop_threads(self) -> None:
        """Job threads end on their own; there is no idle thread to stop."""

    def _threads_to_join(self) -> list[threading.Thread]:
        with self._threads_lock:
            return list(self._threads)
