"""Tasks for the conformance tests: the cases Django's own task tests use."""

from __future__ import annotations

from slowjobs.tasksapi import TaskContext, task


@task()
def nothing(*args: object, **kwargs: object) -> None:
    return None


@task
def nothing_bare(*args: object, **kwargs: object) -> None:
    return None


@task()
async def nothing_async(*args: object, **kwargs: object) -> None:
    return None


@task()
def answer() -> int:
    return 42


@task()
def raises_value_error() -> None:
    raise ValueError("broke with a ValueError")


@task()
def raises_system_exit() -> None:
    raise SystemExit("broke with a SystemExit")


@task()
def raises_keyboard_interrupt() -> None:
    raise KeyboardInterrupt("broke with a KeyboardInterrupt")


@task()
def raises_nested() -> None:
    raise ValueError(ValueError("inner"))


@task()
def returns_a_function() -> object:
    return len


@task(takes_context=True)
def own_ticket(context: TaskContext) -> str:
    return context.task_result.id


@task(takes_context=True)
def sees_attempt(context: TaskContext, attempt: int) -> bool:
    assert isinstance(context, TaskContext)
    assert context.attempt == attempt
    return True
