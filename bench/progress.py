"""Live progress and cancellation figures, side by side in one run.

    .venv/bin/python bench/progress.py [--smoke]

1. The cost of reporting progress: one job hashes 100,000 CSV-like rows and
   reports progress on every row, another does the same work silently (the
   CPU time of the job's thread, the least of five runs each).
2. Status polls of a running job: from memcached, from the database (a
   server without memcached), and a plain GET view, with wrk.
3. Cancel latency: from POST /jobs/<ticket>/cancel to the status reading
   ``cancelled``, for a job running in another server process.

Needs memcached and wrk; PostgreSQL for --db postgres (the default is both).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (
    PYTHON,
    ROOT,
    memcached_server,
    prepared_databases,
    save_results,
    start_server,
    stop_server,
)
from tests.http_client import HttpClient

OVERHEAD_CODE = """
import json, django
django.setup()
from slowjobs.tasksapi import task_finished
from bench.tasks import rows_work
from slowjobs.lifecycle.control import reopen, shutdown
from slowjobs.models import Job
figures = {}
for parse in (False, True):
    times = {True: [], False: []}
    for _ in range(ROUNDS):
        for report in (False, True):
            result = rows_work.enqueue(ROWS, report, parse)
            shutdown(timeout=120)
            reopen()
            times[report].append(Job.objects.get(pk=result.id).result)
    # The fastest of each: noise on a shared machine only ever adds time.
    quiet, loud = min(times[False]), min(times[True])
    figures["parse_and_hash" if parse else "hash_only"] = {
        "rows": ROWS, "silent_s": quiet, "reporting_s": loud, "ratio": loud / quiet}
print(json.dumps(figures))
"""


def progress_overhead(env: dict[str, str], rounds: int) -> dict[str, Any]:
    code = OVERHEAD_CODE.replace("ROUNDS", str(rounds)).replace("ROWS", "100000")
    out = subprocess.run(
        [PYTHON, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    return dict(json.loads(out.strip().splitlines()[-1]))


def wrk_get(url: str, seconds: int, cookie: str, *headers: str) -> dict[str, float]:
    extra = [arg for header in headers for arg in ("-H", header)]
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency",
         "-H", f"Cookie: {cookie}", *extra, url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    from bench.run import parse_wrk

    return parse_wrk(out)


def start_long_report(client: HttpClient, row_ms: int = 10) -> str:
    reply = client.post(
        "/demo/report/",
        {"rows": 100000, "row_ms": row_ms},
        headers=client.api_headers(),
    )
    assert reply.status == 202, reply.body
    ticket = str(reply.json()["ticket"])
    while client.get(f"/jobs/{ticket}/status").json()["status"] != "running":
        time.sleep(0.02)
    return ticket


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    for tool in ("wrk", "memcached"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed: apt-get install {tool}")
    seconds, rounds, samples = (1, 1, 3) if args.smoke else (4, 5, 10)

    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "databases": {},
    }
    with (
        memcached_server() as memcached,
        tempfile.TemporaryDirectory(prefix="slowjobs-bench-") as tmp,
    ):
        scratch = Path(tmp)
        for name, plain_env in prepared_databases(args.db, scratch):
            cached_env = {**plain_env, "SLOWJOBS_MEMCACHED": memcached}
            print(f"== {name}: progress overhead", file=sys.stderr)
            figures: dict[str, Any] = {
                "progress": progress_overhead(cached_env, rounds)
            }
            print(f"== {name}: status polls and cancels", file=sys.stderr)
            cached, cached_url = start_server(cached_env, scratch / "a.log")
            peer, peer_url = start_server(cached_env, scratch / "b.log")
            uncached, uncached_url = start_server(plain_env, scratch / "c.log")
            try:
                client = HttpClient(cached_url)
                ticket = start_long_report(client)
                cookie = "; ".join(f"{c.name}={c.value}" for c in client.cookies)
                path = f"/jobs/{ticket}/status"
                figures["status_memcached"] = wrk_get(
                    cached_url + path, seconds, cookie
                )
                figures["status_database"] = wrk_get(
                    uncached_url + path, seconds, cookie
                )
                figures["plain_get"] = wrk_get(
                    cached_url + "/bench/plain-get", seconds, cookie
                )
                # A job whose progress holds still (a row every 10 s):
                # polled as is, and with the ETag of the last answer.
                still = start_long_report(client, row_ms=10_000)
                still_url = f"{cached_url}/jobs/{still}/status"
                etag = client.get(f"/jobs/{still}/status").headers["ETag"]
                figures["status_unchanged"] = wrk_get(still_url, seconds, cookie)
                figures["status_304"] = wrk_get(
                    still_url, seconds, cookie, f"If-None-Match: {etag}"
                )
                client.post(f"/jobs/{still}/cancel", {}, headers=client.api_headers())
                client.post(f"/jobs/{ticket}/cancel", {}, headers=client.api_headers())
                # Cancel through another server, sharing memcached.
                other = HttpClient(peer_url, cookies=client.cookies)
                figures["cancel"] = cancel_latency_across(client, other, samples)
            finally:
                for server in (cached, peer, uncached):
                    stop_server(server)
            results["databases"][name] = figures
    print_table(results)
    save_results(results, "progress", args.out)


def cancel_latency_across(
    submitter: HttpClient, canceller: HttpClient, samples: int
) -> dict[str, float]:
    latencies = []
    for _ in range(samples):
        ticket = start_long_report(submitter)
        time.sleep(0.3)
        sent = time.perf_counter()
        canceller.post(f"/jobs/{ticket}/cancel", {}, headers=canceller.api_headers())
        while canceller.get(f"/jobs/{ticket}/status").json()["status"] != "cancelled":
            time.sleep(0.005)
        latencies.append((time.perf_counter() - sent) * 1000)
    return {
        "samples": samples,
        "p50_ms": statistics.median(latencies),
        "max_ms": max(latencies),
    }


def print_table(results: dict[str, Any]) -> None:
    print(f"\nslowjobs progress and cancel benchmark, {results['date']}")
    for name, f in results["databases"].items():
        print(f"\n{name}")
        for work, p in f["progress"].items():
            print(
                f"  progress on each of {p['rows']} rows ({work}): "
                f"{p['reporting_s']:.3f} s against {p['silent_s']:.3f} s silent "
                f"= {p['ratio']:.3f}x"
            )
        print(f"  {'status poll':<22}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}")
        for label, key in (
            ("from memcached", "status_memcached"),
            ("from the database", "status_database"),
            ("unchanged, 200", "status_unchanged"),
            ("unchanged, 304", "status_304"),
            ("plain GET view", "plain_get"),
        ):
            row = f[key]
            print(
                f"  {label:<22}{row['rps']:>8.0f}{row['p50_ms']:>9.2f}"
                f"{row['p99_ms']:>9.2f}"
            )
        c = f["cancel"]
        print(
            f"  cancel -> cancelled, across processes: p50 {c['p50_ms']:.0f} ms, "
            f"max {c['max_ms']:.0f} ms ({c['samples']} jobs)"
        )


if __name__ == "__main__":
    main()
