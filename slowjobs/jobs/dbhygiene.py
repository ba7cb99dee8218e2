"""Database connection care for job threads.

Job threads are not requests, so Django's request_started/finished hooks
never close their connections.  A pool thread keeps its connection between
jobs (reconnecting per job would cost more than a no-op job), drops it when a
job left it broken, and closes everything when the thread ends.
"""

from __future__ import annotations

from django.db import connections


def after_job() -> None:
    """Drop connections a job left broken, as Django does after a request."""
    for connection in connections.all(initialized_only=True):
        if connection.errors_occurred:
            if connection.is_usable():
                connection.errors_occurred = False
            else:
                connection.close()


def at_thread_exit() -> None:
    connections.close_all()
