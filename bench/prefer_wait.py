"""``Prefer: wait`` figures, side by side in one run.

    .venv/bin/python bench/prefer_wait.py [--smoke] [--db postgres]

1. Time to result and round trips for a 200 ms job (the demo's report of
   10 rows of 20 ms): submit then poll the status every second (what the
   status page does), every 100 ms (an eager client), and submit with
   ``Prefer: wait=10`` (one round trip when the job is done in time).
2. A plain page's latency while 50 clients each submit a 3 s job with
   ``Prefer: wait=10`` (and poll once a second when told 202 at once),
   from 50 client addresses: with the default places to wait (half of
   each worker's threads), and with the cap lifted (every thread may
   wait).  Also the database connections open meanwhile (PostgreSQL).
3. What every job's end pays for waiters in other processes: the end
   record's one memcached write (on the notifier thread, after the commit).

The server is the demo's gunicorn as its docs wire it (``-c
project/gunicorn.conf.py``: 2 gthread workers of 4 threads, the hooks),
with memcached.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (
    PYTHON,
    ROOT,
    memcached_server,
    parse_wrk,
    prepared_databases,
    save_results,
    start_server,
    stop_server,
)
from tests.http_client import HttpClient

FINISHED = {"succeeded", "failed", "cancelled"}


END_RECORD_CODE = """
import json, sys, time, uuid, django
django.setup()
from slowjobs.engine import endings
from slowjobs.progress import get_store
assert get_store().shared
N = int(sys.argv[1])
tickets = [str(uuid.uuid4()) for _ in range(N)]
best = []
for _ in range(5):
    began = time.perf_counter()
    for ticket in tickets:
        endings.ended(ticket, "SUCCESSFUL")
    best.append((time.perf_counter() - began) / N * 1e6)
print(json.dumps({"us_per_end": round(min(best), 1), "ends": N}))
"""


def end_record_cost(env: dict[str, str], ends: int) -> dict[str, Any]:
    out = subprocess.run(
        [PYTHON, "-c", END_RECORD_CODE, str(ends)],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return dict(json.loads(out.strip().splitlines()[-1]))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_job(url: str, poll: float | None) -> tuple[float, int]:
    """Seconds from the submit to the result in hand, and round trips."""
    client = HttpClient(url)
    headers = client.api_headers()
    if poll is None:
        headers["Prefer"] = "wait=10"
    began = time.perf_counter()
    reply = client.post("/demo/report/", {"rows": 10, "row_ms": 20}, headers=headers)
    trips = 1
    if reply.status == 200:
        assert reply.json()["status"] == "succeeded", reply.body
        return time.perf_counter() - began, trips
    assert reply.status == 202, (reply.status, reply.body)
    status_url = reply.json()["status_url"]
    while True:
        time.sleep(poll or 1.0)
        body = client.get(status_url, headers=client.api_headers()).json()
        trips += 1
        if body["status"] in FINISHED:
            assert body["status"] == "succeeded", body
            return time.perf_counter() - began, trips


def time_to_result(url: str, jobs: int) -> dict[str, Any]:
    modes = {"poll every 1 s": 1.0, "poll every 100 ms": 0.1, "Prefer: wait=10": None}
    seen: dict[str, list[tuple[float, int]]] = {name: [] for name in modes}
    for _ in range(jobs):  # interleaved: the machine's noise falls on all
        for name, poll in modes.items():
            seen[name].append(one_job(url, poll))
    figures = {}
    for name, runs in seen.items():
        seconds = [run[0] * 1000 for run in runs]
        trips = [run[1] for run in runs]
        figures[name] = {
            "p50_ms": round(pct(seconds, 0.5), 1),
            "p99_ms": round(pct(seconds, 0.99), 1),
            "round_trips_mean": round(statistics.mean(trips), 2),
            "round_trips_max": max(trips),
        }
    return figures


def flood_client(url: str, source: str, stop_at: float, counts: dict[str, int]) -> None:
    client = HttpClient(url, source=source)
    while time.monotonic() < stop_at:
        headers = {**client.api_headers(), "Prefer": "wait=10"}
        try:
            reply = client.post(
                "/demo/report/", {"rows": 30, "row_ms": 100}, headers=headers
            )
        except OSError:
            counts["errors"] += 1
            continue
        if reply.status == 200:
            counts["200"] += 1
            continue
        if reply.status != 202:
            counts["other"] += 1
            time.sleep(1)
            continue
        counts["202 waited" if "Preference-Applied" in reply.headers else "202"] += 1
        status_url = reply.json()["status_url"]
        while time.monotonic() < stop_at:
            time.sleep(1)
            body = client.get(status_url, headers=client.api_headers()).json()
            if body["status"] in FINISHED:
                break


def plain_latency(url: str, seconds: float) -> dict[str, float]:
    """The plain page under wrk (2 connections), a process of its own."""
    out = subprocess.run(
        ["wrk", "-t1", "-c2", f"-d{max(1, round(seconds))}s", "--latency",
         url + "/bench/plain-get"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return parse_wrk(out)


def pg_connections(env: dict[str, str]) -> int | None:
    if not env["DATABASE_URL"].startswith("postgres"):
        return None
    name = env["DATABASE_URL"].rsplit("/", 1)[1]
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", os.environ.get("PGUSER", "postgres"),
         "-d", "postgres", "-tAc",
         f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'"],
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    return int(out) if out.isdigit() else None


def flood(
    env: dict[str, str], scratch: Path, seconds: float, clients: int
) -> dict[str, Any]:
    process, url = start_server(env, scratch / f"flood-{time.time()}.log", wired=True)
    try:
        plain_latency(url, 1)  # warm
        quiet = plain_latency(url, seconds)
        before = pg_connections(env)
        counts = {"200": 0, "202 waited": 0, "202": 0, "other": 0, "errors": 0}
        stop_at = time.monotonic() + seconds + 4
        threads = [
            threading.Thread(
                target=flood_client,
                args=(url, f"127.0.1.{index + 1}", stop_at, counts),
                daemon=True,
            )
            for index in range(clients)
        ]
        for thread in threads:
            thread.start()
        time.sleep(3)  # the waits are held
        connections: list[int] = []
        sampler_stop = threading.Event()

        def sample() -> None:
            while not sampler_stop.wait(0.5):
                found = pg_connections(env)
                if found is not None:
                    connections.append(found)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        loud = plain_latency(url, seconds)
        sampler_stop.set()
        for thread in threads:
            thread.join(30)
        return {
            "clients": clients,
            "plain_alone_p50_ms": quiet["p50_ms"],
            "plain_alone_p99_ms": quiet["p99_ms"],
            "plain_alone_rps": quiet["rps"],
            "plain_flooded_p50_ms": loud["p50_ms"],
            "plain_flooded_p99_ms": loud["p99_ms"],
            "plain_flooded_rps": loud["rps"],
            "submits": counts,
            "db_connections_before": before,
            "db_connections_max": max(connections) if connections else None,
        }
    finally:
        stop_server(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--db", default="postgres")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    for tool in ("wrk", "memcached"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed: apt-get install {tool}")
    jobs, seconds, clients = (5, 4, 20) if args.smoke else (60, 15, 50)
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
            env = {
                **plain_env,
                "SLOWJOBS_MEMCACHED": memcached,
                "SLOWJOBS_MAX_WAITERS_PER_VISITOR": "2",
            }
            figures: dict[str, Any] = {}
            print(f"== {name}: time to result", file=sys.stderr)
            process, url = start_server(env, scratch / "ttr.log", wired=True)
            try:
                figures["time_to_result"] = time_to_result(url, jobs)
            finally:
                stop_server(process)
            print(f"== {name}: plain pages under a flood of waits", file=sys.stderr)
            figures["flood_default_places"] = flood(env, scratch, seconds, clients)
            figures["flood_no_cap"] = flood(
                {**env, "SLOWJOBS_MAX_WAITERS": "100"}, scratch, seconds, clients
            )
            figures["end_record"] = end_record_cost(env, 200 if args.smoke else 5000)
            results["databases"][name] = figures
    print_table(results)
    save_results(results, "prefer-wait", args.out)


def print_table(results: dict[str, Any]) -> None:
    for name, figures in results["databases"].items():
        print(f"\n{name}: a 200 ms job, submit to result in hand")
        print(f"  {'client':<20} {'p50 ms':>8} {'p99 ms':>8} {'trips':>6} {'max':>4}")
        for mode, row in figures["time_to_result"].items():
            print(
                f"  {mode:<20} {row['p50_ms']:>8} {row['p99_ms']:>8} "
                f"{row['round_trips_mean']:>6} {row['round_trips_max']:>4}"
            )
        clients = figures["flood_default_places"]["clients"]
        print(f"{name}: plain page while {clients} clients hold waits (ms)")
        for label in ("flood_default_places", "flood_no_cap"):
            row = figures[label]
            print(
                f"  {label:<22} alone p50 {row['plain_alone_p50_ms']} "
                f"p99 {row['plain_alone_p99_ms']} | flooded p50 "
                f"{row['plain_flooded_p50_ms']} p99 {row['plain_flooded_p99_ms']} "
                f"| rps {row['plain_alone_rps']} -> {row['plain_flooded_rps']} "
                f"| submits {row['submits']} "
                f"| db connections {row['db_connections_before']} -> "
                f"{row['db_connections_max']} at most"
            )
        end = figures["end_record"]
        print(
            f"{name}: a job's end record in memcached: {end['us_per_end']} µs "
            f"(best of 5 rounds of {end['ends']})"
        )


if __name__ == "__main__":
    main()
