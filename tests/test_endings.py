"""A job's end reaches the requests that wait for it, even one that comes
between its enqueue and the wait; and it is kept for nobody else."""

from __future__ import annotations

import threading

from slowjobs.engine import endings


def test_an_end_before_the_wait_begins_is_kept_for_the_waiter():
    with endings.Waiter() as waiter:
        endings.ended("ticket-a", "SUCCESSFUL")  # the job was quick
        waiter.follow("ticket-a")
        assert waiter.wait(0)
    assert not endings._recent  # kept only while someone was on the way


def test_an_end_wakes_the_waiter_from_another_thread():
    with endings.Waiter() as waiter:
        waiter.follow("ticket-b")
        assert not waiter.wait(0)
        threading.Timer(0.05, endings.ended, ("ticket-b", "FAILED")).start()
        assert waiter.wait(5)
    assert "ticket-b" not in endings._waiters


def test_ends_are_not_kept_when_nobody_waits():
    endings.ended("ticket-c", "SUCCESSFUL")
    assert not endings._recent
    with endings.Waiter() as waiter:
        waiter.follow("ticket-c")  # it ended before this waiter existed
        assert not waiter.wait(0)
        assert not endings._recent  # following stops the keeping


def test_two_waiters_of_one_job_are_both_woken():
    with endings.Waiter() as first, endings.Waiter() as second:
        first.follow("ticket-d")
        second.follow("ticket-d")
        endings.ended("ticket-d", "SUCCESSFUL")
        assert first.wait(0)
        assert second.wait(0)
