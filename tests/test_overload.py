"""Twice the executor's capacity, offered on schedule: back-pressure holds.

Every request is answered ``202`` (and its job finishes) or ``503`` with
``Retry-After``; nothing else, no job is lost, and the server's memory does
not grow with the backlog it refuses.  ``OVERLOAD_SECONDS`` sets the length
(10 here; ``python -m bench.overload`` runs 30 and prints the figures).
"""

from __future__ import annotations

import json
import os

import pytest
from django.db import connection

from bench.overload import CAPACITY, offer, server_settings
from slowjobs.models import Job, JobStatus
from tests.conftest import start_gunicorn, stop
from tests.figures import record

pytestmark = pytest.mark.django_db(transaction=True)

SECONDS = float(os.environ.get("OVERLOAD_SECONDS", "6"))


def test_twice_the_capacity_gets_202_or_503_and_loses_nothing(
    collected_static, tmp_path
):
    server = start_gunicorn(tmp_path, **server_settings())
    try:
        figures = offer(
            server.url,
            seconds=SECONDS,
            rate=2 * CAPACITY,
            server_pid=server.process.pid,
        )
    finally:
        stop(server.process)
    record(
        f"overload, {SECONDS:g} s at 2x capacity ({connection.vendor})",
        offered=figures.offered,
        accepted=figures.accepted,
        refused_503=figures.refused,
        other_answers=figures.other,
        lost=figures.lost,
        peak_mib=figures.peak_mib,
        first_third_peak_mib=figures.first_third_peak_mib,
        last_third_peak_mib=figures.last_third_peak_mib,
    )
    assert figures.other == {}, figures  # no 500s, no resets
    assert figures.accepted + figures.refused == figures.offered
    assert figures.refused_without_retry_after == 0
    # Back-pressure: about what the executor runs, far from all offered.
    assert 0.3 * CAPACITY * SECONDS <= figures.accepted <= 0.8 * figures.offered
    assert figures.lost == 0, figures
    assert figures.finished == {"succeeded": figures.accepted}
    # Only accepted jobs left a row, every one of them finished.
    assert Job.objects.count() == figures.accepted
    assert Job.objects.filter(status=JobStatus.SUCCEEDED).count() == figures.accepted
    # Memory bounded: refusals cost nothing that stays.
    assert figures.peak_mib < 400, json.dumps(figures.peak_mib)
    assert figures.last_third_peak_mib <= figures.first_third_peak_mib * 1.2 + 16
