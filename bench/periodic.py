"""What keeping the periodic clock costs an idle process, and how late slots start.

    .venv/bin/python bench/periodic.py [--seconds 30] [--databases sqlite,postgres]

For each database, one process per configuration runs the real lifecycle
(heartbeat, scheduler thread) with no traffic, and every statement its
threads send is counted: without the clock (what a process that keeps no
clock pays anyway: heartbeats and looks for due deferred jobs), with only
the default schedule (purge_jobs, daily), and with a 1-second schedule.
The clock's cost is the difference, in queries per minute per process.
The 1-second run also gives the delay from each slot's time to its job's
start.  Prints a table and the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIGS = {
    "no clock": {"periodic": False, "schedules": {}, "purge": ""},
    "clock, daily purge only (the default)": {
        "periodic": True, "schedules": {}, "purge": "30 3 * * *",
    },
    "clock, purge + a 1 s schedule": {
        "periodic": True,
        "schedules": {"tick": {"task": "bench.tasks.noop", "every": 1}},
        "purge": "30 3 * * *",
    },
}  # fmt: skip


def child(config: dict[str, Any], seconds: float) -> dict[str, Any]:
    import django

    django.setup()
    from django.db.backends.signals import connection_created

    from slowjobs.lifecycle import control as lifecycle
    from slowjobs.models import Job

    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        with lock:
            counts[threading.current_thread().name] += 1
        return execute(sql, params, many, context)

    def wrap(sender: Any, connection: Any, **kwargs: Any) -> None:
        connection.execute_wrappers.append(count)

    connection_created.connect(wrap)
    lifecycle.start(adopt=False, periodic=config["periodic"])
    lifecycle.wait_until_known()
    time.sleep(1)  # the first look: the schedules' rows, due slots
    with lock:
        counts.clear()  # start-up (process row, first look) is not idling
    began = time.time()
    time.sleep(seconds)
    with lock:
        per_thread = dict(counts)
    lifecycle.shutdown()
    connection_created.disconnect(wrap)
    delays = [
        (started - slot).total_seconds() * 1000
        for slot, started in Job.objects.filter(
            schedule="tick", started_at__isnull=False
        ).values_list("scheduled_for", "started_at")
    ]
    minutes = seconds / 60
    return {
        "scheduler_per_min": per_thread.get("slowjobs-scheduler", 0) / minutes,
        "all_threads_per_min": sum(per_thread.values()) / minutes,
        "slots": len(delays),
        "delay_p50_ms": statistics.median(delays) if delays else None,
        "delay_p99_ms": sorted(delays)[int(0.99 * (len(delays) - 1))]
        if delays
        else None,
        "seconds": time.time() - began,
    }


def run_config(url: str, name: str, seconds: float, scratch: Path) -> dict[str, Any]:
    from bench.run import env_for

    config = CONFIGS[name]
    env = {
        **env_for(url, scratch),
        "SLOWJOBS_PERIODIC": json.dumps(config["schedules"]),
        "SLOWJOBS_PURGE_SCHEDULE": config["purge"],
    }
    out = subprocess.run(
        [sys.executable, __file__, "--child", name, "--seconds", str(seconds)],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def shown(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child is not None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
        print(json.dumps(child(CONFIGS[args.child], args.seconds)))
        return
    from bench.run import prepared_databases

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        for database, env in prepared_databases(args.databases, scratch):
            for name in CONFIGS:
                results[f"{database}: {name}"] = run_config(
                    env["DATABASE_URL"], name, args.seconds, scratch
                )
    print(
        f"{'process':50} {'scheduler q/min':>16} {'all q/min':>10} "
        f"{'slot to start p50 ms':>21} {'p99 ms':>7}"
    )
    for name, figures in results.items():
        p50, p99 = (shown(figures[key]) for key in ("delay_p50_ms", "delay_p99_ms"))
        print(
            f"{name:50} {figures['scheduler_per_min']:16.1f} "
            f"{figures['all_threads_per_min']:10.1f} {p50:>21} {p99:>7}"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
