"""The app's settings: every default in one table, read late, checked once.

Settings are read on first use rather than at import so that
``override_settings`` in tests and settings changed after start-up are seen;
``setting_changed`` drops the cached copy.  A wrong value raises
``ImproperlyConfigured`` naming the setting, at start-up (``AppConfig.ready``)
rather than on the first job.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

EXECUTOR_MODES = ("pool", "delegate")
# Read in place of SLOWJOBS_ADOPT when only it is set (slowjobs.W007 says so).
DEPRECATED_ADOPT = "SLOWJOBS_ADOPT_ON_START"
RUNS_IN = ("thread", "process")

DEFAULTS: dict[str, Any] = {
    # "pool": a bounded queue drained by SLOWJOBS_WORKERS threads.
    # "delegate": one thread per job, at most SLOWJOBS_MAX_THREADS at once.
    "SLOWJOBS_EXECUTOR": "pool",
    # Worker threads of the pool; also this process's share of the work.
    "SLOWJOBS_WORKERS": 4,
    # Jobs that may wait in the pool's queue beyond those running.
    "SLOWJOBS_QUEUE_SIZE": 100,
    # Delegate mode's cap on concurrent job threads; None means no cap.
    "SLOWJOBS_MAX_THREADS": None,
    # Where a task's code runs unless the task says (@task(runs_in=...)):
    # "thread" (a job thread of this process: I/O-bound work) or "process"
    # (a child process of a small pool: CPU-bound work, killable).
    "SLOWJOBS_RUNS_IN": "thread",
    # Child processes for process-mode jobs; None means one per CPU core.
    "SLOWJOBS_PROCESSES": None,
    # Niceness added to job processes (0-19): the kernel favours requests.
    "SLOWJOBS_PROCESS_NICENESS": 10,
    # Niceness added to job threads (0-19; Linux only).  The interpreter lock
    # is shared with requests whatever the niceness: see the docs.
    "SLOWJOBS_THREAD_NICENESS": 0,
    # Seconds a cancelled or timed-out process-mode job gets to stop on its
    # own before its process is killed (and replaced).
    "SLOWJOBS_PROCESS_STOP_GRACE": 1.0,
    # Jobs a job process runs before it is replaced by a fresh one (memory a
    # task's libraries leak goes with it); None means no limit.
    "SLOWJOBS_PROCESS_MAX_JOBS": None,
    # Seconds enqueue waits for room before refusing with ExecutorFull.
    "SLOWJOBS_SUBMIT_TIMEOUT": 0.5,
    # Seconds a refused client is told to wait (the Retry-After header).
    "SLOWJOBS_RETRY_AFTER": 5,
    # When this process's executor is full, leave the job queued in the
    # database for another process (a run_jobs worker) instead of refusing.
    "SLOWJOBS_OVERFLOW": False,
    # memcached servers as "host:port" strings; empty means the in-process store.
    "SLOWJOBS_MEMCACHED": [],
    # memcached has no authentication: anyone who reaches it can read progress
    # and cancel jobs.  True says the servers that are not on loopback sit on
    # a network only this site reaches (silences slowjobs.W003).
    "SLOWJOBS_MEMCACHED_TRUSTED": False,
    # Largest accepted upload, in MiB.
    "SLOWJOBS_MAX_UPLOAD_MB": 1024,
    # MiB of kept uploads (inputs of unfinished jobs, and of finished ones
    # whose task keeps its input) one submitter may hold; over it, 413.
    "SLOWJOBS_UPLOAD_QUOTA_MB": 2048,
    # MiB of kept uploads all submitters together may hold; over it, 507.
    "SLOWJOBS_UPLOAD_TOTAL_MB": 20480,
    # Unfinished jobs (queued or running, counted by the tasks' declared
    # cost) that one signed-in user may have; over it, 429.  0: no cap.
    "SLOWJOBS_MAX_JOBS_PER_USER": 50,
    # ...that one anonymous visitor's session may have.
    "SLOWJOBS_MAX_JOBS_PER_SESSION": 10,
    # ...that anonymous visitors from one client address may have together
    # (a client that drops its cookie has a new session each request).
    "SLOWJOBS_MAX_JOBS_PER_ADDRESS": 20,
    # Jobs of one submitter that may run at once in one process's pool, so
    # that nobody holds every thread; None means half the workers (at least
    # one).  Others' jobs start first while a submitter is at it.
    "SLOWJOBS_MAX_RUNNING_PER_SUBMITTER": None,
    # Reverse proxies in front of the site that append the client's address
    # to X-Forwarded-For; 0 means REMOTE_ADDR is the client's address.
    "SLOWJOBS_TRUSTED_PROXIES": 0,
    # Seconds between a job's progress writes to the live store; calls in
    # between only update memory, so reporting often costs nothing.
    "SLOWJOBS_PROGRESS_INTERVAL": 0.2,
    # Seconds between copies of a job's progress into its database row.
    "SLOWJOBS_PROGRESS_DB_INTERVAL": 1.0,
    # Seconds between a running job's looks for a cancel request.
    "SLOWJOBS_CANCEL_CHECK_INTERVAL": 0.5,
    # Seconds a job may run before its next progress() or check_cancelled()
    # raises JobTimedOut (the job fails); a task's own timeout comes first.
    # None means no limit.
    "SLOWJOBS_JOB_TIMEOUT": None,
    # Seconds between a process's looks for due deferred jobs and retries
    # that it did not defer itself (those it knows of start on time).
    "SLOWJOBS_SCHEDULER_INTERVAL": 2.0,
    # Seconds between a process's heartbeats (its row and its jobs' rows).
    "SLOWJOBS_HEARTBEAT_INTERVAL": 5.0,
    # Seconds without a heartbeat after which a process counts as dead and
    # its unfinished jobs may be claimed by another.
    "SLOWJOBS_LEASE": 30.0,
    # Seconds a stopping process waits for running jobs before handing them
    # back; keep it below the server's own limit (gunicorn --graceful-timeout).
    "SLOWJOBS_DRAIN_TIMEOUT": 10.0,
    # Whether this process takes the jobs of processes that died and those
    # handed back by a stopping one, at start and for as long as it lives.
    # False: it runs only what it enqueues (and due deferred jobs).
    "SLOWJOBS_ADOPT": True,
    # Seconds between a process's looks for orphaned and handed-back jobs.
    "SLOWJOBS_ADOPT_INTERVAL": 0.5,
    # This host's name in process ids (default: the host name); set a stable
    # one where the host name is random (containers), or to tell apart two
    # servers that share one.
    "SLOWJOBS_HOST": "",
    # PostgreSQL: each process holds a session advisory lock for its life,
    # so another host can prove at once that it died.  Turn off behind a
    # pooler in transaction mode (PgBouncer), which breaks session locks.
    "SLOWJOBS_ADVISORY_LOCKS": True,
    # Days a finished job (and its files) is kept before purge_jobs removes it.
    "SLOWJOBS_RETENTION_DAYS": 7,
    # Periodic jobs: {"name": {"task": "dotted.path", "cron": "*/5 * * * *"
    # or "every": seconds, "args": [...], "kwargs": {...}, "missed": "latest"
    # or "skip", "timezone": "Europe/Paris", "grace": seconds}}.  Every
    # process that looks after jobs keeps the clock; each slot runs once.
    "SLOWJOBS_PERIODIC": {},
    # When purge_jobs runs by itself (a cron expression in TIME_ZONE);
    # None or "" turns it off (then run it from cron, or not at all).
    "SLOWJOBS_PURGE_SCHEDULE": "30 3 * * *",
    # Seconds late a slot may be and still run; slots older than that were
    # missed (downtime), and the schedule's "missed" policy decides.
    "SLOWJOBS_PERIODIC_GRACE": 60.0,
    # Lines of its log a job keeps (the newest; the others are counted as
    # dropped): what its code logs while it runs.  0 turns capture off.
    "SLOWJOBS_JOB_LOG_LINES": 500,
    # ...and bytes of them at most (up to 60000: the log travels through
    # memcached, whose values slowjobs keeps under 64 KiB).
    "SLOWJOBS_JOB_LOG_BYTES": 32768,
    # Watchers of GET /jobs/<ticket>/events (ASGI) one process serves at
    # once; past it, 503 with Retry-After (the page then polls).  0: no cap.
    "SLOWJOBS_MAX_WATCHERS": 1000,
    # ...of them one client address (an IPv6 one as its /64) may hold in
    # one process; past it, 429 with Retry-After.
    "SLOWJOBS_MAX_WATCHERS_PER_VISITOR": 20,
    # Seconds one event stream lasts at most; the browser reconnects (with
    # Last-Event-ID) and ownership is checked afresh.
    "SLOWJOBS_WATCH_SECONDS": 600.0,
    # Seconds a submit may wait for its job when the client asks
    # (Prefer: wait=N): a job done by then is answered 200 in the same
    # response.  At most 300; 0 turns waiting off.
    "SLOWJOBS_MAX_WAIT": 10.0,
    # Requests of one process that may wait at once (each holds a request
    # thread); past it, the usual 202 at once.  None: half of a gunicorn
    # gthread worker's threads (its hooks tell), none in a single-threaded
    # WSGI server, 8 under ASGI, else 2.  0: nobody waits.
    "SLOWJOBS_MAX_WAITERS": None,
    # ...of them one client address (an IPv6 one as its /64) may hold.
    "SLOWJOBS_MAX_WAITERS_PER_VISITOR": 2,
    # Count jobs for Prometheus (needs prometheus-client: slowjobs[metrics]);
    # serve them with slowjobs.metrics.metrics_view.
    "SLOWJOBS_METRICS": False,
    # A bearer token that lets a scraper read the metrics.
    "SLOWJOBS_METRICS_TOKEN": "",
    # Whether a connection from a loopback address may read the metrics
    # without the token.  Off: behind a reverse proxy on the same host every
    # request comes from loopback, so an address is no credential.
    "SLOWJOBS_METRICS_LOOPBACK": False,
}


@dataclass(frozen=True, slots=True)
class SlowjobsSettings:
    executor: str
    workers: int
    queue_size: int
    max_threads: int | None
    runs_in: str
    processes: int
    process_niceness: int
    thread_niceness: int
    process_stop_grace: float
    process_max_jobs: int | None
    submit_timeout: float
    retry_after: int
    overflow: bool
    memcached: tuple[tuple[str, int], ...]
    memcached_trusted: bool
    max_upload_mb: int
    upload_quota_mb: int
    upload_total_mb: int
    max_jobs_per_user: int
    max_jobs_per_session: int
    max_jobs_per_address: int
    max_running_per_submitter: int | None
    trusted_proxies: int
    progress_interval: float
    progress_db_interval: float
    cancel_check_interval: float
    job_timeout: float | None
    scheduler_interval: float
    heartbeat_interval: float
    lease: float
    drain_timeout: float
    adopt: bool
    adopt_interval: float
    host: str
    advisory_locks: bool
    retention_days: int
    periodic: dict[str, Any]
    purge_schedule: str | None
    periodic_grace: float
    job_log_lines: int
    max_watchers: int
    max_watchers_per_visitor: int
    watch_seconds: float
    max_wait: float
    max_waiters: int | None
    max_waiters_per_visitor: int
    job_log_bytes: int
    metrics: bool
    metrics_token: str
    metrics_loopback: bool

    def running_per_submitter(self, workers: int) -> int:
        """A submitter's share of a pool of ``workers`` threads."""
        if self.max_running_per_submitter is not None:
            return self.max_running_per_submitter
        return max(1, workers // 2)


def _raw(name: str) -> Any:
    return getattr(django_settings, name, DEFAULTS[name])


def _int(name: str, *, minimum: int, allow_none: bool = False) -> int | None:
    value = _raw(name)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        allowed = f"an integer >= {minimum}" + (" or None" if allow_none else "")
        raise ImproperlyConfigured(f"{name} must be {allowed}, not {value!r}.")
    return value


def _seconds(name: str) -> float:
    value = _raw(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ImproperlyConfigured(
            f"{name} must be a number of seconds >= 0, not {value!r}."
        )
    return float(value)


def _positive_seconds(name: str) -> float:
    value = _seconds(name)
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be a number of seconds > 0, not 0.")
    return value


# Longer waits belong to a job's status page, not to a held request.
MAX_WAIT_LIMIT = 300.0


def _max_wait() -> float:
    value = _seconds("SLOWJOBS_MAX_WAIT")
    if value > MAX_WAIT_LIMIT:
        raise ImproperlyConfigured(
            f"SLOWJOBS_MAX_WAIT must be at most {MAX_WAIT_LIMIT:.0f} seconds, "
            f"not {value!r}: a longer wait belongs to the job's page."
        )
    return value


def _str(name: str) -> str:
    value = _raw(name)
    if not isinstance(value, str):
        raise ImproperlyConfigured(f"{name} must be a string, not {value!r}.")
    return value


def _bool(name: str) -> bool:
    value = _raw(name)
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"{name} must be True or False, not {value!r}.")
    return value


def _adopt() -> bool:
    """``SLOWJOBS_ADOPT``, or the setting it replaced when only that is set."""
    if not hasattr(django_settings, "SLOWJOBS_ADOPT") and hasattr(
        django_settings, DEPRECATED_ADOPT
    ):
        value = getattr(django_settings, DEPRECATED_ADOPT)
        if not isinstance(value, bool):
            raise ImproperlyConfigured(
                f"{DEPRECATED_ADOPT} must be True or False, not {value!r}."
            )
        return value
    return _bool("SLOWJOBS_ADOPT")


def _runs_in() -> str:
    value = _raw("SLOWJOBS_RUNS_IN")
    if value not in RUNS_IN:
        raise ImproperlyConfigured(
            f"SLOWJOBS_RUNS_IN must be one of {', '.join(RUNS_IN)}, not {value!r}."
        )
    return str(value)


def _niceness(name: str) -> int:
    value = _raw(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 19:
        raise ImproperlyConfigured(
            f"{name} must be an integer from 0 to 19, not {value!r}."
        )
    return value


def parse_servers(name: str, value: object) -> tuple[tuple[str, int], ...]:
    """Accept "host:port", "a:1,b:2" or a list of "host:port" strings."""
    if value is None or value == "":
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ImproperlyConfigured(
            f"{name} must be a list of 'host:port' strings, not {value!r}."
        )
    servers = []
    for item in items:
        host, sep, port = str(item).strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ImproperlyConfigured(
                f"{name} entries must look like 'host:port' (port 1-65535), "
                f"not {item!r}."
            )
        servers.append((host.strip("[]"), int(port)))
    return tuple(servers)


def _executor() -> str:
    executor = _raw("SLOWJOBS_EXECUTOR")
    if executor not in EXECUTOR_MODES:
        raise ImproperlyConfigured(
            f"SLOWJOBS_EXECUTOR must be one of {', '.join(EXECUTOR_MODES)}, "
            f"not {executor!r}."
        )
    return str(executor)


def _heartbeat_and_lease() -> tuple[float, float]:
    heartbeat = _seconds("SLOWJOBS_HEARTBEAT_INTERVAL")
    lease = _seconds("SLOWJOBS_LEASE")
    if heartbeat <= 0 or lease < 2 * heartbeat:
        raise ImproperlyConfigured(
            "SLOWJOBS_LEASE must be at least twice SLOWJOBS_HEARTBEAT_INTERVAL "
            f"(both > 0), not {lease!r} and {heartbeat!r}: a live process would "
            "look dead between two heartbeats."
        )
    return heartbeat, lease


def _fair_share() -> dict[str, Any]:
    """The bounds on what one submitter may take (0: none)."""
    return {
        "upload_quota_mb": _int("SLOWJOBS_UPLOAD_QUOTA_MB", minimum=0) or 0,
        "upload_total_mb": _int("SLOWJOBS_UPLOAD_TOTAL_MB", minimum=0) or 0,
        "max_jobs_per_user": _int("SLOWJOBS_MAX_JOBS_PER_USER", minimum=0) or 0,
        "max_jobs_per_session": _int("SLOWJOBS_MAX_JOBS_PER_SESSION", minimum=0) or 0,
        "max_jobs_per_address": _int("SLOWJOBS_MAX_JOBS_PER_ADDRESS", minimum=0) or 0,
        "max_running_per_submitter": _int(
            "SLOWJOBS_MAX_RUNNING_PER_SUBMITTER", minimum=1, allow_none=True
        ),
        "trusted_proxies": _int("SLOWJOBS_TRUSTED_PROXIES", minimum=0) or 0,
    }


def _job_log_bytes() -> int:
    value = _int("SLOWJOBS_JOB_LOG_BYTES", minimum=1000) or 1000
    if value > 60000:
        raise ImproperlyConfigured(
            f"SLOWJOBS_JOB_LOG_BYTES must be at most 60000, not {value!r}: a "
            "job's log travels through memcached with its progress."
        )
    return value


def _periodic() -> dict[str, Any]:
    """The shape of the periodic settings; each schedule is checked by
    ``slowjobs.periodic.declared`` (slowjobs.E004 names a bad one)."""
    periodic = _raw("SLOWJOBS_PERIODIC")
    if not isinstance(periodic, dict):
        raise ImproperlyConfigured(
            f"SLOWJOBS_PERIODIC must be a dict of schedules, not {periodic!r}."
        )
    purge = _raw("SLOWJOBS_PURGE_SCHEDULE")
    if purge is not None and not isinstance(purge, str):
        raise ImproperlyConfigured(
            f"SLOWJOBS_PURGE_SCHEDULE must be a cron expression or None, not {purge!r}."
        )
    return {
        "periodic": dict(periodic),
        "purge_schedule": purge or None,
        "periodic_grace": _seconds("SLOWJOBS_PERIODIC_GRACE"),
    }


def load() -> SlowjobsSettings:
    """Read and check every setting; the first bad one raises ImproperlyConfigured."""
    heartbeat, lease = _heartbeat_and_lease()
    return SlowjobsSettings(
        executor=_executor(),
        workers=_int("SLOWJOBS_WORKERS", minimum=1) or 1,
        queue_size=_int("SLOWJOBS_QUEUE_SIZE", minimum=0) or 0,
        max_threads=_int("SLOWJOBS_MAX_THREADS", minimum=1, allow_none=True),
        runs_in=_runs_in(),
        processes=_int("SLOWJOBS_PROCESSES", minimum=1, allow_none=True)
        or os.cpu_count()
        or 1,
        process_niceness=_niceness("SLOWJOBS_PROCESS_NICENESS"),
        thread_niceness=_niceness("SLOWJOBS_THREAD_NICENESS"),
        process_stop_grace=_seconds("SLOWJOBS_PROCESS_STOP_GRACE"),
        process_max_jobs=_int("SLOWJOBS_PROCESS_MAX_JOBS", minimum=1, allow_none=True),
        submit_timeout=_seconds("SLOWJOBS_SUBMIT_TIMEOUT"),
        retry_after=_int("SLOWJOBS_RETRY_AFTER", minimum=0) or 0,
        overflow=_bool("SLOWJOBS_OVERFLOW"),
        memcached=parse_servers("SLOWJOBS_MEMCACHED", _raw("SLOWJOBS_MEMCACHED")),
        memcached_trusted=_bool("SLOWJOBS_MEMCACHED_TRUSTED"),
        max_upload_mb=_int("SLOWJOBS_MAX_UPLOAD_MB", minimum=1) or 1,
        **_fair_share(),
        progress_interval=_seconds("SLOWJOBS_PROGRESS_INTERVAL"),
        progress_db_interval=_seconds("SLOWJOBS_PROGRESS_DB_INTERVAL"),
        cancel_check_interval=_seconds("SLOWJOBS_CANCEL_CHECK_INTERVAL"),
        job_timeout=(
            None
            if _raw("SLOWJOBS_JOB_TIMEOUT") is None
            else _seconds("SLOWJOBS_JOB_TIMEOUT")
        ),
        scheduler_interval=_positive_seconds("SLOWJOBS_SCHEDULER_INTERVAL"),
        heartbeat_interval=heartbeat,
        lease=lease,
        drain_timeout=_seconds("SLOWJOBS_DRAIN_TIMEOUT"),
        adopt=_adopt(),
        adopt_interval=_positive_seconds("SLOWJOBS_ADOPT_INTERVAL"),
        host=_str("SLOWJOBS_HOST"),
        advisory_locks=_bool("SLOWJOBS_ADVISORY_LOCKS"),
        retention_days=_int("SLOWJOBS_RETENTION_DAYS", minimum=0) or 0,
        **_periodic(),
        job_log_lines=_int("SLOWJOBS_JOB_LOG_LINES", minimum=0) or 0,
        job_log_bytes=_job_log_bytes(),
        max_watchers=_int("SLOWJOBS_MAX_WATCHERS", minimum=0) or 0,
        max_watchers_per_visitor=_int("SLOWJOBS_MAX_WATCHERS_PER_VISITOR", minimum=0)
        or 0,
        watch_seconds=_positive_seconds("SLOWJOBS_WATCH_SECONDS"),
        max_wait=_max_wait(),
        max_waiters=_int("SLOWJOBS_MAX_WAITERS", minimum=0, allow_none=True),
        max_waiters_per_visitor=_int("SLOWJOBS_MAX_WAITERS_PER_VISITOR", minimum=0)
        or 0,
        metrics=_bool("SLOWJOBS_METRICS"),
        metrics_token=_str("SLOWJOBS_METRICS_TOKEN"),
        metrics_loopback=_bool("SLOWJOBS_METRICS_LOOPBACK"),
    )


# Guards _cached: request threads and job threads read settings concurrently.
_lock = threading.Lock()
_cached: SlowjobsSettings | None = None


def get() -> SlowjobsSettings:
    global _cached
    with _lock:
        if _cached is None:
            _cached = load()
        return _cached


def problem() -> str | None:
    """What is wrong with the settings (slowjobs.E001 says it), or None."""
    try:
        get()
    except ImproperlyConfigured as exc:
        return str(exc)
    return None


def unknown_settings() -> list[str]:
    """``SLOWJOBS_`` settings that slowjobs does not read: misspellings."""
    known = {*DEFAULTS, DEPRECATED_ADOPT}
    return sorted(
        name
        for name in dir(django_settings)
        if name.startswith("SLOWJOBS_") and name not in known
    )


def _reset(*, setting: str, **kwargs: object) -> None:
    global _cached
    if setting.startswith("SLOWJOBS_"):
        with _lock:
            _cached = None


setting_changed.connect(_reset)
