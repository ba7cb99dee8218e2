"""The OpenAPI description of the job endpoints, as the app publishes it.

``GET <mount>/openapi.json`` serves it, with the paths where the app is
mounted; a site adds its own submit endpoints with ``extend_description``
(the demo does).  It is what the contract promises, and the tests fuzz the
running server against it (schemathesis): any answer it does not list is a
failure.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from slowjobs import __version__

STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]
TICKET_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"

TIME = {"type": ["string", "null"], "format": "date-time"}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}
JOB_STATUS: dict[str, Any] = {
    "type": "object",
    "required": [
        "ticket", "task", "status", "cancel_requested", "progress", "attempts",
        "enqueued_at", "started_at", "finished_at", "result", "error", "result_url",
    ],
    "properties": {
        "ticket": {"type": "string", "format": "uuid"},
        "task": {"type": "string"},
        "status": {"type": "string", "enum": STATUSES},
        "cancel_requested": {"type": "boolean"},
        "progress": {
            "type": "object",
            "required": ["current", "total", "percent", "message"],
            "properties": {
                "current": {"type": ["integer", "null"]},
                "total": {"type": ["integer", "null"]},
                "percent": {"type": ["number", "null"], "minimum": 0, "maximum": 100},
                "message": {"type": "string"},
            },
        },
        "attempts": {"type": "integer", "minimum": 0},
        "enqueued_at": TIME,
        "started_at": TIME,
        "finished_at": TIME,
        "result": {"description": "The task's JSON return value, once succeeded."},
        "error": {"type": ["string", "null"]},
        "result_url": {"type": ["string", "null"]},
        "traceback": {
            "type": "string",
            "description": "Only for users with slowjobs.view_job.",
        },
        "detail": {"type": "string", "description": "Cancel answers only."},
    },
}  # fmt: skip


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def retry_later(description: str) -> dict[str, Any]:
    return {
        **json_body(
            {
                "type": "object",
                "required": ["error", "retry_after"],
                "properties": {
                    "error": {"type": "string"},
                    "retry_after": {"type": "integer", "minimum": 0},
                },
            },
            description,
        ),
        "headers": {
            "Retry-After": {"required": True, "schema": {"type": "string"}},
        },
    }


NOT_FOUND = json_body(ERROR, "Unknown, malformed or someone else's ticket.")
UNAVAILABLE = retry_later("The job database is not answering.")
TICKET = {
    "name": "ticket",
    "in": "path",
    "required": True,
    "description": "The job's UUID; anything else is answered 404.",
    "schema": {"type": "string"},
}


KEY = {
    "name": "key",
    "in": "query",
    "required": False,
    "description": "The job's own key, as given in the 202's status_url and "
    "page_url: it lets a client without the submitter's session (or any "
    "cookie) read, cancel and download that one job.",
    "schema": {"type": "string"},
}
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The ETag of an earlier answer: 304 while the status is the same.",
    "schema": {"type": "string"},
}
PREFER = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "description": "RFC 7240. `wait=N`: wait up to N seconds (at most "
    "SLOWJOBS_MAX_WAIT) for the job; done by then, the answer is 200 with its "
    "status (a browser: 303 to its page), else the usual 202. Both then say "
    "`Preference-Applied: wait=N`. With no place free to wait (per process, "
    "per client address) the 202 comes at once, without Preference-Applied. "
    "Other preferences are ignored.",
    "schema": {"type": "string"},
}
WAITED = {
    **json_body(
        JOB_STATUS,
        "Prefer: wait=N and the job ended within the wait: its status JSON, as "
        "the status URL would answer it (result_url with the job's key).",
    ),
    "headers": {
        "Preference-Applied": {"required": True, "schema": {"type": "string"}},
        "Content-Location": {
            "required": True,
            "description": "The job's status URL, with its key.",
            "schema": {"type": "string"},
        },
    },
}
FORBIDDEN = json_body(
    ERROR,
    "A browser POST from another site (Sec-Fetch-Site or Origin), or a session "
    "cookie without a CSRF token.",
)


JOB_LIST: dict[str, Any] = {
    "type": "object",
    "required": ["jobs", "count", "page", "pages", "next", "previous"],
    "properties": {
        "jobs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "ticket", "task", "title", "status", "progress", "enqueued_at",
                    "page_url", "status_url",
                ],
                "properties": {
                    "ticket": {"type": "string", "format": "uuid"},
                    "task": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "string", "enum": STATUSES},
                    "cancel_requested": {"type": "boolean"},
                    "progress": JOB_STATUS["properties"]["progress"],
                    "attempts": {"type": "integer", "minimum": 0},
                    "enqueued_at": TIME,
                    "started_at": TIME,
                    "finished_at": TIME,
                    "page_url": {"type": "string"},
                    "status_url": {"type": "string"},
                    "result_url": {"type": ["string", "null"]},
                },
            },
        },
        "count": {"type": "integer", "minimum": 0},
        "page": {"type": "integer", "minimum": 1},
        "pages": {"type": "integer", "minimum": 1},
        "next": {"type": ["string", "null"]},
        "previous": {"type": ["string", "null"]},
    },
}  # fmt: skip
PAGE = {
    "name": "page",
    "in": "query",
    "required": False,
    "description": "Which page of 20 (1 and up); past the last one, 404.",
    "schema": {"type": "integer", "minimum": 1},
}


def _path(name: str) -> str:
    return reverse(f"slowjobs:{name}", args=[TICKET_PLACEHOLDER]).replace(
        TICKET_PLACEHOLDER, "{ticket}"
    )


def job_paths() -> dict[str, Any]:
    """The job endpoints, at the paths where this site mounts them."""
    return {
        reverse("slowjobs:list"): {
            "get": {
                "operationId": "listJobs",
                "summary": "The visitor's own jobs (their user's or session's), "
                "newest first.",
                "parameters": [PAGE],
                "responses": {
                    "200": {
                        "description": "A page of the visitor's jobs: JSON for "
                        "Accept: application/json, else the HTML page.",
                        "content": {
                            "application/json": {"schema": JOB_LIST},
                            "text/html": {"schema": {"type": "string"}},
                        },
                    },
                    "404": json_body(ERROR, "No such page."),
                    "503": UNAVAILABLE,
                },
            }
        },
        _path("status"): {
            "get": {
                "operationId": "jobStatus",
                "summary": "A job's status, progress and outcome.",
                "parameters": [TICKET, KEY, IF_NONE_MATCH],
                "responses": {
                    "200": {
                        **json_body(JOB_STATUS, "The job as its submitter sees it."),
                        "headers": {"ETag": {"schema": {"type": "string"}}},
                    },
                    "304": {"description": "Unchanged since the ETag sent."},
                    "404": NOT_FOUND,
                    "503": UNAVAILABLE,
                },
            }
        },
        _path("events"): {
            "get": {
                "operationId": "jobEvents",
                "summary": "The job's status, progress and log lines as "
                "Server-Sent Events (status, log, end), under ASGI.",
                "parameters": [
                    TICKET,
                    KEY,
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "description": "The id of the last log event received: "
                        "lines from there on.",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The stream.",
                        "content": {
                            "text/event-stream": {"schema": {"type": "string"}}
                        },
                    },
                    "404": json_body(
                        ERROR, "No such job (as for the status), or not under ASGI."
                    ),
                    "405": json_body(ERROR, "Only GET."),
                    "503": UNAVAILABLE,
                },
            }
        },
        _path("cancel"): {
            "post": {
                "operationId": "cancelJob",
                "summary": "Cancel a queued job, or ask a running one to stop.",
                "description": "CSRF-protected when the session cookie is "
                "sent; refused (403) from a page of another site.",
                "parameters": [TICKET, KEY],
                "responses": {
                    "202": json_body(JOB_STATUS, "The status after the request."),
                    "403": FORBIDDEN,
                    "404": NOT_FOUND,
                    "503": UNAVAILABLE,
                },
            }
        },
        _path("result"): {
            "get": {
                "operationId": "jobResult",
                "summary": "The job's result file, as a download.",
                "parameters": [TICKET, KEY],
                "responses": {
                    "200": {
                        "description": "The file.",
                        "content": {"*/*": {"schema": {}}},
                    },
                    "404": {
                        "description": "No such job, or it has no result file.",
                        "content": {"*/*": {"schema": {}}},
                    },
                    "503": UNAVAILABLE,
                },
            }
        },
    }


def description(**extra_paths: Any) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "slowjobs",
            "version": __version__,
            "description": "Slow work handed to the web server's own executor: "
            "a ticket at once, then status, progress, cancel and result.",
        },
        "paths": {**job_paths(), **extra_paths},
    }


@csrf_exempt
@require_safe
def openapi_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(description())
