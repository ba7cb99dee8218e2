"""Test settings: the demo site's, with throw-away files and a file-backed SQLite."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from project.settings import *  # noqa: F403
from project.settings import DATABASES

# Shared with the job processes the tests start (they inherit the variable).
_scratch = Path(
    os.environ.setdefault(
        "SLOWJOBS_TEST_SCRATCH",
        str(Path(tempfile.gettempdir()) / f"slowjobs-tests-{os.getpid()}"),
    )
)
_scratch.mkdir(exist_ok=True)

if "SLOWJOBS_TEST_DATABASE_NAME" in os.environ:
    # A job process started by a test: the test database, set up already.
    DATABASES["default"]["NAME"] = os.environ["SLOWJOBS_TEST_DATABASE_NAME"]
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Job threads and gunicorn processes need a real file, not :memory:.
    DATABASES["default"]["TEST"] = {"NAME": str(_scratch / "test.sqlite3")}

MEDIA_ROOT = _scratch / "media"
STATIC_ROOT = _scratch / "static"
STATIC_ROOT.mkdir(exist_ok=True)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SLOWJOBS_SUBMIT_TIMEOUT = 0.2
# The test process adopts nothing: tests create orphans on purpose.
SLOWJOBS_ADOPT = False
