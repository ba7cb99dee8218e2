"""The Tasks framework slowjobs plugs into, from wherever this Django has it.

Django 6.x ships it as ``django.tasks``; on Django 5.2 LTS it is the
``django-tasks`` backport (``django_tasks``), whose names differ a little
(``InvalidTaskError`` for ``InvalidTask``).  Every slowjobs module imports
the framework from here, so that one place knows the difference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING or __import__("django").VERSION >= (6, 0):
    from django.tasks import (
        DEFAULT_TASK_QUEUE_NAME,
        Task,
        TaskContext,
        TaskResult,
        TaskResultStatus,
        default_task_backend,
        task,
        task_backends,
    )
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TaskError
    from django.tasks.exceptions import (
        InvalidTask,
        InvalidTaskBackend,
        TaskException,
        TaskResultDoesNotExist,
    )
    from django.tasks.signals import task_enqueued, task_finished, task_started

    # The logger of the framework's own lines ("Task id=... state=...").
    TASKS_LOGGER = "django.tasks"
else:  # Django 5.2 LTS with the django-tasks backport
    try:
        import django_tasks  # noqa: F401
    except ImportError as exc:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "slowjobs on Django 5.2 needs the django-tasks backport of the "
            "Tasks framework: pip install 'slowjobs[django52]'"
        ) from exc
    from django_tasks import (
        DEFAULT_TASK_QUEUE_NAME,
        TaskContext,
        TaskResult,
        TaskResultStatus,
        default_task_backend,
        task,
        task_backends,
    )
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import Task, TaskError
    from django_tasks.exceptions import InvalidTaskBackendError as InvalidTaskBackend
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.exceptions import TaskException, TaskResultDoesNotExist
    from django_tasks.signals import task_enqueued, task_finished, task_started

    TASKS_LOGGER = "django_tasks"

__all__ = [
    "DEFAULT_TASK_QUEUE_NAME",
    "TASKS_LOGGER",
    "BaseTaskBackend",
    "InvalidTask",
    "InvalidTaskBackend",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskException",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "default_task_backend",
    "task",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]
