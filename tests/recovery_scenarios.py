"""Servers that crash, stop or restart while running report jobs, and recover
by themselves: no resume_jobs, no person, the library's defaults.

Shared by ``tests/test_self_recovery.py`` (which asserts) and
``bench/self_recovery.py`` (which prints the figures).  Each scenario runs
real gunicorn servers on the test database, submits report jobs over HTTP,
breaks a server, and waits until every job has finished.  The figures come
from the rows: ``started_at`` of each job's resumed attempt (its first
progress follows one row later) and ``finished_at``, against the moment of
the break and the moment the replacement process recorded itself.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from slowjobs.jobs import files as jobfiles
from slowjobs.models import Job, JobStatus, WorkerProcess
from tests.conftest import (
    ROOT,
    Server,
    child_env,
    kill_group,
    start_gunicorn,
    stop,
    track,
)
from tests.http_client import HttpClient

JOBS = 10
ROWS = 300
ROW_MS = 10  # 3 s a job
# Long enough for every job to have saved a checkpoint.
RUN_BEFORE_BREAK = 1.4
# A bound far below the default 30 s lease: finishing within it proves that
# nothing waited for a lease to run out.
FINISH_WITHIN = 20.0


@dataclass
class Figures:
    """Seconds from the break to each resumed job's restart and to the last finish."""

    scenario: str
    broken_at: float
    replaced_at: float | None = None
    resumed: list[float] = field(default_factory=list)
    last_finish: float = 0.0
    remaining_work: float = 0.0
    interrupted: int = 0
    # A job can end before the break on a slow machine (the first one
    # submitted has run longest): it had nothing left to interrupt.
    finished_before_break: int = 0

    @property
    def unfinished_at_break(self) -> int:
        return JOBS - self.finished_before_break

    @property
    def first_resume(self) -> float:
        return min(self.resumed) if self.resumed else float("nan")

    @property
    def last_resume(self) -> float:
        return max(self.resumed) if self.resumed else float("nan")

    @property
    def after_replacement(self) -> float:
        """The last resume, counted from when a replacement process was up."""
        if self.replaced_at is None or not self.resumed:
            return float("nan")
        return self.broken_at + self.last_resume - self.replaced_at


# Room for every job in each server process, wherever its request lands.
ROOM = {"SLOWJOBS_WORKERS": str(JOBS)}


def submit_reports(
    url: str, count: int = JOBS, *, rows: int = ROWS, row_ms: int = ROW_MS
) -> list[str]:
    """Submit ``count`` report jobs over HTTP, as API clients do: one each,
    from addresses of their own (one client's jobs would take turns)."""
    tickets = []
    for index in range(count):
        client = HttpClient(url, source=f"127.0.0.{20 + index}")
        reply = client.post(
            "/demo/report/",
            {"rows": rows, "row_ms": row_ms},
            headers=client.api_headers(),
        )
        assert reply.status == 202, (reply.status, reply.body)
        tickets.append(reply.json()["ticket"])
    return tickets


def jobs_under_way(url: str, count: int = JOBS) -> list[str]:
    """Submit report jobs and let them run until each has a checkpoint."""
    tickets = submit_reports(url, count)
    wait_until(all_running(tickets, count), 20, "the jobs did not start")
    time.sleep(RUN_BEFORE_BREAK)
    return tickets


def finished_by_a_new_server(
    tmp_path: Path, tickets: list[str], *, workers: int = 2, **env: str
) -> None:
    """Start a server and wait for it to finish ``tickets`` by itself."""
    server = start_gunicorn(tmp_path, workers=workers, **env)
    try:
        wait_all_succeeded(tickets, "the new server did not finish the jobs")
    finally:
        stop(server.process)


def wait_all_succeeded(tickets: list[str], what: str) -> None:
    """Every job succeeds within FINISH_WITHIN, or ``what`` went wrong."""
    wait_until(
        lambda: statuses(tickets)["succeeded"] == len(tickets),
        FINISH_WITHIN,
        f"{what}: {statuses(tickets)}",
    )


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def statuses(tickets: list[str]) -> dict[str, int]:
    found = dict.fromkeys(JobStatus.values, 0)
    for status in Job.objects.filter(pk__in=tickets).values_list("status", flat=True):
        found[status] += 1
    return found


def all_running(tickets: list[str], at_least: int) -> Callable[[], bool]:
    return lambda: statuses(tickets)["running"] >= at_least


def worker_pids(server: Server) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True
    ).stdout
    return [int(pid) for pid in out.split()]


def wait_for_workers(server: Server, count: int, old: set[int] = frozenset()) -> None:
    wait_until(
        lambda: len(set(worker_pids(server)) - old) >= count,
        30,
        "gunicorn did not start its workers",
    )


def assert_exactly_once(tickets: list[str]) -> None:
    """Every job succeeded once, and its CSV has every row exactly once."""
    for ticket in tickets:
        assert_exactly_once_rows(ticket, ROWS)


def assert_exactly_once_rows(ticket: str, rows: int) -> None:
    job = Job.objects.get(pk=ticket)
    assert job.status == JobStatus.SUCCEEDED, (job.pk, job.status, job.error_message)
    path = jobfiles.resolve(job.result_file)
    assert path is not None, job.result_file
    assert path.is_file(), job.result_file
    lines = list(csv.reader(io.StringIO(path.read_text())))
    assert lines[0] == ["row", "square"]
    numbers = [int(line[0]) for line in lines[1:]]
    assert numbers == list(range(1, rows + 1)), f"{job.pk}: rows not exactly once"
    assert [int(line[1]) for line in lines[1:]] == [n * n for n in numbers]
    # One attempt per run: the first, and one more if it was interrupted.
    assert job.attempts == 1 + len(job.history), (job.attempts, job.history)
    assert len(job.history) <= 1, job.history


def checkpoints(tickets: set[str]) -> dict[str, int]:
    """The rows each job had made durable (read just after the break)."""
    return {
        str(pk): int((checkpoint or {}).get("rows", 0))
        for pk, checkpoint in Job.objects.filter(pk__in=tickets).values_list(
            "pk", "checkpoint"
        )
    }


def figures_for(
    name: str,
    tickets: list[str],
    broken_at: float,
    interrupted: set[str],
    saved: dict[str, int],
) -> Figures:
    """Read the figures off the rows, once every job has finished; ``saved``
    is what each interrupted job had checkpointed when it was broken off."""
    figures = Figures(name, broken_at, interrupted=len(interrupted))
    replacements = WorkerProcess.objects.filter(
        started_at__gte=_aware(broken_at)
    ).values_list("started_at", flat=True)
    owners_up = sorted(moment.timestamp() for moment in replacements)
    figures.replaced_at = owners_up[0] if owners_up else None
    work_left = []
    for job in Job.objects.filter(pk__in=tickets):
        if str(job.pk) in interrupted and job.started_at is not None:
            figures.resumed.append(job.started_at.timestamp() - broken_at)
            work_left.append((ROWS - saved.get(str(job.pk), 0)) * ROW_MS / 1000)
        if job.finished_at is not None and job.finished_at.timestamp() < broken_at:
            figures.finished_before_break += 1
        if job.finished_at is not None:
            figures.last_finish = max(
                figures.last_finish, job.finished_at.timestamp() - broken_at
            )
    figures.remaining_work = max(work_left, default=0.0)
    return figures


def _aware(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


def unfinished_running(tickets: list[str]) -> set[str]:
    return {
        str(pk)
        for pk in Job.objects.filter(
            pk__in=tickets, status=JobStatus.RUNNING
        ).values_list("pk", flat=True)
    }


@contextmanager
def servers(*started: Server) -> Iterator[list[Server]]:
    """Stop (SIGTERM, then SIGKILL) every server still up at the end."""
    running = list(started)
    try:
        yield running
    finally:
        for server in running:
            if server.process.poll() is None:
                stop(server.process)


# -- the scenarios ---------------------------------------------------------


def kill_at_once(pids: set[int]) -> None:
    """SIGKILL every process as if at one instant: all are stopped first.

    Killed one after another, a worker still alive between two kills may
    prove the first one dead and adopt its job, which then has two lost
    attempts (seen on a busy machine): right, but not the one crash the
    scenario means.  A stopped process still runs, so nobody adopts from it.
    """
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def workers_killed(tmp_path: Path, **env: str) -> Figures:
    """(a) Every gunicorn worker SIGKILLed; the master lives and respawns them."""
    with servers(start_gunicorn(tmp_path, workers=2, **ROOM, **env)) as (server,):
        wait_for_workers(server, 2)
        tickets = jobs_under_way(server.url)
        old = set(worker_pids(server))
        interrupted = unfinished_running(tickets)
        broken_at = time.time()
        kill_at_once(old)
        saved = checkpoints(interrupted)
        wait_all_succeeded(tickets, "not every job finished by itself")
        assert not old & set(worker_pids(server)), "the workers were not replaced"
        figures = figures_for(
            "workers SIGKILLed", tickets, broken_at, interrupted, saved
        )
    assert_exactly_once(tickets)
    return figures


def group_killed_and_restarted(tmp_path: Path, **env: str) -> Figures:
    """(b) The whole server SIGKILLed and started again at once, without the
    gunicorn hooks: its workers start recovering with their first request."""
    first = start_gunicorn(tmp_path, workers=2, **ROOM, **env)
    with servers(first):
        tickets = jobs_under_way(first.url)
        interrupted = unfinished_running(tickets)
        broken_at = time.time()
        kill_group(first.process)
        saved = checkpoints(interrupted)
    plain = plain_gunicorn(tmp_path, **env)
    with servers(plain):
        client = HttpClient(plain.url)
        # What brings a plain server's workers up: requests, as any site gets.
        while statuses(tickets)["succeeded"] < len(tickets):
            assert time.time() - broken_at < FINISH_WITHIN, statuses(tickets)
            for ticket in tickets[:4]:
                client.get(
                    f"/jobs/{ticket}/status", headers={"Accept": "application/json"}
                )
            time.sleep(0.1)
        figures = figures_for(
            "server SIGKILLed, restarted", tickets, broken_at, interrupted, saved
        )
    assert_exactly_once(tickets)
    return figures


def terminated_and_restarted(tmp_path: Path, **env: str) -> Figures:
    """(c) SIGTERM (a deploy): the drain hands the long jobs back; the new
    server takes them as it starts."""
    # A drain shorter than the jobs, so that some are handed back.
    env = {"SLOWJOBS_DRAIN_TIMEOUT": "1", **env}
    first = start_gunicorn(tmp_path, workers=2, **ROOM, **env)
    with servers(first):
        tickets = jobs_under_way(first.url)
        broken_at = time.time()
        first.process.send_signal(signal.SIGTERM)
        first.process.wait(60)
    handed_back = {
        str(pk)
        for pk in Job.objects.filter(pk__in=tickets, owner="").values_list(
            "pk", flat=True
        )
    }
    assert handed_back, "the drain handed nothing back"
    saved = checkpoints(handed_back)
    restarted_at = time.time()
    with servers(start_gunicorn(tmp_path, workers=2, **ROOM, **env)):
        wait_all_succeeded(tickets, "handed-back jobs were not taken")
        figures = figures_for(
            "SIGTERM, restarted", tickets, broken_at, handed_back, saved
        )
    assert_exactly_once(tickets)
    figures.replaced_at = figures.replaced_at or restarted_at
    return figures


def other_host_killed(tmp_path: Path, **env: str) -> Figures:
    """(d) Two servers on one PostgreSQL database, on "different hosts": one is
    SIGKILLed, the other takes its jobs through its advisory locks."""
    alpha = start_gunicorn(tmp_path, workers=2, SLOWJOBS_HOST="alpha", **ROOM, **env)
    beta = start_gunicorn(tmp_path, workers=2, SLOWJOBS_HOST="beta", **ROOM, **env)
    with servers(alpha, beta):
        HttpClient(beta.url).get("/")
        tickets = jobs_under_way(alpha.url)
        interrupted = unfinished_running(tickets)
        broken_at = time.time()
        kill_group(alpha.process)
        saved = checkpoints(interrupted)
        wait_all_succeeded(tickets, "the other host did not take the jobs")
        figures = figures_for(
            "other host SIGKILLed", tickets, broken_at, interrupted, saved
        )
    owners = set(Job.objects.filter(pk__in=interrupted).values_list("owner", flat=True))
    assert owners, "no job was interrupted"
    assert all(owner.startswith("beta:") for owner in owners), owners
    assert_exactly_once(tickets)
    figures.replaced_at = broken_at  # the other server was up all along
    return figures


def plain_gunicorn(tmp_path: Path, **env: str) -> Server:
    """gunicorn with no config file: none of slowjobs's server hooks."""
    from tests.services import free_port, wait_for_port

    port = free_port()
    log = tmp_path / f"plain-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "project.wsgi:application",
         "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--worker-class", "gthread", "--threads", "4"],
        cwd=ROOT, env=child_env(**ROOM, **env), stdout=log.open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    track(process)
    wait_for_port(port, 30)
    return Server(url=f"http://127.0.0.1:{port}", process=process, log=log)
