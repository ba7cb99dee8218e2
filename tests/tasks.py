"""Task functions used by the tests."""

from __future__ import annotations

import asyncio
import threading

from django.db import connection, connections
from django.tasks import TaskContext, task

# Tests open these to let a blocked task go on; keyed by name.
gates: dict[str, threading.Event] = {}
# What tasks observed, for the tests to read back.
seen: dict[str, object] = {}


def gate(name: str) -> threading.Event:
    return gates.setdefault(name, threading.Event())


@task
def noop() -> None:
    pass


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def echo(*args: object, **kwargs: object) -> dict[str, object]:
    return {"args": list(args), "kwargs": kwargs}


@task
def fail(message: str) -> None:
    raise ValueError(message)


@task
def return_not_json() -> object:
    return {1, 2}


@task
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


@task(takes_context=True)
def with_context(context: TaskContext) -> dict[str, object]:
    return {"id": context.task_result.id, "attempt": context.attempt}


@task
def wait_for_gate(name: str) -> str:
    if not gate(name).wait(timeout=30):
        raise TimeoutError(f"gate {name!r} never opened")
    return name


@task
def record_order(name: str) -> None:
    order = seen.setdefault("order", [])
    assert isinstance(order, list)
    order.append(name)


@task
def touch_database() -> str:
    connection.ensure_connection()
    seen.setdefault("connections", []).append(connections["default"])  # type: ignore[union-attr]
    return connection.vendor


@task(priority=10)
def urgent(name: str) -> None:
    record_order.func(name)
