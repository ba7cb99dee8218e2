from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _prometheus_installed() -> bool:
    from importlib.util import find_spec

    return find_spec("prometheus_client") is not None


class SlowjobsConfig(AppConfig):
    name = "slowjobs"
    verbose_name = _("Slow jobs")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import request_started

        from slowjobs import checks, conf
        from slowjobs.lifecycle import control as lifecycle

        # A wrong setting stops start-up with its name, not the first job.
        settings = conf.load()
        del checks  # registered on import
        request_started.connect(
            lifecycle.start_with_requests, dispatch_uid="slowjobs-lifecycle"
        )
        if settings.metrics and _prometheus_installed():
            from slowjobs.monitoring import metrics

            metrics.connect()
