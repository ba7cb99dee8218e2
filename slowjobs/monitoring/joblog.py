"""Each job's own log: the records emitted while it runs, kept with it.

One handler on the root logger (installed when a process starts running
jobs, never at import) keeps a record only when the thread that emits it
is running a job (the job's context variable), in a server's job thread or
in a job process; anything else passes by untouched, and one job's lines
can never land in another's.  What reaches the root logger is what is
captured: a logger's level, or ``propagate = False``, is respected.

A job keeps its newest lines within ``SLOWJOBS_JOB_LOG_LINES`` and
``SLOWJOBS_JOB_LOG_BYTES``; older ones make way, and are counted
(``dropped``).  The lines are written with the job's other writes (its
progress copies and its outcome, never one write a line), and published
to the live store with its progress, so they can be followed live.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any

from slowjobs import conf

# Characters of one line's message (with its traceback) at most.
LINE_LIMIT = 4000
# What a line costs against the byte bound, besides its text.
LINE_OVERHEAD = 60


class JobLog:
    """A job's lines, numbered from 0 in the order they came."""

    def __init__(self, max_lines: int, max_bytes: int) -> None:
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.lines: deque[dict[str, Any]] = deque()
        self.dropped = 0
        self.next_number = 0
        self._bytes = 0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls) -> JobLog:
        settings = conf.get()
        return cls(settings.job_log_lines, settings.job_log_bytes)

    def add(self, level: str, logger: str, message: str, at: float) -> None:
        line = {
            "n": self.next_number,
            "at": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "logger": logger[:200],
            "message": message[:LINE_LIMIT],
        }
        size = _size(line)
        with self._lock:
            self.next_number += 1
            self.lines.append(line)
            self._bytes += size
            while self.lines and (
                len(self.lines) > self.max_lines or self._bytes > self.max_bytes
            ):
                self._bytes -= _size(self.lines.popleft())
                self.dropped += 1

    def extend(self, lines: list[dict[str, Any]], dropped: int) -> None:
        """Lines a job process captured (already numbered there)."""
        for line in lines:
            self.add(
                str(line.get("level", "")),
                str(line.get("logger", "")),
                str(line.get("message", "")),
                _timestamp(line.get("at")),
            )
        with self._lock:
            self.dropped += max(0, int(dropped))

    @property
    def version(self) -> int:
        """Changes with every line added (or dropped)."""
        return self.next_number

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"lines": list(self.lines), "dropped": self.dropped}

    def since(self, number: int) -> list[dict[str, Any]]:
        with self._lock:
            return [line for line in self.lines if line["n"] >= number]


def _size(line: dict[str, Any]) -> int:
    return len(line["message"]) + len(line["logger"]) + LINE_OVERHEAD


def _timestamp(value: object) -> float:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return datetime.now(UTC).timestamp()


class JobLogHandler(logging.Handler):
    """Keeps the records of job threads with their job; ignores the rest."""

    def __init__(self) -> None:
        super().__init__()
        self._inside = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        from slowjobs.engine.context import current_job

        job = current_job()
        if job is None or getattr(self._inside, "emitting", False):
            return
        self._inside.emitting = True  # what the job's own writes log is not its
        try:
            message = _text(record, self)
            job.capture_log(record.levelname, record.name, message, record.created)
        except Exception:
            self.handleError(record)
        finally:
            self._inside.emitting = False


def _text(record: logging.LogRecord, handler: logging.Handler) -> str:
    try:
        message = record.getMessage()
    except Exception:
        message = str(record.msg)
    if record.exc_info:
        formatter = handler.formatter or logging.Formatter()
        message = f"{message}\n{formatter.formatException(record.exc_info)}"
    return message


_lock = threading.Lock()
_handler: JobLogHandler | None = None


def install() -> None:
    """Capture job logs in this process from now on (once; idempotent)."""
    global _handler
    with _lock:
        if _handler is not None or conf.get().job_log_lines == 0:
            return
        _handler = JobLogHandler()
        logging.getLogger().addHandler(_handler)
