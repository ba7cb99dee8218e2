"""Submit-path and executor benchmarks, side by side in one run.

    .venv/bin/python bench/run.py            # full: 3 rounds of 5 s per view
    .venv/bin/python bench/run.py --smoke    # a few seconds, for CI

For SQLite and PostgreSQL it serves ``bench.urls`` with gunicorn (2 workers x
4 threads) and drives four views with wrk (16 connections): a plain view
that parses a small form, the same plus one durable INSERT, the design's
floor (that INSERT plus a hand-off of a no-op to a thread pool in the same
process: what any design that writes every job and runs it in the server
pays), and the same form enqueueing a no-op job.
Then, in one process, it measures no-op jobs per second and the
enqueue -> start latency.  Figures are medians of the rounds; the ratios are
what to compare, as the machine is shared.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
VIEWS = ("plain", "insert", "floor", "enqueue")
LUA = """
wrk.method = "POST"
wrk.body = "name=bench&number=42"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_urls(selected: list[str], scratch: Path) -> dict[str, str]:
    urls = {}
    if "sqlite" in selected:
        urls["sqlite"] = f"sqlite:///{scratch / 'bench.sqlite3'}"
    if "postgres" in selected:
        base = os.environ.get(
            "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"
        )
        urls["postgres"] = f"{base.rstrip('/')}/slowjobs_bench"
    return urls


def recreate_postgres(url: str) -> None:
    import psycopg

    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS slowjobs_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE slowjobs_bench")


def prepared_databases(
    selected: str, scratch: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """For each database asked for: a fresh, migrated one, as a child's env."""
    for name, url in database_urls(selected.split(","), scratch).items():
        if name == "postgres":
            recreate_postgres(url)
        env = env_for(url, scratch)
        subprocess.run(
            [PYTHON, "-m", "django", "migrate", "-v0"], env=env, cwd=ROOT, check=True
        )
        yield name, env


def env_for(url: str, scratch: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": url,
        "MEDIA_ROOT": str(scratch / "media"),
        "SECRET_KEY": "bench-secret-key-bench-secret-key-bench-secret-key",
        "PYTHONPATH": str(ROOT),
    }


def start_server(
    env: dict[str, str], log: Path, *, wired: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn, 2 gthread workers x 4 threads, on a free port.

    ``wired`` serves it as the deployment docs do (``project/gunicorn.conf.py``
    and its slowjobs hooks) rather than with bare command-line options.
    """
    port = free_port()
    if wired:
        command = [PYTHON, "-m", "gunicorn", "-c", "project/gunicorn.conf.py"]
        env = {**env, "PORT": str(port), "WEB_WORKERS": "2", "WEB_THREADS": "4"}
    else:
        command = [
            PYTHON, "-m", "gunicorn", "project.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", "2",
            "--worker-class", "gthread", "--threads", "4",
        ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    # Ready once a worker answers (any status), not once the port is bound:
    # the first figure must not include a worker's boot.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/")
            connection.getresponse().read()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
        finally:
            connection.close()
    process.kill()
    raise RuntimeError(f"gunicorn did not start:\n{log.read_text()}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def memcached_server() -> Iterator[str]:
    """A memcached of the run's own on a free port; yields its location."""
    from tests.services import Memcached

    server = Memcached(shutil.which("memcached") or "memcached")
    server.start()
    try:
        yield server.location
    finally:
        server.stop()


def wrk(url: str, seconds: float, script: Path) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{max(1, round(seconds))}s", "--latency",
         "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return parse_wrk(out)


def parse_wrk(out: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(label: str) -> float:
        match = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {
        "rps": rps,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def wait_for_drain(env: dict[str, str], timeout: float = 120) -> None:
    """Let the jobs a round enqueued finish before the next round starts."""
    code = (
        "import django,time,sys;django.setup();"
        "from slowjobs.models import Job;"
        "busy=lambda: Job.objects.unfinished().exists();"
        f"end=time.monotonic()+{timeout}\n"
        "while busy() and time.monotonic()<end: time.sleep(0.2)\n"
        "sys.exit(1 if busy() else 0)"
    )
    subprocess.run([PYTHON, "-c", code], env=env, cwd=ROOT, check=True)


def http_figures(
    env: dict[str, str], rounds: int, seconds: float, scratch: Path
) -> dict[str, Any]:
    script = scratch / "post.lua"
    script.write_text(LUA)
    server, base = start_server(env, scratch / "gunicorn.log")
    runs: dict[str, list[dict[str, float]]] = {view: [] for view in VIEWS}
    try:
        wrk(f"{base}/bench/plain", 1, script)  # warm up both workers
        for _ in range(rounds):
            for view in VIEWS:
                runs[view].append(wrk(f"{base}/bench/{view}", seconds, script))
                if view == "enqueue":
                    wait_for_drain(env)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    figures: dict[str, Any] = {}
    for view, samples in runs.items():
        figures[view] = {
            key: statistics.median(s[key] for s in samples)
            for key in ("rps", "p50_ms", "p99_ms", "errors")
        }
    return figures


def inprocess_figures(env: dict[str, str], jobs: int, samples: int) -> dict[str, Any]:
    out = subprocess.run(
        [PYTHON, str(ROOT / "bench" / "inprocess.py"), str(jobs), str(samples)],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds in all")
    parser.add_argument("--seconds", type=float, default=5, help="per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.rounds = 1, 1
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    jobs, samples = (300, 50) if args.smoke else (5000, 500)

    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"
        ),
        "python": platform.python_version(),
        "settings": {"seconds": args.seconds, "rounds": args.rounds, "jobs": jobs},
        "databases": {},
    }
    with tempfile.TemporaryDirectory(prefix="slowjobs-bench-") as tmp:
        scratch = Path(tmp)
        for name, env in prepared_databases(args.db, scratch):
            print(f"== {name}: HTTP submit", file=sys.stderr)
            http = http_figures(env, args.rounds, args.seconds, scratch)
            print(f"== {name}: in-process executor", file=sys.stderr)
            inproc = inprocess_figures(env, jobs, samples)
            results["databases"][name] = {"http": http, "inprocess": inproc}
    print_table(results)
    save_results(results, "submit", args.out)


def save_results(results: dict[str, Any], kind: str, folder: Path) -> None:
    """Write the raw figures as JSON beside the earlier runs'."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}-{results['date'].replace(':', '')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\nraw figures: {path}")


def print_table(results: dict[str, Any]) -> None:
    print(f"\nslowjobs submit benchmark, {results['date']}, {results['machine']}")
    print(f"Python {results['python']}; {results['settings']}")
    for name, figures in results["databases"].items():
        http, inproc = figures["http"], figures["inprocess"]
        plain, insert = http["plain"]["rps"], http["insert"]["rps"]
        print(f"\n{name}")
        floor_rps = http["floor"]["rps"]
        heads = ("req/s", "p50 ms", "p99 ms", "x plain", "x insert", "x floor")
        print(f"  {'view':<10}" + "".join(f"{head:>9}" for head in heads))
        for view in VIEWS:
            row = http[view]
            print(
                f"  {view:<10}{row['rps']:>9.0f}"
                f"{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
                f"{row['rps'] / plain:>9.2f}{row['rps'] / insert:>9.2f}"
                f"{row['rps'] / floor_rps:>9.2f}"
                + (f"  ({row['errors']:.0f} non-2xx)" if row["errors"] else "")
            )
        drain, latency = inproc["drain"], inproc["latency"]
        floor = inproc["floor_latency"]
        print(
            f"  no-op jobs through one process: {drain['jobs_per_s']:.0f} jobs/s "
            f"from one enqueuing thread, "
            f"{inproc['drain_8_threads']['jobs_per_s']:.0f} jobs/s from 8 "
            f"({drain['jobs']} jobs each; "
            f"{drain.get('commits_per_job', float('nan')):.2f} commits a job)"
        )
        if "floor_drain" in inproc:
            floor_rate = inproc["floor_drain"]["jobs_per_s"]
            print(
                f"  1-write floor (INSERT + hand-off, one thread): "
                f"{floor_rate:.0f} jobs/s; the drain is "
                f"{drain['jobs_per_s'] / floor_rate:.2f}x of it"
            )
        if "row_cost" in inproc:
            cost = inproc["row_cost"]
            print(
                f"  CPU a row costs, written and committed one at a time: job row "
                f"{cost['job_row_us']:.0f} us, the floor's ORM create() "
                f"{cost['orm_create_us']:.0f} us"
            )
        print(
            f"  enqueue -> start: p50 {latency['p50_ms']:.2f} ms, "
            f"p99 {latency['p99_ms']:.2f} ms ({latency['samples']} one at a time); "
            f"floor (INSERT, commit, thread hand-off): p50 {floor['p50_ms']:.2f} ms, "
            f"p99 {floor['p99_ms']:.2f} ms"
        )


if __name__ == "__main__":
    main()
