"""Whether this process is the site's only server.

Without memcached each process keeps its jobs' live progress in its own
memory, and every other process knows only the row's copy, up to
``SLOWJOBS_PROGRESS_DB_INTERVAL`` behind. Answering from memory is then
right only where no other process answers: otherwise two answers about one
job would disagree, and its progress would go back and forth. So memory is
read only by a process that knows it is alone: gunicorn with one worker
(its hook says so) or ``runserver``; every other one answers from the row.
"""

from __future__ import annotations

import sys

_sole = False


def declare_sole(sole: bool = True) -> None:
    global _sole
    _sole = sole


def is_sole() -> bool:
    return _sole


def declared_by_command() -> None:
    """``runserver`` serves from one process (its reloader's child)."""
    if sys.argv[1:2] == ["runserver"]:
        declare_sole()
