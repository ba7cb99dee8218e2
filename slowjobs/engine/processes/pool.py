"""This server process's job processes: started lazily, reused, replaced.

A job thread borrows a process for one job and gives it back; a process
that was killed (a cancel or timeout it did not obey) or that died is
dropped, and a replacement starts at once so the next job finds one warm.
After a fork the child forgets its parent's processes: they answer to the
parent, and a forked server starts its own on its first process-mode job.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

from django.conf import settings

from slowjobs import conf
from slowjobs.engine.processes.wire import Channel, ChannelClosed
from slowjobs.exceptions import JobProcessFailed

logger = logging.getLogger("slowjobs.processes")

# A job process sets Django up before it says it is ready; this long at most.
READY_TIMEOUT = 60.0
# How often a job waiting for a free process looks for its own cancel.
WAIT_LOOK = 0.1


class JobProcess:
    """The server's handle on one job process."""

    def __init__(self, niceness: int) -> None:
        ours, theirs = socket.socketpair()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE
            or os.environ.get("DJANGO_SETTINGS_MODULE", ""),
            # The server's import path, so the task's module imports the same.
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        }
        try:
            self.popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "slowjobs.engine.processes",
                    str(theirs.fileno()),
                    str(niceness),
                ],
                pass_fds=[theirs.fileno()],
                env=env,
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self.channel = Channel(ours)
        self.ready = False
        self.jobs_run = 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_ready(self) -> None:
        if self.ready:
            return
        try:
            message = self.channel.receive(timeout=READY_TIMEOUT)
        except ChannelClosed:
            message = None
        if message is None or message.get("op") != "ready":
            self.kill()
            code = self.popen.poll()
            raise JobProcessFailed(
                f"A job process did not start (exit code {code}); "
                "its error output is in the server's log."
            )
        self.ready = True

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            logger.warning("slowjobs: job process %d did not end", self.pid)
        self.channel.close()

    def exit(self, timeout: float = 2.0) -> None:
        """Ask an idle process to end; kill it if it does not."""
        try:
            self.channel.send({"op": "exit"})
            self.popen.wait(timeout)
        except (ChannelClosed, subprocess.TimeoutExpired):
            pass
        self.kill()


class ProcessPool:
    def __init__(
        self, *, size: int, niceness: int, max_jobs: int | None = None
    ) -> None:
        self.size = size
        self.niceness = niceness
        self.max_jobs = max_jobs
        # Guards _idle, _count and _closed; notified when a process frees.
        self._changed = threading.Condition(threading.Lock())
        self._idle: list[JobProcess] = []
        self._count = 0
        self._closed = False
        self.started = 0

    def acquire(self, look: Callable[[], None]) -> JobProcess:
        """A process for one job; ``look`` may raise to stop waiting."""
        process: JobProcess | None = None
        while True:
            with self._changed:
                if self._closed:
                    raise JobProcessFailed("This server's job processes are stopped.")
                if self._idle:
                    process = self._idle.pop()
                    break
                if self._count < self.size:
                    self._count += 1
                    break
                self._changed.wait(WAIT_LOOK)
            look()
        if process is None:
            process = self._start()
        try:
            process.wait_ready()
        except JobProcessFailed:
            self._forget()
            raise
        return process

    def release(self, process: JobProcess) -> None:
        """Take a process back after a job (a worn-out one is replaced)."""
        process.jobs_run += 1
        if self.max_jobs is not None and process.jobs_run >= self.max_jobs:
            process.exit()
            self.replace(process)
            return
        self._keep(process)

    def _keep(self, process: JobProcess) -> None:
        with self._changed:
            if not self._closed and process.popen.poll() is None:
                self._idle.append(process)
                self._changed.notify()
                return
        self._forget()
        process.exit()

    def replace(self, process: JobProcess) -> None:
        """Kill a process that must stop now, and start its successor."""
        process.kill()
        with self._changed:
            if self._closed:
                self._count -= 1
                return
        try:
            successor = self._start()
        except JobProcessFailed as exc:
            # The next job that needs a process tries again, and says so.
            logger.warning(
                "slowjobs: no successor for job process %d: %s", process.pid, exc
            )
            return
        self._keep(successor)

    def _start(self) -> JobProcess:
        try:
            process = JobProcess(self.niceness)
        except OSError as exc:
            self._forget()
            raise JobProcessFailed(f"A job process could not start: {exc}") from exc
        self.started += 1
        return process

    def _forget(self) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify()

    def close(self) -> None:
        """End the idle processes; busy ones end with their job threads."""
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for process in idle:
            process.exit()

    def stats(self) -> dict[str, int]:
        with self._changed:
            return {
                "size": self.size,
                "alive": self._count,
                "idle": len(self._idle),
                "started": self.started,
            }


# This process's pool, created on the first process-mode job.
_lock = threading.Lock()
_pool: ProcessPool | None = None


def get_pool() -> ProcessPool:
    global _pool
    with _lock:
        if _pool is None:
            settings_now = conf.get()
            _pool = ProcessPool(
                size=settings_now.processes,
                niceness=settings_now.process_niceness,
                max_jobs=settings_now.process_max_jobs,
            )
        return _pool


def current_pool() -> ProcessPool | None:
    return _pool


def close_pool() -> None:
    """Stop this process's job processes (shutdown; the next job starts anew)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()


def _forget_after_fork() -> None:
    global _pool, _lock
    _pool = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
