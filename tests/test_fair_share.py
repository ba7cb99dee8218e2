"""Fair share: caps on a submitter's unfinished jobs (429, naming the cap),
jobs taking turns by submitter in the pool, a submitter's share of the
threads, and a task's concurrency bound."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client, RequestFactory

from slowjobs.engine.executor.delegate import DelegateExecutor
from slowjobs.engine.executor.pool import PoolExecutor
from slowjobs.exceptions import OverLimit
from slowjobs.jobs.cancel import cancel
from slowjobs.models import Job
from slowjobs.web.submitter import client_address, submitted_by
from tests import tasks

LONG_REPORT = {"rows": 100000, "row_ms": 50}


def _cancel_all() -> None:
    for ticket in Job.objects.unfinished().values_list("pk", flat=True):
        cancel(ticket)


@pytest.fixture
def cancel_at_end() -> Any:
    yield
    _cancel_all()


@pytest.mark.django_db(transaction=True)
def test_a_session_over_its_cap_is_refused_and_nothing_is_written(settings):
    settings.SLOWJOBS_MAX_JOBS_PER_SESSION = 2
    with submitted_by(session_key="visitor-one", address="127.0.0.9"):
        tasks.wait_for_gate.enqueue("a")
        tasks.wait_for_gate.enqueue("b")
        with pytest.raises(OverLimit) as refusal:
            tasks.wait_for_gate.enqueue("c")
    assert refusal.value.limit == "session"
    assert "2 unfinished jobs" in str(refusal.value)
    assert Job.objects.count() == 2
    # Another session from the same address is under both of its caps.
    with submitted_by(session_key="visitor-two", address="127.0.0.9"):
        tasks.wait_for_gate.enqueue("d")
    assert Job.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_finished_jobs_no_longer_count(settings):
    settings.SLOWJOBS_MAX_JOBS_PER_SESSION = 1
    with submitted_by(session_key="visitor"):
        first = tasks.wait_for_gate.enqueue("first")
        with pytest.raises(OverLimit):
            tasks.wait_for_gate.enqueue("second")
        tasks.gate("first").set()
        deadline = time.monotonic() + 10
        while not Job.objects.get(pk=first.id).is_finished:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        tasks.noop.enqueue()


@pytest.mark.django_db(transaction=True)
def test_a_task_s_cost_counts_against_the_cap(settings):
    settings.SLOWJOBS_MAX_JOBS_PER_SESSION = 4
    with submitted_by(session_key="visitor"):
        tasks.costly_wait.enqueue("big")  # 3 of 4
        with pytest.raises(OverLimit):
            tasks.costly_wait.enqueue("bigger")  # 6 > 4
        tasks.wait_for_gate.enqueue("small")  # 4 of 4
        with pytest.raises(OverLimit):
            tasks.wait_for_gate.enqueue("one more")
    assert sorted(Job.objects.values_list("cost", flat=True)) == [1, 3]


@pytest.mark.django_db(transaction=True)
def test_a_signed_in_user_has_a_cap_of_their_own(settings, django_user_model):
    settings.SLOWJOBS_MAX_JOBS_PER_USER = 2
    settings.SLOWJOBS_MAX_JOBS_PER_ADDRESS = 1
    user = django_user_model.objects.create_user("ada")
    with submitted_by(user=user, address="127.0.0.9"):
        tasks.wait_for_gate.enqueue("a")
        tasks.wait_for_gate.enqueue("b")  # the address cap is for anonymous jobs
        with pytest.raises(OverLimit) as refusal:
            tasks.wait_for_gate.enqueue("c")
    assert refusal.value.limit == "user"
    # Commands and scripts name no submitter: no cap applies.
    for name in "def":
        tasks.wait_for_gate.enqueue(name)


@pytest.mark.django_db(transaction=True)
def test_a_cookieless_client_is_capped_by_its_address(settings, cancel_at_end):
    settings.SLOWJOBS_MAX_JOBS_PER_ADDRESS = 3
    answers = []
    for _ in range(5):
        # A new client each time: no cookie is ever sent back.
        client = Client(REMOTE_ADDR="127.0.0.2")
        answers.append(
            client.post(
                "/demo/report/", LONG_REPORT, headers={"accept": "application/json"}
            )
        )
    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
    refusal = answers[3]
    assert refusal["Retry-After"] == "5"
    assert refusal.json()["limit"] == "address"
    assert "3 unfinished jobs" in refusal.json()["error"]
    # A browser's form post over the cap gets the same answer, on a page.
    page = Client(REMOTE_ADDR="127.0.0.2").post("/demo/report/", LONG_REPORT)
    assert page.status_code == 429
    assert page["Content-Type"].startswith("text/html")
    assert "3 unfinished jobs" in page.content.decode()
    # Another address is not held back, and refusals made no session.
    other = Client(REMOTE_ADDR="127.0.0.3").post(
        "/demo/report/", LONG_REPORT, headers={"accept": "application/json"}
    )
    assert other.status_code == 202
    addresses = list(Job.objects.values_list("submitter_address", flat=True))
    assert sorted(addresses) == ["127.0.0.2"] * 3 + ["127.0.0.3"]
    from django.contrib.sessions.models import Session

    assert Session.objects.count() == 4


def test_the_client_address_is_remote_addr_unless_proxies_are_trusted(settings):
    factory = RequestFactory()
    forged = factory.get(
        "/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7"
    )
    assert client_address(forged) == "127.0.0.1"
    settings.SLOWJOBS_TRUSTED_PROXIES = 1
    # One proxy: the entry it appended; the client's own entries are forgeable.
    assert client_address(forged) == "203.0.113.7"
    settings.SLOWJOBS_TRUSTED_PROXIES = 2
    assert client_address(forged) == "6.6.6.6"
    settings.SLOWJOBS_TRUSTED_PROXIES = 3  # fewer entries than proxies
    assert client_address(forged) == "127.0.0.1"
    settings.SLOWJOBS_TRUSTED_PROXIES = 1
    # An entry that is no address is the proxy's own address, never "no cap".
    junk = factory.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="<script>")
    assert client_address(junk) == "127.0.0.1"
    # A unix socket gives no address: one shared bucket, still capped.
    socket_client = factory.get("/", REMOTE_ADDR="")
    assert client_address(socket_client) == "unknown"
    settings.SLOWJOBS_TRUSTED_PROXIES = 0
    six = factory.get("/", REMOTE_ADDR="2001:db8:1:2:aaaa:bbbb:cccc:dddd")
    assert client_address(six) == "2001:db8:1:2::/64"
    mapped = factory.get("/", REMOTE_ADDR="::ffff:192.0.2.5")
    assert client_address(mapped) == "192.0.2.5"


def test_a_proxy_nobody_declared_is_said_once_in_the_log(settings, caplog):
    from slowjobs.web import submitter

    submitter._proxy_warning.clear()
    settings.SLOWJOBS_TRUSTED_PROXIES = 0
    proxied = RequestFactory().get(
        "/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7"
    )
    with caplog.at_level("WARNING", logger="slowjobs.submitter"):
        assert client_address(proxied) == "127.0.0.1"
        assert client_address(proxied) == "127.0.0.1"
    warnings = [r for r in caplog.records if "SLOWJOBS_TRUSTED_PROXIES" in r.message]
    assert len(warnings) == 1


class Recorder:
    """Jobs that record when they start and wait to be let go."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.lock = threading.Lock()
        self.release: dict[str, threading.Event] = {}
        self.running = 0
        self.peak = 0

    def job(self, name: str) -> Callable[[], None]:
        event = self.release.setdefault(name, threading.Event())

        def work() -> None:
            with self.lock:
                self.started.append(name)
                self.running += 1
                self.peak = max(self.peak, self.running)
            event.wait(10)
            with self.lock:
                self.running -= 1

        return work

    def wait_started(self, count: int) -> list[str]:
        deadline = time.monotonic() + 5
        while len(self.started) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)  # and no more than that
        with self.lock:
            return list(self.started)


def _pool(workers: int, running_per_submitter: int) -> PoolExecutor:
    return PoolExecutor(
        workers=workers,
        queue_size=20,
        submit_timeout=0.05,
        retry_after=3,
        running_per_submitter=running_per_submitter,
    )


def test_one_submitter_never_holds_every_thread():
    executor = _pool(workers=2, running_per_submitter=1)
    jobs = Recorder()
    for name in ("a1", "a2", "a3"):
        executor.start(executor.reserve(), jobs.job(name), lane="flood")
    assert jobs.wait_started(1) == ["a1"]  # a2 waits: one thread is theirs
    executor.start(executor.reserve(), jobs.job("b1"), lane="visitor")
    assert jobs.wait_started(2) == ["a1", "b1"]
    jobs.release["a1"].set()
    assert jobs.wait_started(3) == ["a1", "b1", "a2"]
    for event in jobs.release.values():
        event.set()
    assert executor.shutdown(wait=True, timeout=5)
    assert jobs.started == ["a1", "b1", "a2", "a3"]


def test_queued_jobs_start_in_turns_across_submitters():
    executor = _pool(workers=1, running_per_submitter=1)
    jobs = Recorder()
    executor.start(executor.reserve(), jobs.job("first"))
    assert jobs.wait_started(1) == ["first"]
    for name, lane in [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b")]:
        executor.start(executor.reserve(), jobs.job(name), lane=lane)
    executor.start(executor.reserve(), jobs.job("c1"), lane="c")
    executor.start(executor.reserve(), jobs.job("urgent"), lane="a", priority=10)
    for event in jobs.release.values():
        event.set()
    assert executor.shutdown(wait=True, timeout=5)
    # Priority first; then one job of each submitter in turn.
    assert jobs.started == ["first", "urgent", "a1", "b1", "c1", "a2", "a3"]


def test_a_concurrency_bound_holds_its_jobs_back_and_lets_others_by():
    executor = _pool(workers=3, running_per_submitter=3)
    jobs = Recorder()
    for index in range(3):
        executor.start(
            executor.reserve(),
            jobs.job(f"export{index}"),
            lane=f"user{index}",
            limit=("exports", 1),
        )
    executor.start(executor.reserve(), jobs.job("other"), lane="user0")
    assert jobs.wait_started(2) == ["export0", "other"]
    jobs.release["export0"].set()
    assert jobs.wait_started(3) == ["export0", "other", "export1"]
    for event in jobs.release.values():
        event.set()
    assert executor.shutdown(wait=True, timeout=5)


def test_the_delegate_executor_keeps_a_concurrency_bound_too():
    executor = DelegateExecutor(max_threads=None, submit_timeout=0.05, retry_after=3)
    jobs = Recorder()
    for index in range(3):
        executor.start(executor.reserve(), jobs.job(f"e{index}"), limit=("k", 2))
    assert len(jobs.wait_started(2)) == 2
    for event in jobs.release.values():
        event.set()
    assert executor.shutdown(wait=True, timeout=5)
    assert jobs.peak == 2
    assert len(jobs.started) == 3


@pytest.mark.django_db(transaction=True)
def test_a_task_s_concurrency_key_bounds_each_key_on_its_own():
    for shop, name in [("north", "n1"), ("north", "n2"), ("south", "s1")]:
        tasks.one_per_shop.enqueue(shop, name)
    deadline = time.monotonic() + 5
    while len(tasks.seen.get("started", [])) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert sorted(tasks.seen["started"]) == ["n1", "s1"]
    tasks.gate("n1").set()
    while len(tasks.seen["started"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tasks.seen["started"][-1] == "n2"
