"""The one task every admin job action runs as.

A Task must be importable by its dotted path (a resumed job is found
again by it), and an action is a ``ModelAdmin``'s method: so the job names
the admin site, the model and the action, and the task finds the function
again through them, in whichever process runs it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.sites import all_sites

from slowjobs.engine.context import JobContext
from slowjobs.tasksapi import Task, task


class ActionGone(LookupError):
    """The admin site, model or job action the job names is not there."""


@task(takes_context=True, unique_key=True)  # type: ignore[call-overload, untyped-decorator]
def run_admin_action(
    context: JobContext, site: str, model: str, action: str, keys: list[Any]
) -> Any:
    modeladmin = _model_admin(site, model)
    function = _job_function(modeladmin, action)
    queryset = modeladmin.model._default_manager.filter(pk__in=keys)
    return function(modeladmin, context, queryset)


def titled(task_: Task[..., Any], title: str) -> Task[..., Any]:
    """The task, shown as ``title``: the job's page says which action runs."""
    return dataclasses.replace(task_, title=title[:200])  # type: ignore[call-arg]


def _model_admin(site_name: str, label: str) -> admin.ModelAdmin[Any]:
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise ActionGone(f"No model {label!r}.") from exc
    for site in all_sites:
        if site.name == site_name and site.is_registered(model):
            return site.get_model_admin(model)
    raise ActionGone(f"{label} is not registered in the admin site {site_name!r}.")


def _job_function(modeladmin: admin.ModelAdmin[Any], name: str) -> Any:
    from slowjobs.actions.decorator import JOB_FUNCTION

    site_actions = [action for _, action in modeladmin.admin_site.actions]
    for entry in [*(modeladmin.actions or ()), *site_actions]:
        found = (
            getattr(type(modeladmin), entry, None) if isinstance(entry, str) else entry
        )
        function = getattr(found, JOB_FUNCTION, None)
        if function is not None and getattr(found, "__name__", "") == name:
            return function
    raise ActionGone(f"{type(modeladmin).__name__} has no job action {name!r}.")
