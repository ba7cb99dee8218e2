from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SlowjobsConfig(AppConfig):
    name = "slowjobs"
    verbose_name = _("Slow jobs")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, conf

        # A wrong setting stops start-up with its name, not the first job.
        conf.load()
        del checks  # registered on import
