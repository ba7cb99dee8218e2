"""Where this process stands: a server (or command) with an executor of its
own, or a job process of process mode, which runs one task at a time for
its server and runs no executor.

The backend asks here, so that enqueueing from inside a process-mode task
leaves the job to the servers without knowing how job processes work.
"""

from __future__ import annotations

_in_job_process = False


def in_job_process() -> bool:
    return _in_job_process


def become_job_process() -> None:
    """Said once by a job process as it starts (``slowjobs.engine.processes``)."""
    global _in_job_process
    _in_job_process = True
