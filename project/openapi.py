"""The demo's API description: the job endpoints plus the two submit forms."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from slowjobs import conf
from slowjobs.web.openapi import (
    ERROR,
    PREFER,
    WAITED,
    description,
    json_body,
    retry_later,
)

ACCEPTED = {
    **json_body(
        {
            "type": "object",
            "required": ["ticket", "status_url", "page_url"],
            "properties": {
                "ticket": {"type": "string", "format": "uuid"},
                "status_url": {"type": "string"},
                "page_url": {"type": "string"},
            },
        },
        "Accepted: the job is queued; poll status_url. status_url and "
        "page_url carry the job's key (?key=...), the credential of a client "
        "that keeps no cookies.",
    ),
    "headers": {
        "Location": {"required": True, "schema": {"type": "string"}},
        "Preference-Applied": {
            "required": False,
            "description": "wait=N when the server waited (Prefer: wait=N) "
            "and the job was not done by then.",
            "schema": {"type": "string"},
        },
    },
}
INVALID = {
    "description": "Invalid input: the errors per field (the form, for browsers).",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["errors"],
                "properties": {"errors": {"type": "object"}},
            }
        },
        "text/html": {"schema": {"type": "string"}},
        "text/plain": {"schema": {"type": "string"}},
    },
}
SEE_PAGE = {
    "description": "A browser form: see the job's page.",
    "headers": {"Location": {"required": True, "schema": {"type": "string"}}},
}
FORBIDDEN = {
    "description": "A browser POST from another site (Sec-Fetch-Site or "
    "Origin), or a session cookie without a CSRF token.",
    "content": {
        "application/json": {"schema": ERROR},
        "text/html": {"schema": {"type": "string"}},
        "text/plain": {"schema": {"type": "string"}},
    },
}
LENGTH_REQUIRED = json_body(
    ERROR, "The body was sent chunked: send it with a Content-Length."
)
FULL = retry_later("The executor is full (or the database is away): retry later.")
OVER_CAP = retry_later(
    "This submitter (user, session or client address) has as many unfinished "
    "jobs as one may: `limit` says which cap. Retry once one has finished."
)
OVER_CAP["content"]["application/json"]["schema"]["properties"]["limit"] = {
    "type": "string",
    "enum": ["user", "session", "address", "upload_quota"],
}


def _submit(
    operation: str, summary: str, media: str, schema: dict[str, Any]
) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation,
            "summary": summary,
            "description": "Send `Accept: application/json` for the JSON "
            "answers; a browser's form post gets 303 to the job's page.",
            "parameters": [PREFER],
            "requestBody": {"required": True, "content": {media: {"schema": schema}}},
            "responses": {
                "200": WAITED,
                "202": ACCEPTED,
                "303": SEE_PAGE,
                "400": INVALID,
                "403": FORBIDDEN,
                "411": LENGTH_REQUIRED,
                "429": OVER_CAP,
                "503": FULL,
            },
        }
    }


def demo_paths() -> dict[str, Any]:
    report = _submit(
        "submitReport",
        "A CSV report of `rows` rows, `row_ms` milliseconds each.",
        "application/x-www-form-urlencoded",
        {
            "type": "object",
            "required": ["rows", "row_ms"],
            "properties": {
                "rows": {"type": "integer", "minimum": 1, "maximum": 100000},
                "row_ms": {"type": "integer", "minimum": 0, "maximum": 10000},
            },
        },
    )
    checksum = _submit(
        "submitChecksum",
        "SHA-256, byte and line counts of an uploaded file.",
        "multipart/form-data",
        {
            "type": "object",
            "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}},
        },
    )
    limit = conf.get().max_upload_mb
    checksum["post"]["responses"]["413"] = json_body(
        ERROR,
        f"The upload is larger than SLOWJOBS_MAX_UPLOAD_MB ({limit} MB), or "
        "would take the submitter's kept uploads past SLOWJOBS_UPLOAD_QUOTA_MB "
        '("limit": "upload_quota").',
    )
    checksum["post"]["responses"]["507"] = json_body(
        ERROR,
        "No room on the server's disk for the upload, or the uploads of all "
        "would pass SLOWJOBS_UPLOAD_TOTAL_MB; nothing was kept.",
    )
    return {"/demo/report/": report, "/demo/checksum/": checksum}


@csrf_exempt
@require_safe
def openapi_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(description(**demo_paths()))
