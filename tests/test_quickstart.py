"""docs/quickstart.md, followed as written: the doc cannot drift.

Each step of the quickstart is a code block after a marker comment
(``<!-- quickstart: run | append FILE | write FILE | serve -->``). This test
starts from an empty folder, runs them in order (a fresh ``startproject``,
slowjobs installed from this checkout into a new virtual environment, the
settings, task, view and URLs as the doc shows them), serves the project
with gunicorn and, in Chromium, starts a job and watches its bar move until
the page says "Succeeded".

It runs once per Django series: in the SQLite leg on 6.1, in the only leg on
5.2 (the project it builds uses its own SQLite database either way). On 5.2
it does what the doc says to do there: ``django_tasks`` for ``django.tasks``
and the blocks marked "on Django 5.2".
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import django
import pytest
from django.db import connection

from tests.conftest import ROOT, kill_group, track
from tests.services import free_port, wait_for_port

DOC = ROOT / "docs" / "quickstart.md"
ON_52 = django.VERSION < (6, 0)
MARKER = re.compile(
    r"<!-- quickstart: (?P<action>run|append|write|serve)(?: (?P<target>\S+))?"
    r"(?P<only52> on Django 5\.2)? -->\n```\w*\n(?P<code>.*?)```",
    re.S,
)
# What a reader puts in place of the doc's placeholders.
PLACEHOLDERS = {"/path/to/slowjobs": str(ROOT)}


# What this suite sets for itself and a reader's shell would not have.
OURS = ("DJANGO_", "SLOWJOBS_", "PYTHON", "VIRTUAL_ENV", "DATABASE_URL",
        "MEDIA_ROOT", "STATIC_ROOT", "SECRET_KEY", "TEST_")  # fmt: skip


def readers_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(OURS)}


@dataclass
class Step:
    action: str
    target: str
    code: str


def steps() -> list[Step]:
    found = []
    for match in MARKER.finditer(DOC.read_text()):
        if match["only52"] and not ON_52:
            continue
        code = match["code"]
        for placeholder, value in PLACEHOLDERS.items():
            code = code.replace(placeholder, value)
        if ON_52:
            code = code.replace("django.tasks", "django_tasks")
        found.append(Step(match["action"], match["target"] or "", code))
    return found


def run_block(code: str, folder: Path) -> str:
    # "python" is the reader's Python: here, the one running this suite.
    script = re.sub(r"^python ", f"{shlex.quote(sys.executable)} ", code, flags=re.M)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=folder,
        env=readers_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def serve(code: str, folder: Path, port: int) -> subprocess.Popen[bytes]:
    command = [*shlex.split(code.strip()), "--bind", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        command,
        cwd=folder,
        env=readers_env(),
        stdout=(folder / "gunicorn.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    track(process)
    wait_for_port(port, timeout=30)
    return process


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if connection.vendor != "sqlite" and not ON_52:
        pytest.skip("the quickstart runs once per Django series (the SQLite leg)")
    return tmp_path


def test_the_quickstart_as_written_ends_at_a_live_status_page(project, browser):
    said = []
    port = free_port()
    server = None
    try:
        for step in steps():
            if step.action == "run":
                said.append(run_block(step.code, project))
            elif step.action == "append":
                with (project / step.target).open("a") as file:
                    file.write("\n" + step.code)
            elif step.action == "write":
                (project / step.target).write_text(step.code)
            else:
                server = serve(step.code, project, port)
        assert server is not None, "the quickstart serves nothing"
        # The project as the doc leaves it draws no warning at all.
        assert re.search(r"slowjobs\.[WE]\d{3}", "".join(said)) is None, said
        assert "System check identified no issues" in "".join(said), said
        watch_a_job(browser, f"http://127.0.0.1:{port}")
    finally:
        if server is not None:
            kill_group(server)
    log = (project / "gunicorn.log").read_text()
    assert "Traceback" not in log, log


def watch_a_job(browser, url: str) -> None:
    context = browser.new_context(base_url=url)
    context.set_default_timeout(60_000)
    try:
        page = context.new_page()
        page.goto("/report/")
        page.click("text=Build the report")
        page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
        assert page.inner_text("h1") == "Monthly report"
        seen = set()
        deadline = time.monotonic() + 60
        while page.inner_text("#status").strip() != "Succeeded":
            assert time.monotonic() < deadline, page.content()
            seen.add(page.eval_on_selector("#bar", "bar => bar.value"))
            time.sleep(0.2)
        assert len({value for value in seen if 0 < value < 100}) >= 2, seen
        assert page.eval_on_selector("#bar", "bar => bar.value") == 100
        assert page.inner_text("#message") == "row 25 of 25"
        assert '"rows": 25' in page.inner_text("#result")
        # The style and the script came from the static files.
        assert page.eval_on_selector(
            "main", "m => getComputedStyle(m).maxWidth"
        ) not in ("", "none")
    finally:
        context.close()
