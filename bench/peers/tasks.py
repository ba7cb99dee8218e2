"""The benchmark's jobs in each system's own form.

Django tasks serve slowjobs and django-tasks-db (the TASKS setting picks the
backend); Celery tasks and plain functions serve Celery and RQ.
"""

from __future__ import annotations

from rq import get_current_job

from slowjobs.engine import context as slowjobs_context
from slowjobs.tasksapi import task

from . import work
from .celery import app

# -- Django tasks: slowjobs, django-tasks-db --------------------------------


@task
def noop() -> None:
    pass


@task
def mark(number: int) -> None:
    work.mark_start(number)


@task
def sleep_100ms() -> None:
    work.sleep_100ms()


@task
def progress_slowjobs(reports: int) -> float:
    return work.progress_cost(reports, slowjobs_context.progress)


# -- Celery -----------------------------------------------------------------


@app.task
def celery_noop() -> None:
    pass


@app.task
def celery_counted_noop() -> None:
    work.count_done()


@app.task
def celery_mark(number: int) -> None:
    work.mark_start(number)


@app.task
def celery_sleep() -> None:
    work.sleep_100ms()


@app.task(bind=True)
def celery_progress(self, reports: int) -> float:  # type: ignore[no-untyped-def]
    def report(current: int, total: int) -> None:
        self.update_state(state="PROGRESS", meta={"current": current, "total": total})

    return work.progress_cost(reports, report)


# -- RQ ---------------------------------------------------------------------


def rq_noop() -> None:
    pass


def rq_mark(number: int) -> None:
    work.mark_start(number)


def rq_sleep() -> None:
    work.sleep_100ms()


def rq_progress(reports: int) -> float:
    job = get_current_job()

    def report(current: int, total: int) -> None:
        job.meta["progress"] = {"current": current, "total": total}
        job.save_meta()

    return work.progress_cost(reports, report)
