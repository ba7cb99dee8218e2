"""The pages in a real browser: Debian's headless Chromium, driven by
Playwright, against the demo site under gunicorn."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.staff import log_in, staff_user

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT_MS = 30_000


@pytest.fixture
def page(browser, gunicorn) -> Iterator[Any]:
    context = browser.new_context(base_url=gunicorn.url, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def start_report(page, rows: int, row_ms: int) -> None:
    """Fill and send the report form; land on the job's page."""
    page.goto("/")
    page.fill("#id_rows", str(rows))
    page.fill("#id_row_ms", str(row_ms))
    page.click("text=Build the report")
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))


def wait_for_status(page, label: str) -> None:
    page.wait_for_function(
        "label => document.getElementById('status').textContent.trim() === label",
        arg=label,
    )


def test_report_form_bar_reaches_100_and_the_csv_downloads(page):
    start_report(page, 40, 25)
    wait_for_status(page, "Succeeded")
    assert page.eval_on_selector("#bar", "bar => bar.value") == 100
    assert page.inner_text("#percent") == "100.0%"
    assert page.inner_text("#message") == "row 40 of 40"
    assert not page.is_visible("#cancel-form")
    with page.expect_download() as download_info:
        page.click("#download")
    path = download_info.value.path()
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert [int(row[0]) for row in rows[1:]] == list(range(1, 41))


def test_checksum_form_reports_the_files_sha256(page, tmp_path):
    content = os.urandom(3 * 1024 * 1024) + b"a\nb\n"
    upload = tmp_path / "sample.bin"
    upload.write_bytes(content)
    page.goto("/")
    page.set_input_files("#id_file", str(upload))
    page.click("text=Upload and checksum")
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    wait_for_status(page, "Succeeded")
    assert page.eval_on_selector("#bar", "bar => bar.value") == 100
    result = page.inner_text("#result")
    assert hashlib.sha256(content).hexdigest() in result
    assert f'"bytes": {len(content)}' in result


def test_a_running_report_can_be_cancelled_from_its_page(page):
    start_report(page, 5000, 10)
    wait_for_status(page, "Running")
    page.wait_for_function("() => document.getElementById('bar').value > 0")
    page.click("#cancel-form button")
    wait_for_status(page, "Cancelled")
    assert page.inner_text("#error") == "Cancelled while running."
    assert not page.is_visible("#cancel-form")


def test_another_visitor_cannot_see_the_job(browser, gunicorn, page):
    start_report(page, 5, 0)
    job_url = page.url
    stranger = browser.new_context()
    try:
        other = stranger.new_page()
        response = other.goto(job_url)
        assert response.status == 404
        status = other.goto(job_url + "status")
        assert status.status == 404
        assert "ticket" not in other.content()
    finally:
        stranger.close()


def test_without_javascript_the_page_still_shows_progress_and_refreshes(
    browser, gunicorn
):
    context = browser.new_context(base_url=gunicorn.url, java_script_enabled=False)
    try:
        page = context.new_page()
        start_report(page, 300, 10)
        assert 'http-equiv="refresh"' in page.content()
        # The page reloads by itself until the job has finished.
        wait_for_status(page, "Succeeded")
    finally:
        context.close()


def test_a_page_whose_script_and_style_do_not_load_still_reaches_the_end(
    browser, gunicorn
):
    context = browser.new_context(base_url=gunicorn.url)
    context.set_default_timeout(TIMEOUT_MS)
    context.route("**/static/slowjobs/**", lambda route: route.abort())
    try:
        page = context.new_page()
        loads = []
        # Counted when each navigation commits, before its page is parsed
        # (a "load" event can come after the page already shows the end).
        page.on(
            "framenavigated",
            lambda frame: loads.append(frame.url) if frame is page.main_frame else None,
        )
        start_report(page, 200, 10)
        # No script: the page's own refresh reloads it until the job ends.
        wait_for_status(page, "Succeeded")
        assert len([url for url in loads if "/jobs/" in url]) >= 2, loads
        # Readable without the style: the labels and values, in order.
        text = page.inner_text("main")
        for label in ("Ticket", "Status", "Progress", "Elapsed", "Result"):
            assert label in text, text
        assert not page.is_visible("#cancel-form")
        assert not page.is_visible("#error-row")
    finally:
        context.close()


def test_with_its_script_the_page_does_not_reload_and_polls_instead(page):
    loads = []
    page.on("load", lambda: loads.append(page.url))
    start_report(page, 300, 10)
    wait_for_status(page, "Succeeded")
    assert len([url for url in loads if "/jobs/" in url]) == 1, loads


def test_a_progress_bar_moves_in_the_admin_changelist(
    browser, gunicorn, django_user_model
):
    staff_user(django_user_model, "boss", superuser=True)
    # A laptop's width: the job list fits without scrolling sideways.
    context = browser.new_context(
        base_url=gunicorn.url, viewport={"width": 1300, "height": 900}
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        log_in(page, "boss")
        start_report(page, 300, 10)
        page.goto("/admin/slowjobs/job/")
        bar = ".slowjobs-bar"
        first = page.eval_on_selector(bar, "bar => bar.value")
        page.wait_for_function(
            "([selector, first]) => document.querySelector(selector).value > first",
            arg=[bar, first],
        )
        page.wait_for_function(
            "selector => document.querySelector(selector).value === 100", arg=bar
        )
        assert page.inner_text(".slowjobs-status") == "Succeeded"
        assert page.evaluate("document.documentElement.scrollWidth") <= 1300
        page.goto("/admin/slowjobs/workerprocess/")
        assert "running," in page.inner_text("#result_list")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1300
    finally:
        context.close()


def test_a_jobs_page_tells_of_its_servers_crash_and_goes_on_to_success(
    browser, collected_static, tmp_path
):
    """The visitor's page across a SIGKILL of the whole server: while a server
    that takes nothing answers, it says the job was interrupted (not a frozen
    "Running"); once a default server is back, the job finishes by itself."""
    from tests.conftest import kill_group, start_gunicorn, stop
    from tests.services import free_port

    port = free_port()
    first = start_gunicorn(tmp_path, workers=1, port=port)
    context = browser.new_context(base_url=first.url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        start_report(page, 300, 10)  # 3 s
        page.wait_for_function("document.getElementById('bar').value >= 20")
        kill_group(first.process)
        # A server on the same address that adopts nothing: the page polls it.
        idle = start_gunicorn(tmp_path, workers=1, port=port, SLOWJOBS_ADOPT="false")
        try:
            wait_for_status(page, "Queued")
            assert page.inner_text("#message") == "Interrupted; waiting to resume"
        finally:
            stop(idle.process)
        restarted = start_gunicorn(tmp_path, workers=1, port=port)
        try:
            wait_for_status(page, "Succeeded")
            assert page.eval_on_selector("#bar", "bar => bar.value") == 100
        finally:
            stop(restarted.process)
    finally:
        context.close()


ATTACK_PAGE = """<!doctype html>
<form id="attack" method="post" action="{target}/demo/report/">
  <input name="rows" value="100000"><input name="row_ms" value="10000">
</form>
<script>document.getElementById("attack").submit();</script>
"""


@pytest.fixture
def attacker_site(gunicorn) -> Iterator[str]:
    """A page on another site (localhost, not 127.0.0.1, and another port)
    that submits a form to the demo as soon as it loads."""
    import http.server
    import threading

    page = ATTACK_PAGE.format(target=gunicorn.url).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_page_of_another_site_starts_no_job_and_keeps_the_visitor_s_session(
    page, attacker_site
):
    from slowjobs.models import Job

    start_report(page, 3, 0)
    session = next(c for c in page.context.cookies() if c["name"] == "sessionid")
    with page.expect_response(re.compile(r"/demo/report/$")) as answer:
        page.goto(attacker_site)
    assert answer.value.status == 403
    assert "another site may not submit" in answer.value.text()
    after = next(c for c in page.context.cookies() if c["name"] == "sessionid")
    assert after["value"] == session["value"]
    assert Job.objects.count() == 1  # the visitor's own report only


def test_the_status_page_sends_its_etag_and_gets_304_while_nothing_changes(page):
    answers: list[int] = []
    page.on(
        "response",
        lambda r: answers.append(r.status) if r.url.endswith("/status") else None,
    )
    start_report(page, 3, 5000)  # a row every 5 s: the status holds still
    wait_for_status(page, "Running")
    page.wait_for_timeout(3500)
    assert answers[0] == 200
    assert 304 in answers, answers
    assert page.inner_text("#status") == "Running"
    page.click("#cancel-form button")
    wait_for_status(page, "Cancelled")
