"""The docs stay true to the code: every setting is documented and demoed."""

from __future__ import annotations

import re

import pytest

from slowjobs.conf import DEFAULTS
from tests.conftest import ROOT

SETTINGS = sorted(DEFAULTS)


@pytest.mark.parametrize("name", SETTINGS)
def test_every_setting_is_in_the_configuration_reference_and_readme(name):
    for document in ("docs/configuration.md", "README.md"):
        text = (ROOT / document).read_text()
        assert re.search(rf"^\| `{name}` \|", text, re.M), f"{name} not in {document}"


@pytest.mark.parametrize("name", SETTINGS)
def test_the_demo_reads_every_setting_from_its_environment(name):
    settings = (ROOT / "project" / "settings.py").read_text()
    assert re.search(rf'{name} = env\.\w+\(\s*"{name}"', settings), name


def test_the_docs_index_links_only_pages_that_exist():
    index = (ROOT / "docs" / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", index):
        assert (ROOT / "docs" / target).exists(), target


DOCUMENTED_PATHS = [
    "slowjobs.backend.SlowJobsBackend",
    "slowjobs.responses.submit",
    "slowjobs.context.progress",
    "slowjobs.context.check_cancelled",
    "slowjobs.urls.urlpatterns",
    "slowjobs.gunicorn.post_worker_init",
    "slowjobs.gunicorn.worker_exit",
    "slowjobs.uploads.keep_upload",
    "slowjobs.uploads.limit_upload_size",
    "slowjobs.jobfiles.resolve",
    "slowjobs.jobfiles.attach_result_file",
    "slowjobs.csrf.csrf_protect_sessions",
    "slowjobs.submitter.SubmitterMiddleware",
    "slowjobs.submitter.submitted_by",
    "slowjobs.cancel.cancel",
    "slowjobs.signals.job_retrying",
    "slowjobs.metrics.metrics_view",
    "slowjobs.logs.JobTicketFilter",
    "slowjobs.lifecycle.shutdown",
    "slowjobs.exceptions.OverLimit",
]


@pytest.mark.parametrize("path", DOCUMENTED_PATHS)
def test_the_import_paths_the_docs_name_keep_working(path):
    from django.utils.module_loading import import_string

    assert import_string(path) is not None
