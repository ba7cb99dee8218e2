"""slowjobs: answer slow Django requests fast.

A view enqueues a ``django.tasks`` task on the slowjobs backend and answers at
once with a ticket (the job's UUID); the job runs on an executor inside the web
server process and its state lives in the ``Job`` table, so any process can
report on it.
"""

from __future__ import annotations

__version__ = "0.1.0"
