"""slowjobs against what people use instead, side by side in one run.

    .venv/bin/python bench/compare.py            # the full run (~15 minutes)
    .venv/bin/python bench/compare.py --smoke    # seconds a system, for CI
    .venv/bin/python bench/compare.py --systems slowjobs-postgres,celery-prefork

Installs what it needs (``pip install -e .[bench]``; wrk, memcached and
redis-server from Debian's packages when run as root), then for each system
(see ``bench/systems.py``) starts its whole stack on a fresh database and
measures:

1. HTTP submit: wrk against a plain view parsing a small form and against
   the same form enqueueing a no-op job (slowjobs: also the form plus one
   durable INSERT, and that INSERT plus a hand-off of a no-op to a thread
   pool: the floor of a design that writes every job and runs it in the
   server);
2. drain: 10,000 no-op jobs, from the first enqueue to the last recorded done;
3. enqueue -> start latency of jobs submitted one at a time;
4. makespan of 1,000 jobs sleeping 100 ms on 8 workers, against the ideal;
5. the cost of one progress report, where the system has progress;
6. peak memory (PSS) of every process of the stack, broker or cache included.

Prints a table, writes the raw figures as JSON and draws a PNG chart.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from bench.memory import PeakMemory
from bench.run import LUA, free_port, recreate_postgres, wrk
from bench.systems import SYSTEMS, System

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
FULL = {
    "seconds": 5,
    "rounds": 3,
    "drain": 10_000,
    "latency": 200,
    "makespan": 1000,
    "progress": 20_000,
    "timeout": 600,
}
SMOKE = {
    "seconds": 1,
    "rounds": 1,
    "drain": 300,
    "latency": 10,
    "makespan": 40,
    "progress": 1000,
    "timeout": 120,
}


# -- what the run needs ----------------------------------------------------------


def ensure_tools() -> None:
    missing = [
        module
        for module in (
            "celery",
            "django_rq",
            "django_tasks_db",
            "django_celery_results",
            "matplotlib",
        )
        if importlib.util.find_spec(module) is None
    ]
    if missing:
        say(f"installing slowjobs[bench] (missing: {', '.join(missing)})")
        subprocess.run(
            [PYTHON, "-m", "pip", "install", "-q", "-e", f"{ROOT}[bench]"], check=True
        )
    packages = {"wrk": "wrk", "memcached": "memcached", "redis-server": "redis-server"}
    absent = [
        package for tool, package in packages.items() if shutil.which(tool) is None
    ]
    if absent and os.geteuid() == 0:
        say(f"installing {' '.join(absent)} from Debian's packages")
        subprocess.run(["apt-get", "install", "-y", "-q", *absent], check=True)
    for tool in packages:
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed: apt-get install {packages[tool]}")


def redis_pid() -> int:
    """The Redis server the peers use, started here if none answers."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return int(client.info("server")["process_id"])
    except redis.ConnectionError:
        say("starting redis-server")
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                str(client.connection_pool.connection_kwargs["port"]),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
        )
        time.sleep(0.5)
        return int(client.info("server")["process_id"])


def wait_for_port(port: int, name: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not start listening on port {port}")


def say(message: str) -> None:
    print(f"== {message}", file=sys.stderr, flush=True)


# -- one system's stack ------------------------------------------------------------


class Stack:
    """A system's processes: web server, workers, memcached; stopped on exit."""

    def __init__(
        self, system: System, scratch: Path, timeout: float, *, workers: bool = True
    ) -> None:
        self.system = system
        # Without its workers a peer's submit is only its push to the broker
        # or the table (slowjobs runs its jobs in the server: it has none).
        self.with_workers = workers
        self.timeout = timeout
        self.scratch = scratch
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env = self._env()
        self.base_url = ""
        self.memory = PeakMemory(set())

    def _env(self) -> dict[str, str]:
        if self.system.database == "sqlite":
            url = f"sqlite:///{self.scratch / (self.system.name + '.sqlite3')}"
        else:
            base = os.environ.get(
                "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"
            )
            url = f"{base.rstrip('/')}/slowjobs_bench"
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.peers.settings",
            "BENCH_SYSTEM": self.system.name,
            "BENCH_REDIS_URL": REDIS_URL,
            "DATABASE_URL": url,
            "MEDIA_ROOT": str(self.scratch / "media"),
            "SECRET_KEY": "bench-secret-key-bench-secret-key-bench-secret-key",
            "PYTHONPATH": str(ROOT),
        }

    def __enter__(self) -> Stack:
        try:
            return self._start_all()
        except BaseException:
            self.__exit__()
            raise

    def _start_all(self) -> Stack:
        if self.system.database == "postgres":
            recreate_postgres(self.env["DATABASE_URL"])
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        subprocess.run(
            [PYTHON, "-m", "django", "migrate", "-v0"],
            env=self.env,
            cwd=ROOT,
            check=True,
        )
        if self.system.memcached:
            port = free_port()
            self.env["SLOWJOBS_MEMCACHED"] = f"127.0.0.1:{port}"
            # As root, memcached refuses to start without a user to run as.
            command = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0"]
            command += ["-m", "64", "-u", "root"] if os.geteuid() == 0 else ["-m", "64"]
            memcached = self._start(command, "memcached")
            self.memory.add(memcached.pid)
            wait_for_port(port, "memcached")
        if self.system.redis:
            self.memory.add(redis_pid())
        self.base_url = self._start_server()
        if not self.with_workers:
            self.memory.__enter__()
            return self
        for number, command in enumerate(self.system.workers):
            self.memory.add(self._start(command, f"worker-{number}").pid)
        self.memory.__enter__()
        # Wait until the stack runs jobs (workers booted, queues bound).
        self.client("latency", 3)
        return self

    def _start(self, command: list[str], name: str) -> subprocess.Popen[bytes]:
        log = (self.scratch / f"{self.system.name}-{name}.log").open("wb")
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def _start_server(self) -> str:
        port = free_port()
        command = [
            PYTHON,
            "-m",
            "gunicorn",
            "project.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
        ]
        if self.system.is_slowjobs:
            # The demo's hooks: drain the executor when a worker stops.
            command[3:3] = ["-c", "project/gunicorn.conf.py"]
        server = self._start(command, "gunicorn")
        self.memory.add(server.pid)
        wait_for_port(port, "gunicorn")
        return f"http://127.0.0.1:{port}"

    def client(self, measure: str, count: int) -> dict[str, Any]:
        """Run one measure in a fresh client process (it waits for the jobs
        at most ``timeout`` seconds)."""
        completed = subprocess.run(
            [PYTHON, "-m", "bench.peers.client", measure, str(count), self.base_url],
            env={**self.env, "BENCH_TIMEOUT": str(self.timeout)},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=self.timeout + 60,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"{self.system.name} {measure} failed:\n{completed.stderr[-3000:]}"
            )
        return dict(json.loads(completed.stdout.strip().splitlines()[-1]))

    def __exit__(self, *exc: object) -> None:
        self.memory.__exit__()
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# -- the measures ------------------------------------------------------------------


def submit_figures(stack: Stack, settings: dict[str, Any]) -> dict[str, Any]:
    script = stack.scratch / "post.lua"
    script.write_text(LUA)
    views = ["plain", "enqueue"] + (
        ["insert", "floor"] if stack.system.is_slowjobs else []
    )
    runs: dict[str, list[dict[str, float]]] = {view: [] for view in views}
    wrk(f"{stack.base_url}/bench/plain", 1, script)  # warm up both workers
    for _ in range(settings["rounds"]):
        for view in views:
            # Every view is measured with the system idle: a slower system's
            # workers would otherwise still be busy with the last round's
            # jobs, slowing its plain view and flattering its ratio. (A peer
            # without workers runs nothing: its queue only grows.)
            if stack.with_workers:
                stack.client("settle", 0)
            runs[view].append(
                wrk(f"{stack.base_url}/bench/{view}", settings["seconds"], script)
            )
    failed = {view: s["errors"] for view, ss in runs.items() for s in ss if s["errors"]}
    if failed:
        # A rate of error answers is no figure at all.
        raise RuntimeError(f"non-2xx answers while measuring submit: {failed}")
    return {
        view: {
            key: statistics.median(run[key] for run in samples)
            for key in ("rps", "p50_ms", "p99_ms", "errors")
        }
        for view, samples in runs.items()
    }


def run_system(
    system: System, settings: dict[str, Any], scratch: Path
) -> dict[str, Any]:
    """One system's figures; a measure that fails is recorded as an error
    and the run goes on with the next system."""
    figures: dict[str, Any] = {"label": system.label, "database": system.database}
    try:
        if "submit" in system.measures:
            # Each peer at its fastest for this figure: its workers stopped,
            # so the web server has the machine to itself, as slowjobs' has
            # (its no-op jobs run in the server, and are counted).
            with Stack(
                system, scratch, settings["timeout"], workers=system.is_slowjobs
            ) as stack:
                say(f"{system.name}: HTTP submit")
                figures["submit"] = submit_figures(stack, settings)
        with Stack(system, scratch, settings["timeout"]) as stack:
            for measure in ("drain", "latency", "makespan", "progress"):
                if measure in system.measures:
                    say(f"{system.name}: {measure}")
                    figures[measure] = stack.client(measure, settings[measure])
            figures["peak_memory_mib"] = stack.memory.peak_mib
    except (RuntimeError, subprocess.SubprocessError) as exc:
        say(f"{system.name} FAILED: {exc}")
        figures["error"] = str(exc)[-2000:]
    return figures


# -- output ---------------------------------------------------------------------------


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in (
        "django",
        "slowjobs",
        "celery",
        "django-celery-results",
        "rq",
        "django-rq",
        "django-tasks-db",
        "gunicorn",
        "pymemcache",
        "psycopg",
    ):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    for tool, flag in (("redis-server", "--version"), ("memcached", "-V")):
        out = subprocess.run([tool, flag], capture_output=True, text=True).stdout
        found[tool] = (
            out.split()[2].removeprefix("v=")
            if tool == "redis-server"
            else out.split()[1]
        )
    out = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout
    # "psql (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)": the third word.
    words = out.split()
    found["postgresql"] = words[2] if len(words) > 2 else "?"
    found["python"] = platform.python_version()
    return found


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"


def print_table(results: dict[str, Any]) -> None:
    print(f"\nslowjobs against its peers, {results['date']}")
    print(f"{results['machine']}; {results['settings']}")
    heads = (
        "submit r/s",
        "x plain",
        "x insert",
        "x floor",
        "p50/p99 ms",
        "drain j/s",
        "start p50/p99 ms",
        "makespan",
        "progress us",
        "peak MiB",
    )
    print(f"\n{'system':<42}" + "".join(f"{h:>17}" for h in heads))
    for label, cells in rows(results):
        print(f"{label:<42}" + "".join(f"{cell:>17}" for cell in cells))


def markdown_table(results: dict[str, Any]) -> str:
    """The table as Markdown, for the README."""
    heads = [
        "system", "submit req/s", "x plain view", "x plain + INSERT",
        "x INSERT + hand-off",
        "submit p50 / p99 ms", "drain jobs/s", "enqueue->start p50 / p99 ms",
        "100 ms jobs, x ideal", "progress report, us", "peak PSS, MiB",
    ]  # fmt: skip
    lines = ["| " + " | ".join(heads) + " |", "|" + " --- |" * len(heads)]
    for label, cells in rows(results):
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines) + "\n"


def rows(results: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Each system's row; after slowjobs', the floors it is measured against,
    in the same server: the same form plus one durable INSERT, and that plus
    a hand-off of a no-op to a thread pool (the design's floor)."""
    found = []
    for figures in results["systems"].values():
        found.append((figures["label"], row(figures)))
        submit = figures.get("submit") or {}
        floors = (
            ("insert", "floor: form + one INSERT"),
            ("floor", "floor: form + INSERT + hand-off to a thread"),
        )
        for view, label in floors:
            if view not in submit:
                continue
            cells = ["-"] * COLUMNS
            figure = submit[view]
            cells[0] = f"{figure['rps']:.0f}"
            cells[1] = f"{figure['rps'] / submit['plain']['rps']:.2f}x"
            cells[2] = f"{figure['rps'] / submit['insert']['rps']:.2f}x"
            if "floor" in submit:
                cells[3] = f"{figure['rps'] / submit['floor']['rps']:.2f}x"
            cells[4] = f"{figure['p50_ms']:.1f}/{figure['p99_ms']:.1f}"
            found.append((f"{label} ({figures['database']})", cells))
    return found


COLUMNS = 10


def row(figures: dict[str, Any]) -> list[str]:
    submit = figures.get("submit")
    cells = ["-"] * COLUMNS
    if submit:
        enqueue, plain = submit["enqueue"], submit["plain"]
        cells[0] = f"{enqueue['rps']:.0f}"
        cells[1] = f"{enqueue['rps'] / plain['rps']:.2f}x"
        if "insert" in submit:
            cells[2] = f"{enqueue['rps'] / submit['insert']['rps']:.2f}x"
        if "floor" in submit:
            cells[3] = f"{enqueue['rps'] / submit['floor']['rps']:.2f}x"
        cells[4] = f"{enqueue['p50_ms']:.1f}/{enqueue['p99_ms']:.1f}"
    if "drain" in figures:
        cells[5] = f"{figures['drain']['jobs_per_s']:.0f}"
    if "latency" in figures:
        cells[6] = (
            f"{figures['latency']['p50_ms']:.2f}/{figures['latency']['p99_ms']:.2f}"
        )
    if "makespan" in figures:
        cells[7] = f"{figures['makespan']['ratio']:.3f}x"
    if "progress" in figures:
        cells[8] = f"{figures['progress']['us_per_report']:.1f}"
    if "peak_memory_mib" in figures:
        cells[9] = f"{figures['peak_memory_mib']:.0f}"
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds a system")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    ensure_tools()
    settings = dict(SMOKE if args.smoke else FULL)
    chosen = [SYSTEMS[name.strip()] for name in args.systems.split(",") if name.strip()]
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "settings": settings,
        "systems": {},
    }
    with tempfile.TemporaryDirectory(prefix="slowjobs-compare-") as tmp:
        for system in chosen:
            results["systems"][system.name] = run_system(system, settings, Path(tmp))
    print_table(results)
    failed = [name for name, found in results["systems"].items() if "error" in found]
    from bench.chart import draw
    from bench.run import save_results

    save_results(results, "compare-smoke" if args.smoke else "compare", args.out)
    kind = "compare-smoke" if args.smoke else "compare"
    (args.out / f"{kind}.md").write_text(markdown_table(results))
    chart = args.out / f"{kind}.png"
    draw(results, chart)
    print(f"chart: {chart}")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
