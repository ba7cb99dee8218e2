"""The backend's Task class: Django's, plus the policies of a job's life.

With slowjobs as the backend, ``@task`` accepts:

    @task(
        on_interrupt="restart",
        max_attempts=5,                 # run at most 5 times when it fails
        retry_delay=2.0,                # seconds before the first retry...
        retry_backoff=2.0,              # ...each later one this many times longer
        retry_max_delay=600.0,          # ...but never longer than this
        retry_on=(ConnectionError,),    # only these exceptions retry
        timeout=300.0,                  # seconds, then the job fails (cooperative)
        unique_key=True,                # one unfinished job per task + arguments
        runs_in="process",              # a child process: CPU-bound, killable
        cost=5,                         # counts as 5 jobs against submitter caps
        concurrency=2,                  # at most 2 running at once per process
        concurrency_key=lambda shop: shop,  # ...per shop, not for the task
        keep_input=True,                # keep the upload after the job ends
        title="Rebuild the index",      # what people see, in place of the path
        log_to_owner=True,              # its submitter sees its log lines too
    )
    def rebuild_index(): ...

``on_interrupt`` says what happens after an interruption (a process that
stopped while the job was queued or running in it):

- ``"resume"`` (the default): run again; the task reads its last checkpoint.
- ``"restart"``: run again from the beginning (the checkpoint is dropped).
- ``"fail"``: do not run again; the job fails with the interruption as error.

Interruptions are not failures: they never use up ``max_attempts``.  A
cancelled or timed-out job is never retried.

``unique_key`` is ``True`` (the key is the task and its JSON arguments) or a
function of the task's arguments returning a string (scoped to the task).
Enqueueing while a job with the same key is unfinished returns that job's
result (same ticket) instead of a new job.

``runs_in`` is ``"thread"`` or ``"process"`` (see ``slowjobs.engine.processes``);
``None`` (the default) follows ``SLOWJOBS_RUNS_IN``.

``concurrency`` bounds how many of the task's jobs run at once in one
process's pool (queued ones wait, others' jobs start meanwhile); with
``concurrency_key``, a function of the task's arguments, the bound is per
key.  ``cost`` (1 to 1000) is what a job counts for against its
submitter's cap on unfinished jobs (``SLOWJOBS_MAX_JOBS_PER_USER``...).
An uploaded input file is removed when its job ends, unless ``keep_input``.
``title`` is the task's name for people: the status page's heading, the
admin's job list and ``%(job_title)s`` in log lines show it (the task's
dotted path when it has none).  What a job's code logs is kept with it
(``slowjobs.monitoring.joblog``); staff with ``view_job`` always see it,
its submitter only with ``log_to_owner``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slowjobs import conf
from slowjobs.conf import RUNS_IN
from slowjobs.tasksapi import InvalidTask, Task

ON_INTERRUPT = ("resume", "restart", "fail")
UNIQUE_KEY_LIMIT = 500
MAX_COST = 1000
TITLE_LIMIT = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class SlowJobsTask(Task):  # type: ignore[type-arg]
    on_interrupt: str = "resume"
    max_attempts: int = 1
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    retry_max_delay: float = 3600.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    timeout: float | None = None
    unique_key: bool | Callable[..., str] = False
    runs_in: str | None = None
    cost: int = 1
    concurrency: int | None = None
    concurrency_key: Callable[..., str] | None = None
    keep_input: bool = False
    title: str = ""
    log_to_owner: bool = False

    def __post_init__(self) -> None:
        if self.on_interrupt not in ON_INTERRUPT:
            raise InvalidTask(
                f"on_interrupt must be one of {', '.join(ON_INTERRUPT)}, "
                f"not {self.on_interrupt!r}."
            )
        _check_policies(self)
        super(SlowJobsTask, self).__post_init__()


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _whole(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _check_policies(task: SlowJobsTask) -> None:
    """Refuse a task whose options cannot work, naming the option."""
    _check_retries(task)
    if task.timeout is not None and (not _number(task.timeout) or task.timeout <= 0):
        raise InvalidTask(
            f"timeout must be a number of seconds > 0 or None, not {task.timeout!r}."
        )
    if task.runs_in is not None and task.runs_in not in RUNS_IN:
        raise InvalidTask(
            f"runs_in must be one of {', '.join(RUNS_IN)} or None, "
            f"not {task.runs_in!r}."
        )
    _check_fair_share(task)
    if not isinstance(task.title, str) or len(task.title) > TITLE_LIMIT:
        raise InvalidTask(
            f"title must be a string of at most {TITLE_LIMIT} characters, "
            f"not {task.title!r}."
        )
    if not isinstance(task.log_to_owner, bool):
        raise InvalidTask(
            f"log_to_owner must be True or False, not {task.log_to_owner!r}."
        )
    if not isinstance(task.keep_input, bool):
        raise InvalidTask(f"keep_input must be True or False, not {task.keep_input!r}.")
    if not isinstance(task.unique_key, bool) and not callable(task.unique_key):
        raise InvalidTask(
            "unique_key must be True, False or a function of the task's "
            f"arguments, not {task.unique_key!r}."
        )


def _check_retries(task: SlowJobsTask) -> None:
    if not _whole(task.max_attempts, 1):
        raise InvalidTask(
            f"max_attempts must be an integer >= 1, not {task.max_attempts!r}."
        )
    for name in ("retry_delay", "retry_max_delay"):
        value = getattr(task, name)
        if not _number(value) or value < 0:
            raise InvalidTask(
                f"{name} must be a number of seconds >= 0, not {value!r}."
            )
    if not _number(task.retry_backoff) or task.retry_backoff < 1:
        raise InvalidTask(
            f"retry_backoff must be a number >= 1, not {task.retry_backoff!r}."
        )
    retry_on = task.retry_on
    if isinstance(retry_on, type):
        object.__setattr__(task, "retry_on", (retry_on,))
    elif not isinstance(retry_on, tuple) or not all(
        isinstance(kind, type) and issubclass(kind, BaseException) for kind in retry_on
    ):
        raise InvalidTask(
            f"retry_on must be a tuple of exception classes, not {retry_on!r}."
        )


def _check_fair_share(task: SlowJobsTask) -> None:
    if not _whole(task.cost, 1) or task.cost > MAX_COST:
        raise InvalidTask(
            f"cost must be an integer from 1 to {MAX_COST}, not {task.cost!r}."
        )
    if task.concurrency is not None and not _whole(task.concurrency, 1):
        raise InvalidTask(
            f"concurrency must be an integer >= 1 or None, not {task.concurrency!r}."
        )
    if task.concurrency_key is not None and (
        task.concurrency is None or not callable(task.concurrency_key)
    ):
        raise InvalidTask(
            "concurrency_key must be a function of the task's arguments, "
            "and needs concurrency."
        )


def on_interrupt(task: Any) -> str:
    """The policy of any task (Django's own Task class has none: resume)."""
    return str(getattr(task, "on_interrupt", "resume"))


def retry_delay(task: Any, failures: int) -> float | None:
    """Seconds before the next attempt after ``failures`` failed ones, or None."""
    if failures >= getattr(task, "max_attempts", 1):
        return None
    delay = float(task.retry_delay) * float(task.retry_backoff) ** (failures - 1)
    return float(min(delay, task.retry_max_delay))


def retries_on(task: Any, exc: BaseException) -> bool:
    kinds: tuple[type[BaseException], ...] = getattr(task, "retry_on", ())
    return isinstance(exc, kinds)


def runs_in(task: Any) -> str:
    """Where the task's code runs: its own choice, else the setting."""
    value = getattr(task, "runs_in", None)
    return str(value) if value is not None else conf.get().runs_in


def unique_key_for(task: Any, args: list[Any], kwargs: dict[str, Any]) -> str | None:
    """The job's uniqueness key, or None when its task has none.

    ``True`` hashes the task path with its canonical JSON arguments (a hash,
    so that any arguments fit the column).
    """
    key = getattr(task, "unique_key", False)
    if key is False:
        return None
    if key is True:
        canonical = json.dumps([args, kwargs], sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        return f"{task.module_path}:{digest}"
    try:
        value = key(*args, **kwargs)
    except Exception as exc:
        raise InvalidTask(
            f"unique_key of {task.module_path} raised {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(value, str) or not value:
        raise InvalidTask(
            f"unique_key of {task.module_path} must return a non-empty string, "
            f"not {value!r}."
        )
    key = f"{task.module_path}:{value}"
    if len(key) > UNIQUE_KEY_LIMIT:
        raise InvalidTask(
            f"unique_key of {task.module_path} returned {len(value)} characters; "
            f"with the task path, at most {UNIQUE_KEY_LIMIT} fit."
        )
    return key


def cost_of(task: Any) -> int:
    return int(getattr(task, "cost", 1))


def concurrency_limit(
    task: Any, args: list[Any], kwargs: dict[str, Any]
) -> tuple[str, int] | None:
    """The bound a job of ``task`` runs under: (its key, how many at once).

    A key function that fails puts the job under the task's own bound
    rather than losing it (the job is already accepted when this runs).
    """
    limit = getattr(task, "concurrency", None)
    if limit is None:
        return None
    key_of = getattr(task, "concurrency_key", None)
    key = task.module_path
    if key_of is not None:
        try:
            key = f"{task.module_path}:{key_of(*args, **kwargs)}"
        except Exception:
            key = task.module_path
    return key, int(limit)
