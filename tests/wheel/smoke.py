"""Checks, inside the clean environment, that the installed wheel works."""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smokesite")

import django

django.setup()

import smokeurls  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.contrib.staticfiles import finders  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

import slowjobs  # noqa: E402
from slowjobs.lifecycle.control import shutdown  # noqa: E402
from slowjobs.tasksapi import TaskResultStatus, default_task_backend  # noqa: E402


def main() -> None:
    where = os.path.dirname(slowjobs.__file__)
    assert "site-packages" in where, f"slowjobs came from {where}, not the wheel"
    assert os.path.exists(os.path.join(where, "py.typed"))
    for name in ("slowjobs/status.js", "slowjobs/slowjobs.css"):
        assert finders.find(name), f"static file {name} is missing"
    call_command("check", fail_level="WARNING")
    call_command("makemigrations", "slowjobs", check=True, dry_run=True, verbosity=0)

    result = smokeurls.double.enqueue(21)
    deadline = time.monotonic() + 20
    while result.status != TaskResultStatus.SUCCESSFUL:
        assert time.monotonic() < deadline, f"the job stayed {result.status}"
        time.sleep(0.05)
        result = default_task_backend.get_result(result.id)
    assert result.return_value == 42

    staff = User.objects.create_superuser("smoke", password="smoke-password-1")
    client = Client()
    client.force_login(staff)
    page = client.get(f"/jobs/{result.id}/")
    assert page.status_code == 200, page.status_code
    assert b"slowjobs/status.js" in page.content, "the page template"
    status = client.get(f"/jobs/{result.id}/status").json()
    assert status["status"] == "succeeded", status
    assert status["result"] == 42, status
    assert client.get("/admin/slowjobs/job/").status_code == 200
    assert client.get("/jobs/openapi.json").json()["openapi"].startswith("3.")
    call_command("resume_jobs", "--dry-run", verbosity=0)
    call_command("purge_jobs", "--dry-run", verbosity=0)
    assert shutdown(timeout=10).drained
    print(f"the wheel works: slowjobs {slowjobs.__version__} from {where}")


if __name__ == "__main__":
    main()
    sys.exit(0)
