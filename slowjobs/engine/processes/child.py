"""A job process: ``python -m slowjobs.processes FD NICENESS``.

Started by a server process (``slowjobs.engine.processes.pool``) with one end of a
socket pair as file descriptor ``FD``.  It lowers its own priority, sets up
Django with the server's settings, says it is ready, then runs one job at a
time as the server asks.  It ignores Ctrl+C (the server decides when jobs
stop) and ends as soon as the server's end of the socket closes, so a
crashed or killed server leaves no job process behind.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import threading
import time
import uuid
from datetime import datetime
from typing import Any

from slowjobs.engine.place import become_job_process
from slowjobs.engine.processes.wire import Channel, ChannelClosed, Message


def main(argv: list[str]) -> None:
    fd, niceness = int(argv[1]), int(argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if niceness:
        os.nice(niceness)
    channel = Channel(socket.socket(fileno=fd))
    # An enqueue from a task now leaves the job to the servers.
    become_job_process()

    import django

    django.setup()
    from slowjobs.monitoring import joblog

    joblog.install()
    channel.send({"op": "ready", "pid": os.getpid()})
    runs: queue.SimpleQueue[Message] = queue.SimpleQueue()
    current: dict[str, Any] = {}
    threading.Thread(
        target=_read, args=(channel, runs, current), name="slowjobs-child-reader",
        daemon=True,
    ).start()  # fmt: skip
    while True:
        message = runs.get()
        try:
            outcome = _run(message, channel, current)
        finally:
            current.clear()
            _close_connections()
        channel.send({"op": "done", "ticket": message["ticket"], **outcome})


def _read(
    channel: Channel, runs: queue.SimpleQueue[Message], current: dict[str, Any]
) -> None:
    """Route the server's messages; end the process when the server is gone."""
    from slowjobs.engine.running import stopping

    try:
        while True:
            message = channel.receive()
            if message is None:
                continue
            op = message.get("op")
            if op == "run":
                runs.put(message)
            elif op == "exit":
                break
            elif op == "stopping":
                stopping.set()
            else:
                job = current.get("job")
                if job is None or str(job.ticket) != message.get("ticket"):
                    continue  # about a job that has already ended
                if op == "cancel":
                    job.cancel_requested = True
                elif op == "interrupt":
                    job.interrupted = True
                elif op == "timeout":
                    job.timed_out = True
                elif op == "checkpoint_saved":
                    job.replies.put(message)
    except (ChannelClosed, ValueError):
        pass
    os._exit(0)


def _run(message: Message, channel: Channel, current: dict[str, Any]) -> Message:
    from slowjobs.engine.calling import Outcome, call_task, error_fields
    from slowjobs.jobs.results import build_result
    from slowjobs.models import JobStatus
    from slowjobs.tasksapi import Task, TaskResult, TaskResultStatus

    try:
        task = _load_task(message)
    except Exception as exc:
        return Outcome(JobStatus.FAILED, error_fields(exc)).as_message()
    assert isinstance(task, Task)
    job = current["job"] = _child_job(message, channel, task)
    running: TaskResult[..., Any] = build_result(
        task=task,
        ticket=str(job.ticket),
        status=TaskResultStatus.RUNNING,
        args=message["args"],
        kwargs=message["kwargs"],
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        worker_ids=message.get("worker_ids", []),
    )
    outcome = call_task(task, message["args"], message["kwargs"], running, job)
    reply = outcome.as_message()
    if job.result_file:
        reply["result_file"] = job.result_file
    if job.reported:
        reply["progress"] = job._progress_values()
    reply.update(job.log_delta())
    return reply


def _child_job(message: Message, channel: Channel, task: Any) -> Any:
    """The job as this process runs it, from the server's message."""
    from slowjobs.engine.processes.childjob import ChildJob

    seconds_left = message.get("seconds_left")
    return ChildJob(
        ticket=uuid.UUID(message["ticket"]),
        task_path=message["task_path"],
        owner=message["owner"],
        attempt=message["attempt"],
        enqueued_at=datetime.fromisoformat(message["enqueued_at"]),
        started_at=datetime.fromisoformat(message["started_at"]),
        using=message["using"],
        submitter_user=message.get("user"),
        submitter_session=message.get("session", ""),
        checkpoint=message.get("checkpoint"),
        history=message.get("history", []),
        task=task,
        timeout=message.get("timeout"),
        deadline=None if seconds_left is None else time.monotonic() + seconds_left,
        channel=channel,
    )


def _load_task(message: Message) -> Any:
    from django.utils.module_loading import import_string

    from slowjobs.tasksapi import Task

    task = import_string(message["task_path"])
    if not isinstance(task, Task):
        raise TypeError(f"{message['task_path']} is not a Task")
    return task.using(
        priority=message.get("priority", 0),
        queue_name=message.get("queue_name", task.queue_name),
        backend=message.get("backend", task.backend),
    )


def _close_connections() -> None:
    from django.db import connections

    connections.close_all()
