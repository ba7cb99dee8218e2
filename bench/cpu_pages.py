"""Pages while jobs burn CPU: thread mode against process mode, one run.

    python -m bench.cpu_pages                # 10 s a scenario
    python -m bench.cpu_pages --seconds 3    # a quick look

One gunicorn worker process (gthread, 4 request threads, 2 job threads)
serves the demo site.  For each mode (``SLOWJOBS_RUNS_IN`` thread; thread
with ``SLOWJOBS_THREAD_NICENESS`` 10; process, with its default niceness
of 10) and 0, 1 and 2 CPU-bound jobs
(``project.tasks.crunch``: SHA-256 in a loop), a steady open-loop client
asks for a plain page (``GET /bench/plain-get``) ``--rate`` times a second
and records each latency from the moment the request was due (so a stalled
server cannot hide its queue).  Figures: page p50/p99 per scenario and the
ratio of p99 to the idle p99 of the same mode; the jobs' own throughput
(hashes a second, all jobs together); and the start-up cost of a job, from
its enqueue to the first line of the task's code, in each mode: for the
first job (in process mode its process starts) and for later ones.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.overload import demo_server
from bench.run import PYTHON, ROOT, database_urls, env_for

# Each mode's settings: thread mode as it comes, thread mode with its job
# threads at niceness 10, process mode (niceness 10 by default).
MODES = {
    "thread": {"SLOWJOBS_RUNS_IN": "thread"},
    "thread+nice": {"SLOWJOBS_RUNS_IN": "thread", "SLOWJOBS_THREAD_NICENESS": "10"},
    "process": {"SLOWJOBS_RUNS_IN": "process"},
}
JOB_COUNTS = (0, 1, 2)


@contextmanager
def server(scratch: Path, mode: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The bench site (its crunch view) on one gunicorn worker, in ``mode``."""
    folder = scratch / mode.replace("+", "-")
    folder.mkdir()
    settings = {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        **MODES[mode],
        "SLOWJOBS_WORKERS": "2",
        "SLOWJOBS_PROCESSES": "2",
        "WEB_THREADS": "4",
    }
    with demo_server(folder, "sqlite", settings, workers=1) as (url, _):
        env = {
            **env_for(database_urls(["sqlite"], folder)["sqlite"], folder),
            **settings,
        }
        yield url.removeprefix("http://"), env


def get(port: int | str, path: str) -> int:
    connection = http.client.HTTPConnection(f"127.0.0.1:{port}", timeout=30)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def enqueue(address: str, seconds: float) -> str:
    connection = http.client.HTTPConnection(address, timeout=30)
    body = urllib.parse.urlencode({"seconds": seconds})
    connection.request(
        "POST",
        "/bench/crunch",
        body,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
    )
    reply = connection.getresponse()
    data = reply.read()
    connection.close()
    if reply.status != 202:
        raise RuntimeError(f"enqueue answered {reply.status}: {data[:200]!r}")
    return str(json.loads(data)["ticket"])


def page_latencies(address: str, seconds: float, rate: float) -> list[float]:
    """Open loop: request i is due at start + i/rate, whatever came before."""
    total = int(seconds * rate)
    latencies: list[float] = []
    lock = threading.Lock()
    local = threading.local()
    began = time.monotonic() + 0.1

    def send(index: int) -> None:
        due = began + index / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection(
                address, timeout=30
            )
        try:
            connection.request("GET", "/bench/plain-get")
            reply = connection.getresponse()
            reply.read()
            ok = reply.status == 200
        except OSError:
            local.connection = None
            ok = False
        took = time.monotonic() - due
        with lock:
            latencies.append(took if ok else float("inf"))

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(send, range(total)))
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def job_rows(env: dict[str, str], tickets: list[str]) -> list[dict[str, Any]]:
    """The jobs' rows, read with the server's settings (a separate process)."""
    script = (
        "import json, sys, django; django.setup()\n"
        "from slowjobs.models import Job\n"
        "rows = Job.objects.filter(pk__in=sys.argv[1:])\n"
        "print(json.dumps([{'status': j.status, 'result': j.result,"
        " 'wait_ms': (j.result['called_at'] - j.enqueued_at.timestamp()) * 1000"
        " if isinstance(j.result, dict) else None} for j in rows]))\n"
    )
    out = subprocess.run(
        [PYTHON, "-c", script, *tickets],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return list(json.loads(out.stdout))


def wait_finished(env: dict[str, str], tickets: list[str], timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while True:
        rows = job_rows(env, tickets)
        done = [r for r in rows if r["status"] in ("succeeded", "failed", "cancelled")]
        if len(done) == len(tickets) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def run_mode(scratch: Path, mode: str, seconds: float, rate: float) -> dict[str, Any]:
    figures: dict[str, Any] = {"pages": {}, "jobs": {}, "startup": {}}
    with server(scratch, mode) as (address, env):
        # Start-up: the first job (a process is started for it in process
        # mode), then warm ones.
        first = enqueue(address, 0.0)
        wait_finished(env, [first], 60)
        warm = [enqueue(address, 0.0) for _ in range(10)]
        for ticket in warm:
            wait_finished(env, [ticket], 60)
        rows = job_rows(env, [first]) + job_rows(env, warm)
        figures["startup"] = {
            "first_job_wait_ms": round(rows[0]["wait_ms"], 1),
            "warm_job_wait_ms_median": round(
                statistics.median(r["wait_ms"] for r in rows[1:]), 2
            ),
        }
        get(address.split(":")[1], "/bench/plain-get")
        for jobs in JOB_COUNTS:
            tickets = [enqueue(address, seconds + 2) for _ in range(jobs)]
            time.sleep(1.0 if jobs else 0.2)  # the jobs are running
            latencies = page_latencies(address, seconds, rate)
            failed = sum(1 for value in latencies if value == float("inf"))
            figures["pages"][jobs] = {
                "requests": len(latencies),
                "failed": failed,
                "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
                "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
            }
            if tickets:
                rows = wait_finished(env, tickets, seconds + 60)
                results = [r["result"] for r in rows if r["status"] == "succeeded"]
                figures["jobs"][jobs] = {
                    "succeeded": len(results),
                    "hashes_per_second": round(
                        sum(r["hashes_per_second"] for r in results)
                    ),
                    "distinct_job_pids": len({r["pid"] for r in results}),
                }
    idle = figures["pages"][0]["p99_ms"]
    for jobs in JOB_COUNTS:
        figures["pages"][jobs]["p99_x_idle"] = round(
            figures["pages"][jobs]["p99_ms"] / idle, 2
        )
    return figures


def print_table(results: dict[str, Any]) -> None:
    print(f"\npages at {results['rate']:g}/s for {results['seconds']:g} s a scenario")
    print(f"{'mode':<13}{'jobs':>5}{'p50 ms':>10}{'p99 ms':>10}{'p99 x idle':>12}"
          f"{'failed':>8}{'job hashes/s':>15}")  # fmt: skip
    for mode in MODES:
        figures = results["modes"][mode]
        for jobs in JOB_COUNTS:
            page = figures["pages"][jobs]
            hashes = figures["jobs"].get(jobs, {}).get("hashes_per_second", "-")
            print(
                f"{mode:<13}{jobs:>5}{page['p50_ms']:>10}{page['p99_ms']:>10}"
                f"{page['p99_x_idle']:>12}{page['failed']:>8}{hashes:>15}"
            )
    print("\nstart-up, enqueue to the task's first line (ms)")
    for mode in MODES:
        startup = results["modes"][mode]["startup"]
        print(
            f"{mode:<13} first job {startup['first_job_wait_ms']:>8}"
            f"   warm jobs (median) {startup['warm_job_wait_ms_median']:>8}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "seconds": args.seconds,
        "rate": args.rate,
        "cores": os.cpu_count(),
        "modes": {},
    }
    with tempfile.TemporaryDirectory(prefix="slowjobs-cpu-") as tmp:
        for mode in MODES:
            results["modes"][mode] = run_mode(Path(tmp), mode, args.seconds, args.rate)
    print_table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "cpu_pages.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\nraw figures: {path}")


if __name__ == "__main__":
    main()
