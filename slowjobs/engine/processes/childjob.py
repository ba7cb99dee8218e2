"""A running job as its job process sees it.

The task gets the same ``JobContext`` and module functions as in a thread;
behind them, this job sends progress, checkpoints and its result file to
the server process (which publishes and writes them as for any job), and
reads cancel, interrupt and deadline from flags the server sets.  Nothing
here touches memcached or the Job table: the server process owns the job.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field
from typing import Any

from slowjobs.engine.processes.wire import Channel, ChannelClosed, Message
from slowjobs.engine.running import RunningJob
from slowjobs.exceptions import JobCancelled, JobInterrupted, JobTimedOut
from slowjobs.jobs.jsonargs import to_json_value

# The server answers a checkpoint once it is committed; this long at most.
CHECKPOINT_WAIT = 120.0


@dataclass(eq=False, slots=True)
class ChildJob(RunningJob):
    channel: Channel | None = None
    # Filled by the reader thread with the server's answers to checkpoints.
    replies: queue.SimpleQueue[Message] = field(default_factory=queue.SimpleQueue)
    timed_out: bool = False
    # The first log line not yet sent, and the dropped lines already told.
    _log_sent: int = 0
    _dropped_sent: int = 0

    def publish(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._next_publish = now + self._settings.progress_interval
        self._send({"op": "progress", **self._progress_values(), **self.log_delta()})

    def log_delta(self) -> dict[str, Any]:
        """The lines logged since the last message, for the server to keep."""
        log = self.log
        if log is None or log.version == self._log_sent:
            return {}
        lines = log.since(self._log_sent)
        dropped = log.snapshot()["dropped"]
        self._log_sent = log.version
        delta, self._dropped_sent = dropped - self._dropped_sent, dropped
        # Lines that made way before they were sent count as dropped there.
        return {"log": lines, "log_dropped": max(0, delta)}

    def check_cancelled(self, now: float | None = None) -> None:
        """The flags are set by the reader thread: no look-up to pace."""
        if self.interrupted:
            raise JobInterrupted("The server stopped; the job was handed back.")
        if self.timed_out or self.deadline_passed:
            raise JobTimedOut(
                f"Timed out: still running {self.timeout or 0:g} s after it started."
            )
        if self.cancel_requested:
            raise JobCancelled("Cancelled while running.")

    def save_checkpoint(self, value: Any) -> bool:
        value = to_json_value(value, "the checkpoint")
        self._send({"op": "checkpoint", "value": value, **self._progress_values()})
        try:
            reply = self.replies.get(timeout=CHECKPOINT_WAIT)
        except queue.Empty:
            return False
        if reply.get("saved"):
            self.checkpoint = value
            return True
        return False

    def finished(self) -> None:
        """The server drops the live record; nothing to do here."""

    def _send(self, message: Message) -> None:
        if self.channel is None:
            return
        try:
            self.channel.send({"ticket": str(self.ticket), **message})
        except ChannelClosed:
            # The server is gone: this process ends with it (see child.py).
            raise JobInterrupted("The server process went away.") from None
