"""Overload: offer twice what the executor can run, and see nothing break.

A gunicorn of the demo site (2 workers, each with 2 pool threads and a queue
of 2) runs report jobs of 10 rows x 20 ms: 4 job threads / 0.2 s = about
20 jobs a second.  An open-loop client offers 40 requests a second, on
schedule whatever the answers, for ``--seconds``; then every accepted job is
followed to its end.  The figures: requests offered, accepted (202),
refused (503 with Retry-After), any other answer, jobs lost (accepted but
not finished), the peak memory of the server (total PSS, every process) and
how it moved between the first and last third of the run.

    python -m bench.overload --seconds 30

``tests/test_overload.py`` runs the same, shorter, and asserts on it.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.memory import PeakMemory
from bench.run import (
    PYTHON,
    ROOT,
    database_urls,
    env_for,
    free_port,
    recreate_postgres,
)

ROWS, ROW_MS = 10, 20
# What the server is started with (see server_settings).
PROCESSES, THREADS, QUEUE = 2, 2, 2
CAPACITY = PROCESSES * THREADS / (ROWS * ROW_MS / 1000)  # jobs a second
FINISHED = {"succeeded", "failed", "cancelled"}


def server_settings() -> dict[str, str]:
    """The environment of the demo server under test."""
    return {
        "SLOWJOBS_WORKERS": str(THREADS),
        "SLOWJOBS_QUEUE_SIZE": str(QUEUE),
        "SLOWJOBS_SUBMIT_TIMEOUT": "0.05",
        "SLOWJOBS_RETRY_AFTER": "2",
        "LOG_LEVEL": "WARNING",
    }


@dataclass
class Figures:
    seconds: float
    offered_per_second: float
    capacity_per_second: float
    offered: int = 0
    accepted: int = 0
    refused: int = 0
    refused_without_retry_after: int = 0
    other: dict[str, int] = field(default_factory=dict)
    finished: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    late_sends: int = 0
    drain_seconds: float = 0.0
    peak_mib: float = 0.0
    first_third_peak_mib: float = 0.0
    last_third_peak_mib: float = 0.0
    tickets: list[str] = field(default_factory=list, repr=False)


def _post(url: str) -> tuple[int, dict[str, str], bytes]:
    """One visitor's submission (no cookies yet: it gets a session with it)."""
    body = urllib.parse.urlencode({"rows": ROWS, "row_ms": ROW_MS}).encode()
    request = urllib.request.Request(
        url + "/demo/report/",
        data=body,
        headers={"Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            headers = dict(reply.headers)
            headers["Cookie"] = _session_cookie(
                headers, reply.headers.get_all("Set-Cookie") or []
            )
            return reply.status, headers, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
    except OSError as error:  # refused or reset: counted, never hidden
        return 0, {}, str(error).encode()


def _session_cookie(headers: dict[str, str], raw: list[str]) -> str:
    for cookie in raw:
        if cookie.startswith("sessionid="):
            return cookie.split(";", 1)[0]
    return ""


def _status(url: str, ticket: str, cookie: str) -> str | None:
    """The job's status as its submitter sees it (only they may)."""
    request = urllib.request.Request(
        f"{url}/jobs/{ticket}/status", headers={"Cookie": cookie}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return str(json.loads(r.read())["status"])
    except (OSError, ValueError, KeyError):
        return None


def offer(url: str, *, seconds: float, rate: float, server_pid: int) -> Figures:
    """Send ``rate`` requests a second for ``seconds``, then follow every job."""
    figures = Figures(seconds, rate, CAPACITY)
    answers: Counter[str] = Counter()
    lock = threading.Lock()
    total = int(seconds * rate)
    began = time.monotonic()
    thirds: list[float] = [0.0, 0.0, 0.0]
    cookies: dict[str, str] = {}

    def send(index: int) -> None:
        due = began + index / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        late = pause < -0.5
        status, headers, body = _post(url)
        with lock:
            figures.late_sends += late
            if status == 202:
                ticket = json.loads(body)["ticket"]
                figures.tickets.append(ticket)
                cookies[ticket] = headers["Cookie"]
            elif status == 503:
                figures.refused += 1
                if not headers.get("Retry-After", "").isdigit():
                    figures.refused_without_retry_after += 1
            else:
                answers[str(status)] += 1

    memory = PeakMemory({server_pid}, interval=0.2)
    # Enough senders that the offer keeps its schedule while answers wait.
    with memory, ThreadPoolExecutor(max_workers=96) as pool:
        futures = [pool.submit(send, i) for i in range(total)]
        while not all(f.done() for f in futures):
            third = min(int((time.monotonic() - began) / seconds * 3), 2)
            thirds[third] = max(thirds[third], memory.sample() / 1024)
            time.sleep(0.2)
        for future in futures:
            future.result()
        drain_began = time.monotonic()
        figures.finished = dict(_follow(url, cookies, timeout=60 + seconds))
        figures.drain_seconds = time.monotonic() - drain_began
    figures.offered = total
    figures.accepted = len(figures.tickets)
    figures.other = dict(answers)
    figures.lost = figures.accepted - sum(
        n for status, n in figures.finished.items() if status in FINISHED
    )
    figures.peak_mib = round(memory.peak_mib, 1)
    figures.first_third_peak_mib = round(thirds[0], 1)
    figures.last_third_peak_mib = round(thirds[2], 1)
    return figures


def _follow(url: str, cookies: dict[str, str], timeout: float) -> Counter[str]:
    """Poll every accepted job until it ends (or the time is up)."""
    states: dict[str, str | None] = dict.fromkeys(cookies)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        open_ = [t for t, s in states.items() if s not in FINISHED]
        if not open_:
            break
        for ticket in open_:
            states[ticket] = _status(url, ticket, cookies[ticket])
        time.sleep(0.2)
    return Counter(str(s) for s in states.values())


def report(figures: Figures) -> str:
    data = asdict(figures)
    data.pop("tickets")
    return json.dumps(data, indent=2)


@contextmanager
def demo_server(
    scratch: Path, database: str, settings: dict[str, str], workers: int = PROCESSES
) -> Iterator[tuple[str, int]]:
    """The demo site under gunicorn on a fresh database: (url, master pid).

    ``settings`` adds to (or replaces) the server's environment, the
    settings module included.
    """
    url = database_urls([database], scratch)[database]
    if database == "postgres":
        recreate_postgres(url)
    env = {
        **env_for(url, scratch),
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "STATIC_ROOT": str(scratch / "static"),
        **settings,
    }
    subprocess.run(
        [PYTHON, "-m", "django", "migrate", "-v0"], env=env, cwd=ROOT, check=True
    )
    port = free_port()
    log = scratch / "gunicorn.log"
    process = subprocess.Popen(
        [
            PYTHON, "-m", "gunicorn", "-c", "project/gunicorn.conf.py",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        ],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(
                        f"gunicorn did not start:\n{log.read_text()}"
                    ) from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=2 * CAPACITY)
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="a fresh SQLite file, or PostgreSQL's slowjobs_bench database made "
        "anew (BENCH_POSTGRES_URL)",
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        demo_server(Path(folder), args.database, server_settings()) as (url, pid),
    ):
        figures = offer(url, seconds=args.seconds, rate=args.rate, server_pid=pid)
    print(report(figures))


if __name__ == "__main__":
    main()
