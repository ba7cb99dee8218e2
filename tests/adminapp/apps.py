from __future__ import annotations

from django.apps import AppConfig


class AdminAppConfig(AppConfig):
    name = "tests.adminapp"
    label = "tests_adminapp"
