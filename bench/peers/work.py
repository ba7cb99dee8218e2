"""What every benchmark job does, whichever system runs it.

Jobs report to the benchmark through Redis (the one service every machine
running the comparison has): their start time for the enqueue -> start
latency, a counter where a system keeps no durable record of completion,
and the measured cost of a progress report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import cache

import redis
from django.conf import settings

STARTS = "bench:starts"
DONE = "bench:done"
PROGRESS = "bench:progress"
BUDGET_SECONDS = 5.0


@cache
def client() -> redis.Redis:
    # No socket timeout: the benchmark blocks in BLPOP for as long as a job takes.
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=None)


def mark_start(number: int) -> None:
    client().rpush(STARTS, json.dumps([number, time.time()]))


def count_done() -> None:
    client().incr(DONE)


def sleep_100ms() -> None:
    time.sleep(0.1)


def progress_cost(reports: int, report: Callable[[int, int], None]) -> float:
    """Microseconds one ``report`` costs: a loop with it against one without.

    Stops early after ``BUDGET_SECONDS``, for systems whose reports are slow.
    """
    started = time.perf_counter()
    done = 0
    while done < reports:
        report(done, reports)
        done += 1
        if done % 100 == 0 and time.perf_counter() - started > BUDGET_SECONDS:
            break
    with_reports = time.perf_counter() - started
    started = time.perf_counter()
    for number in range(done):
        _nothing(number, reports)
    bare = time.perf_counter() - started
    cost = max(0.0, (with_reports - bare) / done * 1e6)
    client().rpush(PROGRESS, json.dumps(cost))
    return cost


def _nothing(current: int, total: int) -> None:
    pass
