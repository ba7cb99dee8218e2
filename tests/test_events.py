"""``GET /jobs/<ticket>/events``: Server-Sent Events under uvicorn workers.

Real gunicorn with uvicorn workers (the documented ASGI set-up), real
clients reading the stream off the socket: a job's progress and end
arrive as events, its log lines resume from ``Last-Event-ID``, someone
else's watcher gets a 404, 200 watchers of running jobs cost no thread
each, and under the WSGI (gthread) server the URL is not served.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, start_gunicorn, stop
from tests.figures import record
from tests.http_client import HttpClient
from tests.recovery_scenarios import worker_pids
from tests.staff import log_in, staff_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def asgi_server(tmp_path: Path, collected_static: None) -> Iterator[Server]:
    pytest.importorskip("uvicorn_worker")
    server = start_gunicorn(tmp_path, workers=1, ASGI="true")
    yield server
    stop(server.process)


@pytest.fixture
def server_sharing_memcached(
    tmp_path: Path, collected_static: None, memcached
) -> Iterator[Server]:
    """A uvicorn worker that reads what this process's jobs publish: the
    same memcached, and the same secret to open the sealed records."""
    from django.conf import settings

    pytest.importorskip("uvicorn_worker")
    server = start_gunicorn(
        tmp_path,
        workers=1,
        ASGI="true",
        SLOWJOBS_MEMCACHED=memcached.location,
        SECRET_KEY=settings.SECRET_KEY,
    )
    yield server
    stop(server.process)


def submit_report(client: HttpClient, rows: int, row_ms: int) -> str:
    client.get("/")  # the CSRF cookie
    reply = client.post(
        "/demo/report/", {"rows": rows, "row_ms": row_ms}, headers=client.api_headers()
    )
    assert reply.status == 202, reply.body
    return str(reply.json()["ticket"])


class Watcher:
    """One event stream, read straight off its socket (HTTP/1.0: the body
    is the stream itself, with no chunked framing to take apart)."""

    def __init__(
        self,
        url: str,
        path: str,
        cookie: str,
        last_id: int | None = None,
        source: str | None = None,
    ):
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection(
            (host, int(port)),
            timeout=30,
            source_address=(source, 0) if source else None,
        )
        extra = f"Last-Event-ID: {last_id}\r\n" if last_id is not None else ""
        self.sock.sendall(
            f"GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
            f"Cookie: {cookie}\r\n{extra}Connection: close\r\n\r\n".encode()
        )
        self.buffer = b""
        self.status = 0

    def head(self) -> int:
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.status = int(head.split()[1])
        return self.status

    def events(self, timeout: float = 30) -> Iterator[dict[str, str]]:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            chunk = self.buffer or self.sock.recv(65536)
            self.buffer = b""
            if not chunk:
                return
            text += chunk.decode(errors="replace")
            while "\n\n" in text:
                block, text = text.split("\n\n", 1)
                event: dict[str, str] = {}
                for line in block.splitlines():
                    name, _, value = line.partition(": ")
                    if name in ("event", "data", "id"):
                        event[name] = value
                if "event" in event:
                    yield event

    def close(self) -> None:
        self.sock.close()


def cookie_of(client: HttpClient) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in client.cookies)


def test_a_running_jobs_progress_and_end_arrive_as_events(asgi_server):
    owner = HttpClient(asgi_server.url)
    ticket = submit_report(owner, 30, 50)
    watcher = Watcher(asgi_server.url, f"/jobs/{ticket}/events", cookie_of(owner))
    assert watcher.head() == 200
    seen: list[dict[str, object]] = []
    for event in watcher.events():
        seen.append({"event": event["event"], **json.loads(event["data"])})
        if event["event"] == "end":
            break
    watcher.close()
    statuses = [e for e in seen if e["event"] == "status"]
    assert len(statuses) >= 3, seen
    currents = [e["progress"]["current"] or 0 for e in statuses]
    assert currents == sorted(currents)
    assert seen[-1]["event"] == "end"
    assert seen[-1]["status"] == "succeeded"
    assert seen[-1]["result_url"]


def test_someone_elses_watcher_is_refused_like_an_unknown_ticket(asgi_server):
    owner = HttpClient(asgi_server.url)
    ticket = submit_report(owner, 20, 50)
    stranger = HttpClient(asgi_server.url)
    stranger.get("/")
    refused = Watcher(asgi_server.url, f"/jobs/{ticket}/events", cookie_of(stranger))
    assert refused.head() == 404
    refused.close()
    unknown = Watcher(asgi_server.url, "/jobs/not-a-ticket/events", cookie_of(owner))
    assert unknown.head() == 404
    unknown.close()


def test_the_page_uses_the_stream_under_asgi_and_polls_under_wsgi(
    asgi_server, gunicorn
):
    for server, streamed in ((asgi_server, True), (gunicorn, False)):
        client = HttpClient(server.url)
        ticket = submit_report(client, 5, 10)
        page = client.get(f"/jobs/{ticket}/").body.decode()
        assert ("data-events-url" in page) is streamed
        if not streamed:
            answer = client.get(f"/jobs/{ticket}/events")
            assert answer.status == 404
            assert "ASGI" in answer.json()["error"]


def test_two_hundred_watchers_of_running_jobs_hold_no_thread_each(asgi_server):
    owners = [HttpClient(asgi_server.url) for _ in range(4)]
    tickets = [submit_report(owner, 400, 50) for owner in owners]
    (pid,) = worker_pids(asgi_server)
    before = _process(pid)
    watchers = []
    for number in range(200):
        owner = owners[number % 4]
        watcher = Watcher(
            asgi_server.url,
            f"/jobs/{tickets[number % 4]}/events",
            cookie_of(owner),
            # Ten visitors of 20 streams each: each at its own cap.
            source=f"127.0.0.{2 + number % 10}",
        )
        watchers.append(watcher)
    for watcher in watchers:
        assert watcher.head() == 200
    for watcher in watchers:
        first = next(watcher.events(timeout=60))
        assert first["event"] == "status"
    during = _process(pid)
    for watcher in watchers:
        watcher.close()
    record(
        "events: 200 watchers in one uvicorn worker",
        threads_before=before["threads"],
        threads_during=during["threads"],
        rss_mib_before=round(before["rss_kib"] / 1024, 1),
        rss_mib_during=round(during["rss_kib"] / 1024, 1),
        kib_per_watcher=round((during["rss_kib"] - before["rss_kib"]) / 200, 1),
    )
    assert during["threads"] - before["threads"] < 20


def _process(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "threads": int(fields["Threads"]),
        "rss_kib": int(fields["VmRSS"].split()[0]),
    }


def test_a_report_reaches_its_watcher_within_a_fraction_of_a_second(
    server_sharing_memcached,
):
    """The job runs in this process; the uvicorn worker reads memcached."""
    import statistics

    from slowjobs.web.submitter import submitted_by
    from tests import tasks
    from tests.sessions import session_client

    _, key = session_client()
    with submitted_by(session_key=key):
        result = tasks.report_the_time.enqueue(40, 0.1)
    url = server_sharing_memcached.url
    watcher = Watcher(url, f"/jobs/{result.id}/events", f"sessionid={key}")
    assert watcher.head() == 200
    delays = []
    for event in watcher.events(timeout=60):
        arrived = time.time()
        data = json.loads(event["data"])
        if event["event"] == "status" and data["progress"]["message"]:
            delays.append((arrived - float(data["progress"]["message"])) * 1000)
        if event["event"] == "end":
            break
    watcher.close()
    delays.sort()
    p50 = statistics.median(delays)
    p99 = delays[min(len(delays) - 1, int(0.99 * len(delays)))]
    record(
        "events: progress() to the event at the watcher (memcached, uvicorn)",
        events=len(delays),
        p50_ms=round(p50, 1),
        p99_ms=round(p99, 1),
    )
    # A report every 0.1 s for 4 s: most of them seen, each soon after.
    assert len(delays) >= 10
    assert p50 < 1000


def test_log_lines_resume_from_last_event_id(server_sharing_memcached):
    from slowjobs.web.submitter import submitted_by
    from tests import tasks
    from tests.sessions import session_client

    _, key = session_client()
    with submitted_by(session_key=key):
        result = tasks.log_slowly_for_owner.enqueue("resumed", 20, 0.15)
    url, cookie = server_sharing_memcached.url, f"sessionid={key}"
    path = f"/jobs/{result.id}/events"
    first = Watcher(url, path, cookie)
    assert first.head() == 200
    got: list[str] = []
    last_id = 0
    for event in first.events():
        if event["event"] == "log":
            got += [line["message"] for line in json.loads(event["data"])["lines"]]
            last_id = int(event["id"])
            if len(got) >= 5:
                break
    first.close()  # the connection drops; the browser would reconnect
    time.sleep(0.5)
    second = Watcher(url, path, cookie, last_id=last_id)
    assert second.head() == 200
    for event in second.events():
        if event["event"] == "log":
            got += [line["message"] for line in json.loads(event["data"])["lines"]]
        if event["event"] == "end":
            break
    second.close()
    # Every line once, in order: none lost across the reconnect, none twice.
    assert got == [f"resumed line {n}" for n in range(20)]


def test_the_status_page_follows_the_stream_in_chromium(asgi_server, browser):
    context = browser.new_context(base_url=asgi_server.url)
    context.set_default_timeout(30_000)
    polls: list[str] = []
    try:
        page = context.new_page()
        page.on(
            "request",
            lambda r: polls.append(r.url) if r.url.endswith("/status") else None,
        )
        page.goto("/")
        page.fill("#id_rows", "40")
        page.fill("#id_row_ms", "25")
        page.click("text=Build the report")
        page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
        page.wait_for_function(
            "() => document.getElementById('status').textContent.trim() === 'Succeeded'"
        )
        assert page.eval_on_selector("#bar", "bar => bar.value") == 100
        assert page.is_visible("#download")
    finally:
        context.close()
    assert polls == []  # pushed, not polled


def test_the_admins_progress_bars_follow_the_stream_in_chromium(
    asgi_server, browser, django_user_model
):
    staff_user(django_user_model, "boss", "view_job")
    context = browser.new_context(base_url=asgi_server.url)
    context.set_default_timeout(30_000)
    requests: list[str] = []
    try:
        page = context.new_page()
        log_in(page, "boss")
        page.goto("/")
        page.fill("#id_rows", "200")
        page.fill("#id_row_ms", "10")
        page.click("text=Build the report")
        page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
        page.on("request", lambda r: requests.append(r.url))
        page.goto("/admin/slowjobs/job/")
        page.wait_for_function(
            "() => document.querySelector('.slowjobs-bar').value === 100"
        )
        assert page.inner_text(".slowjobs-status") == "Succeeded"
    finally:
        context.close()
    assert any("/progress/events/" in url for url in requests)
    assert not any("/progress/?" in url for url in requests)  # pushed, not polled


def test_the_admins_stream_is_for_staff_who_may_view_every_job(
    asgi_server, django_user_model
):
    owner = HttpClient(asgi_server.url)
    ticket = submit_report(owner, 5, 10)
    path = f"/admin/slowjobs/job/progress/events/?t={ticket}"
    refused = Watcher(asgi_server.url, path, cookie_of(owner))
    assert refused.head() == 404  # a visitor, even the job's owner
    refused.close()


def test_one_visitor_cannot_take_every_place(asgi_server):
    owner = HttpClient(asgi_server.url)
    ticket = submit_report(owner, 400, 50)
    path = f"/jobs/{ticket}/events"
    held = [Watcher(asgi_server.url, path, cookie_of(owner)) for _ in range(20)]
    try:
        assert [watcher.head() for watcher in held] == [200] * 20
        refused = Watcher(asgi_server.url, path, cookie_of(owner))
        assert refused.head() == 429
        refused.close()
        # Another address still gets its stream.
        other = Watcher(asgi_server.url, path, cookie_of(owner), source="127.0.0.9")
        assert other.head() == 200
        other.close()
    finally:
        for watcher in held:
            watcher.close()
    # Once they have gone, the visitor may watch again.
    time.sleep(1)
    again = Watcher(asgi_server.url, path, cookie_of(owner))
    assert again.head() == 200
    again.close()
