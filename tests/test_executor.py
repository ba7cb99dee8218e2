from __future__ import annotations

import os
import threading

import pytest
from django.test import override_settings

from slowjobs.engine.executor.delegate import DelegateExecutor
from slowjobs.engine.executor.pool import PoolExecutor
from slowjobs.engine.executor.registry import current_executor, get_executor
from slowjobs.exceptions import ExecutorFull, ExecutorShutDown
from tests.conftest import in_forked_child


def _pool(workers: int = 2, queue_size: int = 2, timeout: float = 0.05) -> PoolExecutor:
    return PoolExecutor(
        workers=workers, queue_size=queue_size, submit_timeout=timeout, retry_after=3
    )


def _run(executor, work, priority=0):
    executor.start(executor.reserve(), work, priority=priority)


def test_pool_starts_no_thread_until_the_first_job():
    before = threading.active_count()
    executor = _pool()
    assert threading.active_count() == before
    done = threading.Event()
    _run(executor, done.set)
    assert done.wait(5)
    assert executor.shutdown(wait=True, timeout=5)


def test_pool_runs_at_most_its_workers_at_once():
    executor = _pool(workers=2, queue_size=10)
    release = threading.Event()
    lock = threading.Lock()
    running = [0]
    peak = [0]

    def work():
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        release.wait(5)
        with lock:
            running[0] -= 1

    for _ in range(6):
        _run(executor, work)
    release.set()
    assert executor.shutdown(wait=True, timeout=5)
    assert peak[0] == 2
    assert executor.jobs_done == 6


def test_pool_refuses_after_the_submit_timeout_when_full():
    executor = _pool(workers=1, queue_size=1)
    release = threading.Event()
    _run(executor, lambda: release.wait(5))
    _run(executor, lambda: release.wait(5))
    with pytest.raises(ExecutorFull) as refused:
        executor.reserve()
    assert refused.value.retry_after == 3
    release.set()
    assert executor.shutdown(wait=True, timeout=5)


def test_a_waiting_submit_gets_the_slot_that_frees_within_the_timeout():
    executor = _pool(workers=1, queue_size=0, timeout=5)
    started, release = threading.Event(), threading.Event()

    def work():
        started.set()
        release.wait(5)

    _run(executor, work)
    assert started.wait(5)
    threading.Timer(0.05, release.set).start()
    slot = executor.reserve()  # waits for the first job to end
    slot.release()
    assert executor.shutdown(wait=True, timeout=5)


def test_an_unused_slot_gives_its_room_back():
    executor = _pool(workers=1, queue_size=0)
    executor.reserve().release()
    executor.reserve().release()
    assert executor.used == 0


def test_work_that_raises_does_not_kill_the_thread():
    executor = _pool(workers=1, queue_size=5)
    done = threading.Event()

    def explode():
        raise RuntimeError("boom")

    _run(executor, explode)
    _run(executor, done.set)
    assert done.wait(5)
    assert executor.shutdown(wait=True, timeout=5)


def test_shutdown_refuses_new_work():
    executor = _pool()
    executor.shutdown(wait=True, timeout=5)
    with pytest.raises(ExecutorShutDown):
        executor.reserve()


def test_delegate_runs_each_job_on_its_own_thread():
    executor = DelegateExecutor(max_threads=None, submit_timeout=0.05, retry_after=1)
    names: list[str] = []
    barrier = threading.Barrier(5, timeout=5)

    def work():
        names.append(threading.current_thread().name)
        barrier.wait()  # only passes if all five run at once

    for _ in range(5):
        _run(executor, work)
    assert executor.shutdown(wait=True, timeout=5)
    assert len(names) == 5


def test_delegate_cap_refuses_beyond_it():
    executor = DelegateExecutor(max_threads=2, submit_timeout=0.05, retry_after=1)
    release = threading.Event()
    _run(executor, lambda: release.wait(5))
    _run(executor, lambda: release.wait(5))
    with pytest.raises(ExecutorFull):
        executor.reserve()
    release.set()
    assert executor.shutdown(wait=True, timeout=5)


def test_registry_makes_one_executor_per_process_from_settings():
    with override_settings(SLOWJOBS_EXECUTOR="delegate", SLOWJOBS_MAX_THREADS=3):
        executor = get_executor()
        assert get_executor() is executor
        assert isinstance(executor, DelegateExecutor)
        assert executor.capacity == 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_builds_its_own_executor():
    parent = get_executor()
    assert in_forked_child(
        lambda: current_executor() is None and get_executor() is not parent
    )
