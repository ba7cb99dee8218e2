"""Remove finished jobs, and their files, older than the retention period.

The ``slowjobs.purge_jobs`` schedule runs the same daily by itself
(``SLOWJOBS_PURGE_SCHEDULE``); this command is for doing it by hand.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from slowjobs.jobs.purge import old_jobs, purge
from slowjobs.management.arguments import whole_number


class Command(BaseCommand):
    help = (
        "Delete finished jobs (succeeded, failed or cancelled) that ended more "
        "than SLOWJOBS_RETENTION_DAYS ago, with their input and result files."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--days",
            type=whole_number(0),
            default=None,
            help="Keep jobs finished within this many days (default: the setting).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count them; delete nothing."
        )

    def handle(self, *, days: int | None, dry_run: bool, **options: Any) -> None:
        if dry_run:
            self.stdout.write(f"{old_jobs(days).count()} job(s) would be deleted.")
            return
        purged = purge(days)
        self.stdout.write(f"Deleted {purged.jobs} job(s) and {purged.files} file(s).")
