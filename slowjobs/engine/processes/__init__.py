"""Process mode: a task's code runs in a child process of the server.

For CPU-bound tasks.  A job thread of the server still owns the job (its
ticket, row, progress, cancel, checkpoints, drain and resume are the same
as in thread mode) but hands the call itself to a job process from a small
pool, and waits on a socket meanwhile, leaving the interpreter lock to the
requests.  The process runs at a lower priority
(``SLOWJOBS_PROCESS_NICENESS``), and one that does not stop when cancelled
or timed out is killed and replaced.

- ``wire``: JSON lines over a socket pair (no pickle crosses it);
- ``pool``: the server's job processes, started lazily, fork-aware;
- ``remote``: the server side of one job;
- ``child`` and ``childjob``: the job process's side.
"""
