"""``@job_action``: a slow ``ModelAdmin`` action, run as a job.

    from slowjobs.actions import job_action

    class BookAdmin(admin.ModelAdmin):
        actions = ["reindex"]

        @job_action(description="Re-index the selected books", permissions=["change"])
        def reindex(self, job, queryset):
            total = queryset.count()
            for done, book in enumerate(queryset.iterator(), 1):
                book.reindex()
                job.progress(done, total)       # raises JobCancelled when asked
            return {"books": total}

Choosing the action in the admin enqueues a job instead of running the
function in the request: the job holds the selected primary keys (JSON,
never a pickled queryset) and calls the function with the ``ModelAdmin``,
its ``JobContext`` and a fresh queryset of those rows, in a job thread, once
or again after a restart.  The staff user is sent to the job's page, with
its progress, a cancel button and the result (a file the function attaches
with ``slowjobs.jobfiles.attach_result_file`` is offered as a download).

Who may run it is decided as for any action: by ``permissions`` (Django's
``has_<name>_permission``).  The job is recorded as the staff user's, with
an entry in the admin's history.  While one run of an action on a selection
is unfinished, choosing it again on the same rows does not start another:
it leads to the first one's page (or, for staff who may not see that job,
says who started it).  Selections are bounded (``max_rows``, 10,000 unless
given): a larger one is refused with a message, and nothing is enqueued.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from typing import TYPE_CHECKING, Any, overload

from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, LogEntry
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from slowjobs.actions.tasks import run_admin_action, titled
from slowjobs.exceptions import EnqueueRefused
from slowjobs.models import Job
from slowjobs.progress.records import session_digest
from slowjobs.web.access import may_see
from slowjobs.web.joburls import job_url

# The attribute that marks an action as a job action: the function it runs.
JOB_FUNCTION = "slowjobs_job_function"
DEFAULT_MAX_ROWS = 10_000

if TYPE_CHECKING:
    from django.utils.functional import _StrOrPromise as StrOrPromise

JobFunction = Callable[..., Any]
ActionFunction = Callable[..., HttpResponse | None]


@overload
def job_action(function: JobFunction, /) -> ActionFunction: ...


@overload
def job_action(
    *,
    description: StrOrPromise | None = None,
    permissions: Sequence[str] | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Callable[[JobFunction], ActionFunction]: ...


def job_action(
    function: JobFunction | None = None,
    /,
    *,
    description: StrOrPromise | None = None,
    permissions: Sequence[str] | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> ActionFunction | Callable[[JobFunction], ActionFunction]:
    """Make ``function(modeladmin, job, queryset)`` an admin action run as a job."""
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"max_rows must be an integer >= 1, not {max_rows!r}.")

    def decorate(func: JobFunction) -> ActionFunction:
        @wraps(func)
        def action(
            modeladmin: admin.ModelAdmin[Any],
            request: HttpRequest,
            queryset: QuerySet[Any],
        ) -> HttpResponse | None:
            return start(
                modeladmin,
                request,
                queryset,
                name=func.__name__,
                title=str(description or func.__name__.replace("_", " ").capitalize()),
                max_rows=max_rows,
            )

        setattr(action, JOB_FUNCTION, func)
        return admin.action(description=description, permissions=permissions)(action)

    return decorate if function is None else decorate(function)


def start(
    modeladmin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    name: str,
    title: str,
    max_rows: int,
) -> HttpResponse | None:
    """Enqueue the action's job on the selection and send the user to it."""
    keys = list(queryset.order_by().values_list("pk", flat=True)[: max_rows + 1])
    if len(keys) > max_rows:
        modeladmin.message_user(
            request,
            gettext(
                "Select at most %(limit)d rows for “%(action)s”; nothing was started."
            )
            % {"limit": max_rows, "action": title},
            messages.ERROR,
        )
        return None
    model = modeladmin.model
    began = timezone.now()
    try:
        result = titled(run_admin_action, title).enqueue(
            modeladmin.admin_site.name,
            model._meta.label_lower,
            name,
            sorted((_as_json(key) for key in keys), key=_order),
        )
    except EnqueueRefused as exc:
        modeladmin.message_user(request, str(exc), messages.ERROR)
        return None
    job = Job.objects.filter(pk=result.id).select_related("submitted_by").first()
    if job is None:  # finished and purged already
        return None
    if job.enqueued_at < began:  # the same action on the same rows, unfinished
        if not may_see(
            request,
            job.pk,
            user_id=job.submitted_by_id,
            session=session_digest(job.submitter_session),
        ):
            modeladmin.message_user(
                request,
                gettext("“%(action)s” is already running on these rows, for %(user)s.")
                % {"action": title, "user": job.submitted_by or gettext("someone")},
                messages.WARNING,
            )
            return None
    else:
        _record(request, job, title, len(keys), model)
    return HttpResponseRedirect(job_url("page", job.pk) or "")


def _as_json(key: Any) -> int | str:
    """A primary key as the job's JSON arguments hold it."""
    return key if isinstance(key, int) and not isinstance(key, bool) else str(key)


def _order(key: int | str) -> tuple[int, int | str]:
    return (0, key) if isinstance(key, int) else (1, key)


def _record(
    request: HttpRequest, job: Job, title: str, rows: int, model: type[Model]
) -> None:
    """An entry in the admin's history: who started which action, on what."""
    message = _("Started “%(action)s” on %(count)d %(objects)s.") % {
        "action": title,
        "count": rows,
        "objects": model._meta.verbose_name_plural
        if rows != 1
        else model._meta.verbose_name,
    }
    LogEntry.objects.log_actions(
        user_id=request.user.pk or 0,
        queryset=[job],
        action_flag=ADDITION,
        change_message=str(message),
        single_object=True,
    )
