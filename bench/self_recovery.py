"""Self-recovery figures: servers broken mid-job, and how soon the jobs go on.

    .venv/bin/python bench/self_recovery.py [--db sqlite,postgres]

Runs the scenarios of ``tests/test_self_recovery.py`` (real gunicorn, two
workers, ten 3-second report jobs, memcached on and off, no resume_jobs)
on each database, one after the other in one run, and prints for each: the
seconds from the break to the first and the last resumed job's restart (its
first progress follows one 10 ms row later), the last restart counted from
when a replacement process was up, and the seconds to the last finish
against the work that was left after each job's last checkpoint.  A
stopped (SIGSTOP) server cannot be proved dead: its jobs wait for its lease,
3 s in that scenario.

The figures come from the jobs' rows, so they do not depend on polling.
PostgreSQL is taken from ``TEST_POSTGRES_URL`` (default: the local server).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import save_results  # noqa: E402

SCENARIOS = "by_themselves or advisory_locks or stopped_server"
COLUMNS = (
    ("first_resume_s", "first resume"),
    ("last_resume_s", "last resume"),
    ("last_resume_after_replacement_s", "after replacement up"),
    ("last_finish_s", "last finish"),
    ("remaining_work_s", "work left"),
)


def run_scenarios(database: str, scratch: Path) -> list[tuple[str, dict[str, Any]]]:
    figures = scratch / f"{database}.json"
    env = {**os.environ, "SLOWJOBS_FIGURES_FILE": str(figures)}
    env.pop("DATABASE_URL", None)
    if database == "postgres":
        env["DATABASE_URL"] = os.environ.get(
            "TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/slowjobs"
        )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_self_recovery.py",
         "-k", SCENARIOS, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-2000:], file=sys.stderr)
        raise SystemExit(f"the {database} scenarios failed")
    return [(name, values) for name, values in json.loads(figures.read_text())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    date = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="slowjobs-bench-") as tmp:
        results = {
            database: run_scenarios(database, Path(tmp))
            for database in args.db.split(",")
        }
    print("\nseconds from the break (kill or SIGTERM) to:")
    heads = " | ".join(label for _, label in COLUMNS)
    print(f"| database | scenario | store | jobs | {heads} |")
    print("|" + " --- |" * (4 + len(COLUMNS)))
    for database, rows in results.items():
        for name, values in rows:
            scenario = name.removeprefix("self-recovery: ")
            cells = " | ".join(f"{values[key]:.2f}" for key, _ in COLUMNS)
            print(
                f"| {database} | {scenario} | {values['store']} | "
                f"{values['interrupted']} | {cells} |"
            )
    print(
        "\nTargets: the last resume within 1 s of a replacement process being "
        "up; the last finish within the work left plus 1 s."
    )
    save_results({"date": date, "databases": results}, "self_recovery", args.out)


if __name__ == "__main__":
    main()
