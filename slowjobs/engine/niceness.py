"""Lower scheduling priority for job threads, so the kernel favours requests.

Linux gives each thread its own niceness (``setpriority`` on the thread's
id).  It helps a server whose other processes or threads wait for a CPU;
it cannot help with the interpreter lock, which a CPU-bound job thread
shares with the request threads of its process whatever its niceness: that
is what process mode is for.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

logger = logging.getLogger("slowjobs.executor")


def lower_this_thread(increment: int) -> None:
    if not increment or not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        now = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, now + increment))
    except OSError as exc:
        logger.warning("slowjobs: could not lower a job thread's priority: %s", exc)
