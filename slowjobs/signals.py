"""slowjobs' own signals, beside Django's task_enqueued/started/finished.

- ``enqueue_refused``: a job was not taken (full executor, stopping process,
  database away).  sender: the backend class; ``task``, ``reason`` (the
  exception class name), ``exception``.
- ``job_retrying``: a failed attempt will run again.  sender: the backend
  class; ``ticket``, ``task_path``, ``attempt``, ``retry_at``, ``error``.
- ``slots_missed``: a periodic schedule passed over slots that nobody was
  there to run (downtime).  sender: the schedule's name; ``slots`` (how
  many, counted up to 1000), ``newest`` (the newest one), ``policy``.

- ``submit_waited``: a submit sent with ``Prefer: wait`` was answered.
  sender: ``None``; ``task`` (its dotted path), ``outcome`` (``"ended"``:
  answered with the finished job; ``"timed_out"``: ``202`` after the wait;
  ``"no_place"``: ``202`` at once, every place to wait being taken),
  ``seconds`` (how long the request waited).

``slowjobs.cancel.cancel_requested`` is sent after a cancel request.
"""

from __future__ import annotations

from django.dispatch import Signal

enqueue_refused = Signal()
job_retrying = Signal()
slots_missed = Signal()
submit_waited = Signal()
