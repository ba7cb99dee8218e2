"""schemathesis against the running demo: every answer is one it describes.

The server publishes its OpenAPI description at ``/openapi.json``;
schemathesis reads it from the live gunicorn and sends generated requests,
valid and invalid, to every operation.  Each answer must be listed for its
operation (status, content type, headers, JSON schema), invalid input must
get a 4xx, and nothing may answer 500.  ``FUZZ_EXAMPLES`` sets the number of
requests per operation and phase (CI keeps it short).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.figures import record

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))


def test_every_answer_is_described_and_none_is_a_server_error(gunicorn, tmp_path):
    schemathesis = Path(sys.executable).parent / "schemathesis"
    run = subprocess.run(
        [
            str(schemathesis), "run", f"{gunicorn.url}/openapi.json",
            "--checks", "all",
            # A random UUID is a valid ticket that nobody owns: 404 is the
            # contract's answer to valid input there, not a rejection.  And a
            # full executor's 503 is documented: any 5xx the description does
            # not list (a 500) still fails status_code_conformance.
            "--exclude-checks", "positive_data_acceptance,not_a_server_error",
            "--max-examples", str(EXAMPLES),
            # An API client (a browser's form post is the browser tests' part).
            "--header", "Accept: application/json",
            "--seed", "20261201",
            "--request-timeout", "30",
            "--report", "junit", "--report-dir", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=900,
        cwd=tmp_path,  # its cache stays out of the checkout
    )  # fmt: skip
    output = run.stdout + run.stderr
    (Path(os.environ.get("FUZZ_LOG_DIR", tmp_path)) / "schemathesis.log").write_text(
        output
    )
    tested = re.search(r"(\d+) generated", output)
    record(
        f"schemathesis ({connection.vendor})",
        requests=tested.group(1) if tested else "?",
        examples_per_operation=EXAMPLES,
        passed=run.returncode == 0,
    )
    assert run.returncode == 0, output[-6000:]
    assert not re.search(r"\[5(?!03)\d\d\]", output), "a 5xx other than 503"
