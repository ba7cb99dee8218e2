"""Property-based tests (hypothesis): whatever comes in, a clear answer.

- ``enqueue`` with any arguments either stores exactly their JSON form or
  refuses with ``InvalidTaskArguments`` and writes nothing;
- every job endpoint, for any ticket string and any method, answers one of
  the contract's codes (never a 500: the test client re-raises errors);
- the demo's submit form, for any field values, answers 202 or 400.
"""

from __future__ import annotations

import json
import string
from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slowjobs.exceptions import InvalidTaskArguments
from slowjobs.jobs.jsonargs import storable_bigint, storable_text
from slowjobs.models import Job
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)

PROPERTY_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary(max_size=4)
    | st.sets(st.integers(), max_size=2)
    | st.complex_numbers(allow_nan=False)
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=3)
    ),
    max_leaves=12,
)
names = st.text(string.ascii_lowercase, min_size=1, max_size=6)


@PROPERTY_SETTINGS
@given(args=st.lists(values, max_size=3), kwargs=st.dictionaries(names, values))
def test_enqueue_stores_exactly_the_json_or_refuses_and_writes_nothing(args, kwargs):
    before = Job.objects.count()
    try:
        result = tasks.echo.enqueue(*args, **kwargs)
    except InvalidTaskArguments as exc:
        refusal = str(exc)
    else:
        refusal = ""
    if refusal:
        assert refusal.startswith(("args[", "kwargs[")), refusal
        assert Job.objects.count() == before
        return
    job = Job.objects.get(pk=result.id)
    # What the row holds is what JSON makes of the values (tuples as lists).
    assert same_json(job.args, json.loads(json.dumps(args)))
    assert same_json(job.kwargs, json.loads(json.dumps(kwargs)))


def same_json(stored: object, expected: object) -> bool:
    """Equal as JSON values.  PostgreSQL's jsonb keeps numbers as decimals,
    so a float such as 4.5e16 reads back as the integer of the same value."""
    if isinstance(expected, float) and isinstance(stored, int | float):
        return float(stored) == expected
    if isinstance(expected, list) and isinstance(stored, list):
        return len(stored) == len(expected) and all(
            same_json(a, b) for a, b in zip(stored, expected, strict=True)
        )
    if isinstance(expected, dict) and isinstance(stored, dict):
        return stored.keys() == expected.keys() and all(
            same_json(stored[k], expected[k]) for k in expected
        )
    return type(stored) is type(expected) and stored == expected


def test_nesting_beyond_the_limit_is_refused_with_its_path():
    deep: list[object] = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(InvalidTaskArguments, match="nests deeper"):
        tasks.echo.enqueue(deep)


@pytest.mark.parametrize("text", ["a\x00b", "lone \ud800"])
def test_text_no_database_stores_is_refused(text):
    with pytest.raises(InvalidTaskArguments, match="database refuses"):
        tasks.echo.enqueue(text)
    with pytest.raises(InvalidTaskArguments, match="key"):
        tasks.echo.enqueue({text: 1})


@given(st.text())
def test_storable_text_is_always_storable(text):
    stored = storable_text(text)
    assert "\x00" not in stored
    stored.encode("utf-8")
    if "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text):
        assert stored == text


@given(st.one_of(st.integers(), st.floats(allow_nan=False), st.text(), st.none()))
def test_storable_bigint_fits_the_column_or_is_none(value):
    number = storable_bigint(value)
    assert number is None or -(2**63) <= number < 2**63


ENDPOINTS = ["", "status", "cancel", "result"]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
ALLOWED = {200, 202, 302, 303, 400, 403, 404, 405}


@PROPERTY_SETTINGS
@given(
    ticket=st.text(min_size=1, max_size=40) | st.uuids().map(str),
    endpoint=st.sampled_from(ENDPOINTS),
    method=st.sampled_from(METHODS),
)
def test_job_endpoints_answer_any_ticket_and_method_clearly(ticket, endpoint, method):
    client = Client(raise_request_exception=True)
    path = f"/jobs/{quote(ticket, safe='')}/{endpoint}"
    response = client.generic(method, path)
    assert response.status_code in ALLOWED, (path, method, response.status_code)
    routed = "/" not in ticket and method in {"GET", "POST"}
    if response.status_code == 404 and endpoint in {"status", "cancel"} and routed:
        assert response.json() == {"error": "No such job."}


# Any text, and numbers around the limits; valid jobs stay short.
rows = st.text(max_size=8) | st.integers(-3, 300).map(str) | st.just("100001")
row_ms = st.text(max_size=4) | st.integers(-2, 2).map(str) | st.just("10001")


@PROPERTY_SETTINGS
@given(
    fields=st.fixed_dictionaries({}, optional={"rows": rows, "row_ms": row_ms}),
    wants_json=st.booleans(),
)
def test_the_report_form_answers_202_or_400_for_any_fields(fields, wants_json):
    client = Client(raise_request_exception=True)
    headers = {"Accept": "application/json"} if wants_json else {}
    response = client.post(
        "/demo/report/",
        {**fields, "row_ms": "0"} if "row_ms" not in fields else fields,
        headers=headers,
    )
    valid = _valid_report(fields)
    if valid:
        assert response.status_code == (202 if wants_json else 303)
    else:
        assert response.status_code == 400
        if wants_json:
            assert "errors" in response.json()


def _valid_report(fields: dict[str, str]) -> bool:
    try:
        rows = int(fields.get("rows", "").strip())
        row_ms = int(fields.get("row_ms", "0").strip())
        if not fields.get("rows", "").strip().lstrip("+-").isdigit():
            return False
    except ValueError:
        return False
    return 1 <= rows <= 100000 and 0 <= row_ms <= 10000
