"""Rows and states of many jobs share commits, and none is acknowledged
before it is durable."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connections
from django.utils import timezone

from slowjobs.jobs.statewriter import StateWriter
from slowjobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def writer():
    writer = StateWriter()
    yield writer
    writer.stop(5)


def _row(**values):
    return {"id": uuid.uuid4(), "task_path": "tests.tasks.noop", **values} | {
        "enqueued_at": timezone.now()
    }


def _committed(ticket: uuid.UUID) -> bool:
    """Seen from a connection of its own, as another process would."""
    seen: list[bool] = []

    def look() -> None:
        try:
            seen.append(Job.objects.filter(pk=ticket).exists())
        finally:
            connections.close_all()

    thread = threading.Thread(target=look)
    thread.start()
    thread.join(10)
    return seen == [True]


def _insert_in_threads(writer: StateWriter, rows: list[dict]) -> list[threading.Thread]:
    def insert(row: dict) -> None:
        try:
            writer.insert(row)
            # Acknowledged: it must be durable by now.
            row["committed_when_acknowledged"] = _committed(row["id"])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=insert, args=(row,)) for row in rows]
    for thread in threads:
        thread.start()
    return threads


def _queued(writer: StateWriter, count: int) -> None:
    deadline = timezone.now().timestamp() + 10
    while writer._backlog() < count:
        assert timezone.now().timestamp() < deadline, "the writes were not queued"
        threading.Event().wait(0.005)


def test_rows_queued_behind_a_commit_share_the_next_one(writer):
    if connections["default"].vendor != "sqlite":
        pytest.skip("on PostgreSQL each row commits alone; the database groups them")
    rows = [_row(owner="me") for _ in range(8)]
    # A commit in progress: every request that comes meanwhile queues.
    with writer._commit_lock:
        threads = _insert_in_threads(writer, rows)
        _queued(writer, len(rows))
        before = writer.commits
    for thread in threads:
        thread.join(10)
    assert all(row.get("committed_when_acknowledged") for row in rows), rows
    assert writer.commits - before == 1
    assert Job.objects.filter(pk__in=[r["id"] for r in rows]).count() == len(rows)


def test_a_queued_state_rides_with_a_row_s_commit(writer):
    if connections["default"].vendor != "sqlite":
        pytest.skip("on PostgreSQL rows commit alone, states with the writer")
    earlier = _row(owner="me")
    writer.insert(earlier)
    later = _row(owner="me")
    with writer._commit_lock:
        writer.update(
            earlier["id"],
            expect={"owner": "me", "status": JobStatus.QUEUED, "attempts": 0},
            changes={"status": JobStatus.RUNNING, "attempts": 1},
        )
        threads = _insert_in_threads(writer, [later])
        _queued(writer, 2)
        before = writer.commits
    for thread in threads:
        thread.join(10)
    writer.flush(5)
    assert later["committed_when_acknowledged"]
    assert writer.commits - before == 1
    assert Job.objects.get(pk=earlier["id"]).status == JobStatus.RUNNING


def test_each_row_is_durable_when_its_insert_returns(writer):
    rows = [_row(owner="me") for _ in range(12)]
    for thread in _insert_in_threads(writer, rows):
        thread.join(10)
    assert all(row.get("committed_when_acknowledged") for row in rows), rows


def test_a_failing_row_fails_only_its_own_insert(writer):
    if connections["default"].vendor != "sqlite":
        pytest.skip("on PostgreSQL each row commits alone")
    good = _row(owner="me")
    taken = _row(owner="me")
    writer.insert(taken)
    duplicate = {**_row(owner="me"), "id": taken["id"]}
    errors: dict[str, BaseException] = {}

    def insert(name: str, row: dict) -> None:
        try:
            writer.insert(row)
        except Exception as exc:
            errors[name] = exc
        finally:
            connections.close_all()

    with writer._commit_lock:
        threads = [
            threading.Thread(target=insert, args=("good", good)),
            threading.Thread(target=insert, args=("duplicate", duplicate)),
        ]
        for thread in threads:
            thread.start()
        _queued(writer, 2)
    for thread in threads:
        thread.join(10)
    assert set(errors) == {"duplicate"}
    assert Job.objects.filter(pk=good["id"]).exists()
