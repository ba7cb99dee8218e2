"""The demo's settings for a test server that also serves ``tests.adminapp``."""

from __future__ import annotations

from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.adminapp"]
