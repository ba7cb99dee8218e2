"""Test settings: the demo site's, with throw-away files and a file-backed SQLite."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from project.settings import *  # noqa: F403
from project.settings import DATABASES

_scratch = Path(tempfile.gettempdir()) / f"slowjobs-tests-{os.getpid()}"
_scratch.mkdir(exist_ok=True)

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Job threads and gunicorn processes need a real file, not :memory:.
    DATABASES["default"]["TEST"] = {"NAME": str(_scratch / "test.sqlite3")}

MEDIA_ROOT = _scratch / "media"
STATIC_ROOT = _scratch / "static"
STATIC_ROOT.mkdir(exist_ok=True)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SLOWJOBS_SUBMIT_TIMEOUT = 0.2
# The test process adopts nothing: tests create orphans on purpose.
SLOWJOBS_ADOPT_ON_START = False
