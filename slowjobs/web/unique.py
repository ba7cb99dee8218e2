"""Unique-key submits that find another submitter's unfinished job.

A task with ``unique_key`` answers a second enqueue with the unfinished job
already holding the key.  Over HTTP that answer carries the job's key, which
reads its status and result: handing it to whoever sent the same arguments
would let one visitor read another's job.  So a submit is led to the job
only when the visitor may see it by the usual rule (their own, or
``view_job``); anyone else is told the job is under way and when to retry.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.db import router
from django.http import HttpRequest

from slowjobs.models import Job
from slowjobs.progress.records import session_digest
from slowjobs.tasksapi import Task, TaskResult
from slowjobs.web.access import may_see
from slowjobs.web.submitter import current_submitter


def holder_of(
    task: Task[..., Any], result: TaskResult[..., Any]
) -> dict[str, Any] | None:
    """Who submitted the job ``result`` names, and its input file, for a task
    with a unique key (one query); None for other tasks, or a job gone."""
    if not getattr(task, "unique_key", False):
        return None
    # Where the backend wrote it: a replica may not have it yet.
    row = (
        Job.objects.using(router.db_for_write(Job))
        .filter(pk=result.id)
        .values("pk", "submitted_by_id", "submitter_session", "input_file")
        .first()
    )
    return dict(row) if row is not None else None


def someone_elses(request: HttpRequest, holder: dict[str, Any]) -> bool:
    """Whether the job is another submitter's, that this visitor may not see.

    A job just written names the current submitter (the request's user or
    session, or the one a view set with ``submitted_by``) and passes; so
    does a job of the same user or session from before.
    """
    mine = current_submitter(create_session=False)
    if mine.user_id is not None and holder["submitted_by_id"] == mine.user_id:
        return False
    if mine.session_key and hmac.compare_digest(
        holder["submitter_session"], mine.session_key
    ):
        return False
    return not may_see(
        request,
        holder["pk"],
        user_id=holder["submitted_by_id"],
        session=session_digest(holder["submitter_session"]),
    )
