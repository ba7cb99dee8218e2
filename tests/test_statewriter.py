from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.db import connections
from django.utils import timezone

from slowjobs.backend.backend import _insert as insert
from slowjobs.jobs.sql import statements_for
from slowjobs.jobs.statewriter import StateWriter
from slowjobs.models import Job, JobStatus
from slowjobs.tasksapi import task_finished
from tests import tasks

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


def _insert(row):
    """The one insert path: the backend's own (committed when it returns)."""
    insert(connections["default"], row, None)


def test_insert_is_durable_when_it_returns():
    row = _row(owner="me")
    _insert(row)
    job = Job.objects.get(pk=row["id"])
    assert job.status == JobStatus.QUEUED
    assert job.args == []
    assert job.kwargs == {}
    assert job.owner == "me"


def test_conditional_updates_report_whether_they_matched(writer):
    row = _row(owner="me")
    _insert(row)
    outcomes: list[int] = []
    done = threading.Event()

    def record(rows: int) -> None:
        outcomes.append(rows)
        if len(outcomes) == 2:
            done.set()

    writer.update(
        row["id"],
        expect={"owner": "someone else"},
        changes={"status": JobStatus.FAILED},
        on_written=record,
    )
    writer.update(
        row["id"],
        expect={"owner": "me", "status": JobStatus.QUEUED},
        changes={"status": JobStatus.RUNNING, "attempts": 1},
        on_written=record,
    )
    assert done.wait(5)
    assert outcomes == [0, 1]
    assert Job.objects.get(pk=row["id"]).status == JobStatus.RUNNING


def test_updates_of_one_row_in_one_batch_each_report_their_own_match():
    row = _row(owner="me")
    connection = connections["default"]
    statements = statements_for(connection)
    with connection.cursor() as cursor:
        statements.insert(cursor, [row])
        matched = statements.update_many(
            cursor,
            [
                (row["id"], {"owner": "other"}, {"attempts": 7}),
                (row["id"], {"owner": "me"}, {"attempts": 1}),
                (row["id"], {"attempts": 5}, {"attempts": 9}),
            ],
        )
    assert matched == [0, 1, 0]
    assert Job.objects.get(pk=row["id"]).attempts == 1


def test_many_updates_in_one_batch_match_only_their_own_rows():
    rows = [_row(owner="me") for _ in range(6)]
    connection = connections["default"]
    statements = statements_for(connection)
    with connection.cursor() as cursor:
        statements.insert(cursor, rows)
        matched = statements.update_many(
            cursor,
            [
                (row["id"], {"owner": "me" if i % 2 else "other"}, {"attempts": i})
                for i, row in enumerate(rows)
            ],
        )
    assert matched == [0, 1, 0, 1, 0, 1]
    attempts = dict(Job.objects.values_list("pk", "attempts"))
    assert [attempts[row["id"]] for row in rows] == [0, 1, 0, 3, 0, 5]


def test_a_start_and_finish_in_one_batch_become_one_update(writer):
    row = _row(owner="me")
    _insert(row)
    finished = threading.Event()
    # Written in the caller's thread after stop, as one batch of both.
    writer.stop(5)
    writer.update(
        row["id"],
        expect={"status": JobStatus.QUEUED, "attempts": 0},
        changes={"status": JobStatus.RUNNING, "attempts": 1},
    )
    writer.update(
        row["id"],
        expect={"status": JobStatus.RUNNING, "attempts": 1},
        changes={"status": JobStatus.SUCCEEDED, "result": {"ok": True}},
        on_written=lambda rows: finished.set() if rows else None,
    )
    assert finished.is_set()
    job = Job.objects.get(pk=row["id"])
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == {"ok": True}
    assert job.attempts == 1


def test_a_slow_signal_receiver_delays_no_other_job_s_outcome():
    sleeping = threading.Event()

    def slow_receiver(sender: object, task_result: object, **kwargs: object) -> None:
        if getattr(task_result, "args", None) == ["slow"]:
            sleeping.set()
            time.sleep(2)

    task_finished.connect(slow_receiver, weak=False)
    try:
        tasks.echo.enqueue("slow")
        assert sleeping.wait(5)  # its receiver holds its thread for 2 s
        began = time.monotonic()
        other = tasks.add.enqueue(1, 2)
        while Job.objects.get(pk=other.id).status != JobStatus.SUCCEEDED:
            assert time.monotonic() - began < 1.0, "the outcome waited"
            time.sleep(0.01)
    finally:
        task_finished.disconnect(slow_receiver)


@pytest.mark.skipif(
    connections["default"].vendor != "postgresql",
    reason="a deadlock needs row locks (the PostgreSQL run covers it)",
)
def test_a_batch_that_loses_a_deadlock_is_written_again_not_an_outage(writer, caplog):
    """Another transaction locks the batch's second row, then its first: the
    database rolls one of them back, and the writer's batch still lands."""
    first, second = _row(owner="me"), _row(owner="me")
    _insert(first)
    _insert(second)
    holding, release = threading.Event(), threading.Event()
    other_error: list[BaseException] = []

    def other_transaction() -> None:
        from django.db import transaction

        try:
            with transaction.atomic():
                Job.objects.filter(pk=second["id"]).update(progress_message="other")
                holding.set()
                release.wait(10)  # the writer now waits for this row
                Job.objects.filter(pk=first["id"]).update(progress_message="other")
        except Exception as exc:  # the deadlock's other possible victim
            other_error.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_transaction)
    thread.start()
    assert holding.wait(10)
    matched: list[int] = []
    caplog.set_level("INFO", logger="slowjobs.statewriter")
    # Queued while the writer cannot commit, so both go in one batch.
    with writer._commit_lock:
        for row in (first, second):
            writer.update(
                row["id"],
                expect={"status": JobStatus.QUEUED},
                changes={"progress_message": "writer"},
                on_written=matched.append,
            )
    time.sleep(0.3)  # the batch has locked the first row, and waits
    release.set()
    thread.join(15)
    assert writer.flush(15)
    assert matched == [1, 1]
    outages = [r for r in caplog.records if "cannot write job states" in r.message]
    assert not outages, "a deadlock was taken for an outage"
    for row in (first, second):
        assert Job.objects.get(pk=row["id"]).progress_message == "writer"
    # One side lost, and either way the writer's states are in: the writer
    # (it waited first, so its check found the cycle) wrote its batch
    # again, or the other transaction was rolled back.
    retried = [r for r in caplog.records if "lost a conflict" in r.message]
    assert len(retried) + len(other_error) == 1, (retried, other_error)
    assert all("deadlock" in str(exc) for exc in other_error)
