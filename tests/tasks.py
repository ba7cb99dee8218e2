"""Task functions used by the tests."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from django.db import connection, connections

from slowjobs.tasksapi import TaskContext, task

# Tests open these to let a blocked task go on; keyed by name.
gates: dict[str, threading.Event] = {}
# What tasks observed, for the tests to read back.
seen: dict[str, object] = {}


# Set while a test ends: gates made from then on are open from the start
# (a job still queued when the test's gates were opened).
all_open = threading.Event()


def gate(name: str) -> threading.Event:
    event = gates.setdefault(name, threading.Event())
    if all_open.is_set():
        event.set()
    return event


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


@task(takes_context=True)
def count_with_context(context, total: int) -> dict[str, object]:
    for step in range(1, total + 1):
        context.progress(step, total, f"step {step}")
    return {"ticket": context.ticket, "checkpoint": context.checkpoint}


@task
def count_with_module_api(total: int) -> int:
    from slowjobs.engine import context

    for step in range(1, total + 1):
        context.progress(step, total, "counting")
    return total


@task(takes_context=True)
def report_then_wait(context, name: str, current: int, total: int) -> str:
    """Report some progress, then wait for the gate (checking for cancel)."""
    context.progress(current, total, "x" * 500)
    context.job.publish()  # make it visible now, not at the next interval
    gate(f"{name}-reported").set()
    while not gate(name).wait(timeout=0.01):
        context.check_cancelled()
    return name


@task
def loop_until_cancelled(name: str) -> None:
    """Runs until cancelled, using the module-level API only."""
    from slowjobs.engine import context

    gate(f"{name}-started").set()
    for _ in range(100_000):
        context.check_cancelled()
        if gate(name).wait(timeout=0.01):
            return
    raise TimeoutError("never cancelled")


@task(takes_context=True)
def checkpoint_steps(context, steps: int) -> dict[str, object]:
    start = (context.checkpoint or {}).get("done", 0)
    for step in range(start + 1, steps + 1):
        assert context.save_checkpoint({"done": step})
    return {"resumed_from": start, "done": steps}


@task(takes_context=True)
def see_shutdown_and_deadline(context) -> dict[str, object]:
    return {
        "shutting_down": context.shutting_down,
        "deadline_passed": context.deadline_passed,
    }


@task(takes_context=True)
def save_bad_checkpoint(context) -> None:
    context.save_checkpoint({"when": object()})


@task(takes_context=True)
def report_then_block(context, name: str) -> str:
    """Report progress, then wait for the gate without ever looking for a cancel."""
    context.job.progress(1, 2, "half way")
    context.job.publish()
    gate(f"{name}-reported").set()
    if not gate(name).wait(timeout=30):
        raise TimeoutError(name)
    return name


@task(takes_context=True)
def progress_until_gate(context, name: str) -> int:
    """Reports progress every few milliseconds until the gate opens."""
    step = 0
    while not gate(name).wait(timeout=0.005):
        step += 1
        context.progress(step, None, f"step {step}")
        if step == 1:
            gate(f"{name}-started").set()
    return step


@task(takes_context=True)
def append_ticket(context, path: str, pause_ms: int = 0) -> str:
    """Append this job's ticket to a file: a job run twice shows twice."""
    import os
    import time

    if pause_ms:
        time.sleep(pause_ms / 1000)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{context.ticket} {os.getpid()}\n".encode())
    finally:
        os.close(fd)
    return context.ticket


@task(on_interrupt="fail")
def must_not_repeat() -> str:
    return "ran"


@task(takes_context=True, on_interrupt="restart")
def restart_from_scratch(context) -> object:
    return context.checkpoint


@task(max_attempts=3, retry_delay=0.05, retry_backoff=2.0)
def flaky(name: str, failures: int) -> int:
    """Fails its first ``failures`` runs, then returns how many runs it took."""
    runs = seen.setdefault(name, [])
    runs.append(time.monotonic())
    if len(runs) <= failures:
        raise ConnectionError(f"run {len(runs)} of {name} failed")
    return len(runs)


@task(max_attempts=5, retry_delay=0.05, retry_on=(ConnectionError,))
def fails_with_value_error(name: str) -> None:
    seen.setdefault(name, []).append(time.monotonic())
    raise ValueError("not worth retrying")


@task(takes_context=True, timeout=0.3, max_attempts=3, retry_delay=0.01)
def runs_past_timeout(context, name: str) -> None:
    seen.setdefault(name, []).append(time.monotonic())
    step = 0
    while True:  # reports progress, so the timeout can stop it
        step += 1
        context.progress(step, None, f"step {step}")
        time.sleep(0.005)


@task(unique_key=True)
def unique_wait(name: str) -> str:
    gates.setdefault(name, threading.Event()).wait(10)
    return name


@task(unique_key=lambda account, **_: f"account-{account}")
def sync_account(account: int, note: str = "") -> str:
    gates.setdefault(f"sync-{account}", threading.Event()).wait(10)
    return note


@task
def stamp(name: str) -> float:
    now = time.time()
    seen.setdefault(name, []).append(now)
    return now


@task
def log_and_fail(message: str) -> None:
    import logging

    logging.getLogger("tests.tasks").warning("about to fail: %s", message)
    raise RuntimeError(message)


# -- process mode ---------------------------------------------------------------


@task(runs_in="process", takes_context=True)
def where_and_how(context, steps: int) -> dict[str, object]:
    """Reports, checkpoints and attaches a file from a job process."""
    import os

    from slowjobs.jobs import files as jobfiles

    start = (context.checkpoint or {}).get("step", 0)
    for step in range(start, steps):
        context.progress(step + 1, steps, f"step {step + 1}")
        saved = context.save_checkpoint({"step": step + 1})
    path = jobfiles.result_path(context.ticket, ".txt")
    path.write_text(f"{os.getpid()}\n")
    jobfiles.attach_result_file(context.ticket, path)
    return {
        "pid": os.getpid(),
        "niceness": os.nice(0),
        "started_at": start,
        "saved": saved,
        "shutting_down": context.shutting_down,
    }


@task(runs_in="process", takes_context=True)
def spin_in_process(context, seconds: float, look: bool, name: str = "") -> int:
    """Burns CPU; with ``look`` it reports progress (and so sees a cancel)."""
    import os
    import time

    if name:
        # Written aside and renamed: a test that sees the file sees its pid.
        Path(name + ".tmp").write_text(str(os.getpid()))
        os.replace(name + ".tmp", name)
    ends = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < ends:
        rounds += 1
        if look:
            context.progress(rounds)
    return os.getpid()


@task(runs_in="process")
def die_in_process(code: int) -> None:
    import os

    os._exit(code)


@task(runs_in="process", max_attempts=2, retry_delay=0.05, retry_on=(KeyError,))
def fail_in_process(kind: str) -> None:
    raise {"key": KeyError, "value": ValueError}[kind](f"{kind} failed in a process")


@task(runs_in="process")
def enqueue_from_process(a: int, b: int) -> str:
    return add.enqueue(a, b).id


@task(runs_in="process")
def pid_of_process() -> int:
    import os

    return os.getpid()


@task
def own_thread_niceness() -> int:
    import os

    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@task(runs_in="process")
def break_the_protocol() -> None:
    """Writes a line that is not JSON where the server reads messages."""
    import os
    import sys

    os.write(int(sys.argv[1]), b"this is not a message\n")
    time.sleep(30)


@task(cost=3)
def costly_wait(name: str) -> str:
    if not gate(name).wait(timeout=30):
        raise TimeoutError(f"gate {name!r} never opened")
    return name


@task(concurrency=1, concurrency_key=lambda shop, name: shop)  # type: ignore[call-overload, untyped-decorator]
def one_per_shop(shop: str, name: str) -> str:
    order = seen.setdefault("started", [])
    assert isinstance(order, list)
    order.append(name)
    if not gate(name).wait(timeout=30):
        raise TimeoutError(f"gate {name!r} never opened")
    return name


@task(keep_input=True)
def read_and_keep(name: str) -> int:
    from slowjobs.jobs import files as jobfiles

    path = jobfiles.resolve(name)
    assert path is not None
    return len(path.read_bytes())


@task(takes_context=True)  # type: ignore[arg-type]
def write_part_then(context, how: str) -> None:
    from slowjobs.jobs import files as jobfiles

    path = jobfiles.result_path(context.task_result.id, ".part.csv")
    path.write_text("row\n1\n")
    seen["part"] = str(path)
    if how == "fail":
        raise ValueError("halfway")
    for _ in range(3000):  # until cancelled
        context.check_cancelled()
        time.sleep(0.01)


@task
def return_bytes(text: str) -> dict[str, object]:
    return {"text": text.encode("utf-8")}


@task(title="Nightly clean-up")
def titled() -> None:
    return None


@task(takes_context=True, title="Slow count")
def slow_count(context, total: int, pause: float) -> int:
    for step in range(1, total + 1):
        time.sleep(pause)
        context.progress(step, total, f"step {step}")
    return total


@task
def log_lines(name: str, count: int, pause: float = 0.0) -> int:
    """Logs ``count`` numbered lines, as a task's own code would."""
    import logging

    logger = logging.getLogger("tests.joblog")
    for number in range(count):
        logger.warning("%s line %d", name, number)
        if pause:
            time.sleep(pause)
    return count


@task(runs_in="process")
def log_lines_in_process(name: str, count: int, pause: float = 0.0) -> int:
    import logging

    logger = logging.getLogger("tests.joblog")
    for number in range(count):
        logger.warning("%s line %d", name, number)
        if pause:
            time.sleep(pause)
    return count


@task
def log_then_wait(name: str) -> None:
    import logging

    logging.getLogger("tests.joblog").warning("%s waiting", name)
    assert gate(name).wait(30)


@task
def echo_log(text: str, count: int) -> None:
    import logging

    for _ in range(count):
        logging.getLogger("tests.joblog").warning(text)


@task(log_to_owner=True)
def log_lines_for_owner(name: str, count: int) -> int:
    import logging

    for number in range(count):
        logging.getLogger("tests.joblog").warning("%s line %d", name, number)
    return count


@task(takes_context=True)
def report_the_time(context, count: int, pause: float) -> None:
    """Reports progress with the moment of each report as its message."""
    for number in range(1, count + 1):
        time.sleep(pause)
        context.progress(number, count, message=repr(time.time()))


@task(log_to_owner=True)
def log_slowly_for_owner(name: str, count: int, pause: float) -> int:
    import logging

    for number in range(count):
        logging.getLogger("tests.joblog").warning("%s line %d", name, number)
        time.sleep(pause)
    return count
