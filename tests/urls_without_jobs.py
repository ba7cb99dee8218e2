"""A URLconf that forgot slowjobs.urls (for the system check's test)."""

from __future__ import annotations

urlpatterns: list[object] = []
