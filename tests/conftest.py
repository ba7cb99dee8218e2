from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from slowjobs.lifecycle.control import reopen, shutdown
from slowjobs.progress import reset_store
from slowjobs.tasksapi import task_finished
from tests import tasks
from tests.services import Memcached, free_port, require_binary

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_executor(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test gets its own executor; gates left shut are opened at the end.

    Set up after the test database, so that job threads are stopped before
    the database is flushed (a flush under a job's write deadlocks).
    """
    marker = request.node.get_closest_marker("django_db")
    if marker is not None:
        transactional = marker.kwargs.get("transaction", False)
        request.getfixturevalue("transactional_db" if transactional else "db")
        # Job processes the test starts use the test database too.
        os.environ["SLOWJOBS_TEST_DATABASE_NAME"] = str(
            connection.settings_dict["NAME"]
        )
    shutdown(timeout=10)
    reopen()
    yield
    tasks.all_open.set()
    for event in list(tasks.gates.values()):
        event.set()
    assert shutdown(timeout=30).drained, "job threads did not end"
    reopen()
    tasks.all_open.clear()
    tasks.gates.clear()
    tasks.seen.clear()
    reset_store()


# Servers a test started: any still up when it ends is killed, so that a
# failed test leaves no server behind to adopt the next tests' jobs.
_started: list[subprocess.Popen[bytes]] = []


def track(process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    _started.append(process)
    return process


@pytest.fixture(autouse=True)
def _no_leftover_servers() -> Iterator[None]:
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGCONT)
                os.killpg(process.pid, signal.SIGKILL)
            except (PermissionError, ProcessLookupError):
                process.kill()
            process.wait(10)


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[Memcached]:
    server = Memcached(require_binary("memcached", "apt-get install memcached"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def memcached(memcached_server: Memcached, settings: Any) -> Iterator[Memcached]:
    """This test's jobs use the real memcached (emptied first)."""
    if memcached_server.process is None:
        memcached_server.start()
    memcached_server.flush()
    settings.SLOWJOBS_MEMCACHED = memcached_server.location
    yield memcached_server
    if memcached_server.process is None:  # a test stopped it
        memcached_server.start()


@pytest.fixture
def own_memcached(settings: Any) -> Iterator[Memcached]:
    """A memcached of this test's own, to stop and start at will."""
    server = Memcached(require_binary("memcached", "apt-get install memcached"))
    server.start()
    settings.SLOWJOBS_MEMCACHED = server.location
    yield server
    server.stop()


class FinishedJobs:
    """Waits for jobs by ticket through Django's task_finished signal."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}

    def _event(self, ticket: str) -> threading.Event:
        with self._lock:
            return self._events.setdefault(ticket, threading.Event())

    def receive(self, sender: Any, task_result: Any, **kwargs: Any) -> None:
        self._event(task_result.id).set()

    def wait(self, ticket: str, timeout: float = 15) -> None:
        assert self._event(ticket).wait(timeout), f"job {ticket} did not finish"


@pytest.fixture
def finished(transactional_db: None) -> Iterator[FinishedJobs]:
    jobs = FinishedJobs()
    task_finished.connect(jobs.receive)
    yield jobs
    task_finished.disconnect(jobs.receive)


def database_url() -> str:
    """The test database, as a DATABASE_URL a child process can use."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{auth}@{host}/{db['NAME']}"


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def in_forked_child(check: Callable[[], bool]) -> bool:
    """Fork, run ``check`` in the child, and return its answer."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write, b"1" if check() else b"0")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    return answer == b"1"


def child_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "STATIC_ROOT": str(settings.STATIC_ROOT),
        "SECRET_KEY": "tests-only-secret-key-tests-only-secret-key-0123456789",
        "PYTHONPATH": str(ROOT),
        "SLOWJOBS_DRAIN_TIMEOUT": "2",
    }
    env.update(extra)
    return env


def start_gunicorn(
    tmp_path: Path,
    *,
    workers: int = 2,
    extra_args: tuple[str, ...] = (),
    port: int | None = None,
    **env: str,
) -> Server:
    port = port or free_port()
    log = tmp_path / f"gunicorn-{port}.log"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "-c", "project/gunicorn.conf.py",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            *extra_args,
        ],
        cwd=ROOT,
        env=child_env(**env),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # master and workers: one group to kill
    )  # fmt: skip
    track(process)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return Server(url=url, process=process, log=log)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"gunicorn did not listen in 30 s:\n{log.read_text()}")


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the server, master and workers at once: a crash."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def run_command(
    *args: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def collected_static(django_db_blocker: Any) -> None:
    """The servers serve static files from STATIC_ROOT, as in production."""
    from django.core.management import call_command

    call_command("collectstatic", "--noinput", verbosity=0)


@pytest.fixture
def gunicorn(
    transactional_db: None, collected_static: None, tmp_path: Path
) -> Iterator[Server]:
    server = start_gunicorn(
        tmp_path, DEBUG=os.environ.get("TEST_SERVER_DEBUG", "false")
    )
    yield server
    stop(server.process)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.figures import recorded

    if recorded and os.environ.get("SLOWJOBS_FIGURES_FILE"):
        # For a benchmark script that runs tests and prints their figures.
        import json

        Path(os.environ["SLOWJOBS_FIGURES_FILE"]).write_text(
            json.dumps([[name, values] for name, values in recorded])
        )
    if recorded:
        terminalreporter.section("measured figures")
        for name, values in recorded:
            shown = ", ".join(f"{key}={value}" for key, value in values.items())
            terminalreporter.write_line(f"{name}: {shown}")


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = require_binary("chromium", "apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API keeps an event loop in this thread; the test
    # database's own (synchronous) set-up and flush are still safe.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_FLAGS
        )
        yield launched
        launched.close()
