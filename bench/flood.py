"""Fair share under a flood: one address sends 240 of the largest jobs while
ten visitors on other addresses each submit one 1-second report.

    .venv/bin/python bench/flood.py [--db sqlite|postgres] [--flood 240]

Runs the demo under gunicorn (two workers, the library's defaults) on a
fresh database, and measures in one run, side by side:

- idle: the ten visitors alone, all at once;
- flood: the same ten, submitting while the flood client (127.0.0.2, no
  cookies kept: a new session with every request) sends its jobs as fast
  as it can.

Prints how many of the flood were accepted and refused (by status and the
cap named), the visitors' accept rate and p50/p99 time from submit to
finish (the jobs' own enqueued_at and finished_at), and the server's
memory (RSS of master and workers) over the run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import save_results  # noqa: E402
from tests.http_client import HttpClient  # noqa: E402

LARGEST = {"rows": 100000, "row_ms": 10000}
ONE_SECOND = {"rows": 10, "row_ms": 100}
JSON = {"Accept": "application/json"}
VISITORS = [f"127.0.0.{n}" for n in range(3, 13)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(
    scratch: Path, database_url: str
) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(scratch / "media"),
        "SECRET_KEY": "bench-only-secret-key-bench-only-secret-key-0123456789",
        "PYTHONPATH": str(ROOT),
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "project/gunicorn.conf.py",
         "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        cwd=ROOT, env=env, start_new_session=True,
        stdout=(scratch / "gunicorn.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("gunicorn did not start")


def group_rss_mb(leader: int) -> float:
    """RSS of every process in the server's process group."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != leader:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ProcessLookupError, ValueError):
            continue
    return total / 1024


class MemorySampler(threading.Thread):
    def __init__(self, leader: int) -> None:
        super().__init__(daemon=True)
        self.leader = leader
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.samples.append(group_rss_mb(self.leader))


def visitors(url: str) -> dict[str, Any]:
    """Ten visitors at once, each one report; their accept rate and times."""
    answers: dict[str, Any] = {}

    def visit(source: str) -> None:
        client = HttpClient(url, source=source)
        reply = client.post("/demo/report/", ONE_SECOND, headers=JSON)
        if reply.status != 202:
            answers[source] = {"accepted": False, "status": reply.status}
            return
        body = client.wait_for_status(
            reply.json()["status_url"], {"succeeded", "failed", "cancelled"}, 120
        )
        took = (
            datetime.fromisoformat(body["finished_at"])
            - datetime.fromisoformat(body["enqueued_at"])
        ).total_seconds()
        answers[source] = {"accepted": True, "status": body["status"], "s": took}

    threads = [threading.Thread(target=visit, args=(s,)) for s in VISITORS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times = sorted(a["s"] for a in answers.values() if a["accepted"])
    return {
        "accepted": sum(a["accepted"] for a in answers.values()),
        "succeeded": sum(a.get("status") == "succeeded" for a in answers.values()),
        "p50_s": round(statistics.median(times), 3) if times else None,
        "p99_s": round(times[min(len(times) - 1, int(0.99 * len(times)))], 3)
        if times
        else None,
    }


def flood(url: str, count: int, answers: Counter[str]) -> None:
    client = HttpClient(url, source="127.0.0.2", keep_cookies=False)
    for _ in range(count):
        reply = client.post("/demo/report/", LARGEST, headers=JSON)
        label = str(reply.status)
        if reply.status == 429:
            label += f" ({reply.json().get('limit')})"
        answers[label] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--flood", type=int, default=240)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="slowjobs-flood-") as folder:
        scratch = Path(folder)
        if options.db == "postgres":
            database_url = os.environ.get(
                "TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/slowjobs_bench"
            )
            _recreate_postgres(database_url)
        else:
            database_url = f"sqlite:///{scratch / 'flood.sqlite3'}"
        server, url = start_server(scratch, database_url)
        memory = MemorySampler(server.pid)
        memory.start()
        try:
            idle = visitors(url)
            idle_memory = max(memory.samples or [group_rss_mb(server.pid)])
            answers: Counter[str] = Counter()
            started = time.monotonic()
            flooder = threading.Thread(target=flood, args=(url, options.flood, answers))
            flooder.start()
            time.sleep(1.0)  # the flood is under way
            busy = visitors(url)
            flooder.join()
            flood_seconds = time.monotonic() - started
        finally:
            memory.stop.set()
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": options.db,
        "flood_sent": options.flood,
        "flood_answers": dict(answers),
        "flood_seconds": round(flood_seconds, 1),
        "idle": idle,
        "under_flood": busy,
        "memory_mb": {
            "start": round(memory.samples[0], 1) if memory.samples else None,
            "after_idle_run": round(idle_memory, 1),
            "peak": round(max(memory.samples), 1) if memory.samples else None,
        },
    }
    print(json.dumps(results, indent=2))
    ratio = busy["p99_s"] / idle["p99_s"] if busy["p99_s"] and idle["p99_s"] else None
    print(
        f"\nflood: {options.flood} sent, answers {dict(answers)}"
        f"\nvisitors idle:  {idle['accepted']}/10 accepted, "
        f"p50 {idle['p50_s']} s, p99 {idle['p99_s']} s"
        f"\nvisitors flood: {busy['accepted']}/10 accepted, "
        f"p50 {busy['p50_s']} s, p99 {busy['p99_s']} s"
        + (f" ({ratio:.2f}x idle)" if ratio else "")
        + f"\nserver memory: {results['memory_mb']}"
    )
    save_results(results, "flood", ROOT / "bench" / "results")


def _recreate_postgres(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    main()
