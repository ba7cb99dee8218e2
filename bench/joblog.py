"""What keeping each job's log costs: per captured line, and per job.

    .venv/bin/python bench/joblog.py [--jobs 300]

In one process per setting (capture on, the default bounds; capture off,
``SLOWJOBS_JOB_LOG_LINES=0``), on a fresh SQLite database, with no other
log handler (what the lines cost to print is the site's choice, not ours):

- a job logs 20,000 lines: the thread's CPU time per line, on and off;
- ``--jobs`` jobs each log 10 lines: jobs per second from enqueue to the
  last finish (the log is written with each job's outcome).

Prints a table and the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LINES = 20_000
LINES_PER_JOB = 10


def child(jobs: int) -> dict[str, Any]:
    import logging

    import django

    django.setup()
    # Only a handler that drops everything, beside the job log's if on
    # (with none at all, logging would print to stderr instead).
    logging.getLogger().handlers[:] = [logging.NullHandler()]
    logging.getLogger("slowjobs").handlers.clear()
    from bench.tasks import log_lines
    from slowjobs.models import Job
    from slowjobs.tasksapi import task_finished

    done = threading.Semaphore(0)

    def on_finished(**kwargs: object) -> None:
        done.release()

    task_finished.connect(on_finished)
    one = log_lines.enqueue(LINES)
    done.acquire()
    cpu = float(Job.objects.get(pk=one.id).result)
    began = time.perf_counter()
    for _ in range(jobs):
        log_lines.enqueue(LINES_PER_JOB)
    for _ in range(jobs):
        done.acquire()
    elapsed = time.perf_counter() - began
    from slowjobs.lifecycle.control import shutdown

    shutdown()
    return {"us_per_line": cpu / LINES * 1e6, "jobs_per_s": jobs / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
        print(json.dumps(child(args.jobs)))
        return
    from bench.run import env_for, prepared_databases

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        for setting, lines in (("capture on", "500"), ("capture off", "0")):
            for _, env in prepared_databases("sqlite", scratch):
                run_env = {
                    **env_for(env["DATABASE_URL"], scratch),
                    "SLOWJOBS_JOB_LOG_LINES": lines,
                }
                out = subprocess.run(
                    [sys.executable, __file__, "--child", "--jobs", str(args.jobs)],
                    env=run_env, cwd=ROOT, capture_output=True, text=True, check=True,
                )  # fmt: skip
                results[setting] = json.loads(out.stdout.strip().splitlines()[-1])
    on, off = results["capture on"], results["capture off"]
    per_line = on["us_per_line"] - off["us_per_line"]
    per_job_ms = (1 / on["jobs_per_s"] - 1 / off["jobs_per_s"]) * 1000
    print(
        f"{'':14}{'CPU us per logged line':>24}{f'jobs/s ({LINES_PER_JOB} lines)':>20}"
    )
    for name, figures in results.items():
        print(f"{name:14}{figures['us_per_line']:>24.2f}{figures['jobs_per_s']:>20.0f}")
    print(f"capture costs {per_line:.2f} us a line and {per_job_ms:.3f} ms a job")
    print(json.dumps({**results, "us_per_line": per_line, "ms_per_job": per_job_ms}))


if __name__ == "__main__":
    main()
