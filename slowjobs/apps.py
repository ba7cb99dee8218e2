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
        from slowjobs.lifecycle import sole

        del checks  # registered on import
        sole.declared_by_command()
        request_started.connect(
            lifecycle.start_with_requests, dispatch_uid="slowjobs-lifecycle"
        )
        # A wrong setting is slowjobs.E001 at `manage.py check` (and a line in
        # a server's log), never a traceback out of start-up.
        if conf.problem() is None and conf.get().metrics and _prometheus_installed():
            from slowjobs.monitoring import metrics

            metrics.connect()
