"""The backend's Task class: Django's, plus what to do after an interruption.

With slowjobs as the backend, ``@task`` accepts ``on_interrupt``:

    @task(on_interrupt="restart")
    def rebuild_index(): ...

- ``"resume"`` (the default): run again; the task reads its last checkpoint.
- ``"restart"``: run again from the beginning (the checkpoint is dropped).
- ``"fail"``: do not run again; the job fails with the interruption as error.

An interruption is a process that stopped (crash, kill, or a shutdown whose
drain timeout ran out) while the job was queued or running in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.tasks import Task
from django.tasks.exceptions import InvalidTask

ON_INTERRUPT = ("resume", "restart", "fail")


@dataclass(frozen=True, slots=True, kw_only=True)
class SlowJobsTask(Task):  # type: ignore[type-arg]
    on_interrupt: str = "resume"

    def __post_init__(self) -> None:
        if self.on_interrupt not in ON_INTERRUPT:
            raise InvalidTask(
                f"on_interrupt must be one of {', '.join(ON_INTERRUPT)}, "
                f"not {self.on_interrupt!r}."
            )
        super(SlowJobsTask, self).__post_init__()


def on_interrupt(task: Any) -> str:
    """The policy of any task (Django's own Task class has none: resume)."""
    return str(getattr(task, "on_interrupt", "resume"))
