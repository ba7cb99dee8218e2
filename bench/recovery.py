"""Recovery figures, side by side in one run.

    .venv/bin/python bench/recovery.py [--smoke]

1. Drain: a gunicorn worker running long report jobs gets SIGTERM; how long
   it takes to exit, against SLOWJOBS_DRAIN_TIMEOUT (the jobs are handed
   back when it runs out).
2. Claims: how fast orphaned jobs are claimed, 1,000 at once and in the
   batches resume_jobs takes (its --workers), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import PYTHON, ROOT, prepared_databases, save_results
from tests.http_client import HttpClient
from tests.services import free_port, wait_for_port

CLAIM_CODE = """
import json, time, django
django.setup()
from datetime import timedelta
from django.utils import timezone
from slowjobs.models import Job
from slowjobs.orphans import claim
def orphans(count):
    old = timezone.now() - timedelta(hours=1)
    Job.objects.bulk_create([
        Job(task_path="bench.tasks.noop", owner="gone:1:1", status="running",
            attempts=1, worker_ids=["gone:1:1"], enqueued_at=old, heartbeat_at=old)
        for _ in range(count)])
figures = {}
for label, batch in (("all_at_once", None), ("batches_of_20", 20)):
    Job.objects.all().delete()
    orphans(COUNT)
    started = time.perf_counter()
    claimed = 0
    while True:
        got = len(claim(f"claimer:{label}", limit=batch))
        claimed += got
        if not got:
            break
    elapsed = time.perf_counter() - started
    figures[label] = {"jobs": claimed, "seconds": elapsed, "per_s": claimed / elapsed}
print(json.dumps(figures))
"""


def claim_rate(env: dict[str, str], count: int) -> dict[str, Any]:
    out = subprocess.run(
        [PYTHON, "-c", CLAIM_CODE.replace("COUNT", str(count))],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return dict(json.loads(out.strip().splitlines()[-1]))


def drain_time(env: dict[str, str], timeout: float, scratch: Path) -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "-c", "project/gunicorn.conf.py",
         "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT, env={**env, "SLOWJOBS_DRAIN_TIMEOUT": str(timeout),
                       "SLOWJOBS_ADOPT": "false"},
        stdout=(scratch / "drain.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_for_port(port, 30)
    client = HttpClient(f"http://127.0.0.1:{port}")
    for _ in range(4):
        client.post(
            "/demo/report/",
            {"rows": 100000, "row_ms": 10},
            headers=client.api_headers(),
        )
    time.sleep(1)
    sent = time.perf_counter()
    server.send_signal(signal.SIGTERM)
    server.wait(120)
    took = time.perf_counter() - sent
    return {"timeout_s": timeout, "exit_s": took, "over_s": took - timeout}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    count = 200 if args.smoke else 1000
    timeouts = (1.0,) if args.smoke else (1.0, 2.0, 5.0)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "databases": {},
    }
    with tempfile.TemporaryDirectory(prefix="slowjobs-bench-") as tmp:
        scratch = Path(tmp)
        for name, env in prepared_databases(args.db, scratch):
            print(f"== {name}: claims and drains", file=sys.stderr)
            results["databases"][name] = {
                "claims": claim_rate(env, count),
                "drains": [drain_time(env, t, scratch) for t in timeouts],
            }
    print(f"\nslowjobs recovery benchmark, {results['date']}")
    for name, figures in results["databases"].items():
        print(f"\n{name}")
        for label, claim in figures["claims"].items():
            print(
                f"  claim {claim['jobs']} orphans {label.replace('_', ' ')}: "
                f"{claim['seconds']:.3f} s = {claim['per_s']:.0f} jobs/s"
            )
        for drain in figures["drains"]:
            print(
                f"  SIGTERM with 4 long jobs, drain timeout {drain['timeout_s']:g} s: "
                f"exited after {drain['exit_s']:.2f} s "
                f"(+{drain['over_s']:.2f} s to hand back and stop)"
            )
    save_results(results, "recovery", args.out)


if __name__ == "__main__":
    main()
