"""Admin actions that run as jobs: ``@job_action`` (see ``decorator``)."""

from __future__ import annotations

from slowjobs.actions.decorator import job_action

__all__ = ["job_action"]
