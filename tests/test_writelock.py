"""SQLite writers take turns at the write lock in the kernel, not in SQLite."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from slowjobs.jobs.writelock import sqlite_write_turn

pytestmark = pytest.mark.django_db(transaction=True)


class FileDatabase:
    """A stand-in connection naming an SQLite file (the lock needs only that)."""

    vendor = "sqlite"

    def __init__(self, path: str) -> None:
        self.settings_dict = {"NAME": path}


def test_one_writer_at_a_time_the_next_goes_when_the_first_is_done(tmp_path):
    database = FileDatabase(str(tmp_path / "jobs.sqlite3"))
    inside = threading.Event()
    release = threading.Event()
    entered_at: list[float] = []

    def first() -> None:
        with sqlite_write_turn(database):  # type: ignore[arg-type]
            inside.set()
            release.wait(10)

    def second() -> None:
        with sqlite_write_turn(database):  # type: ignore[arg-type]
            entered_at.append(time.monotonic())

    holder = threading.Thread(target=first)
    holder.start()
    assert inside.wait(10)
    waiter = threading.Thread(target=second)
    waiter.start()
    time.sleep(0.2)
    assert entered_at == []  # still waiting for its turn
    released_at = time.monotonic()
    release.set()
    waiter.join(10)
    holder.join(10)
    assert entered_at
    assert entered_at[0] >= released_at
    assert (tmp_path / "jobs.sqlite3-slowjobs.lock").exists()


def test_other_databases_take_no_turn():
    connection = connections["default"]
    if connection.vendor == "sqlite":
        pytest.skip("the test database is SQLite")
    with sqlite_write_turn(connection), sqlite_write_turn(connection):
        pass  # no lock taken: nesting would deadlock otherwise
