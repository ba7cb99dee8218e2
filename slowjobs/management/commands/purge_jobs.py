"""Remove finished jobs, and their files, older than the retention period."""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from slowjobs import conf
from slowjobs.management.arguments import whole_number
from slowjobs.models import Job
from slowjobs.web.uploads import remove_stored

BATCH = 500


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
        keep = conf.get().retention_days if days is None else days
        cutoff = timezone.now() - timedelta(days=keep)
        old = Job.objects.finished().filter(finished_at__lt=cutoff)
        if dry_run:
            self.stdout.write(f"{old.count()} job(s) would be deleted.")
            return
        deleted = files = 0
        while True:
            batch = list(old.values_list("pk", "input_file", "result_file")[:BATCH])
            if not batch:
                break
            for _, *names in batch:
                for name in filter(None, names):
                    remove_stored(name)
                    files += 1
            deleted += Job.objects.filter(pk__in=[pk for pk, *_ in batch]).delete()[0]
        self.stdout.write(f"Deleted {deleted} job(s) and {files} file(s).")
