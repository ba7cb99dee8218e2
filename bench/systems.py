"""The systems compared, each in its usual production setup.

Every system serves its submit view with the same gunicorn (2 workers x 4
threads) and runs jobs on 8 workers in all: slowjobs in the gunicorn workers
themselves (4 pool threads each) with memcached for live progress, with the
library's defaults; Celery with a Redis broker and its results in the
database (django-celery-results), and without a result store; RQ through
django-rq; django-tasks-db's ``db_worker`` processes polling PostgreSQL.
A peer's submit is measured with its workers stopped (its fastest: the web
server alone on the machine); slowjobs has no workers to stop, its jobs run
in the server and are counted in its figure.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

PYTHON = sys.executable
MANAGE = [PYTHON, "-m", "django"]
WORKERS = 8


@dataclass(frozen=True)
class System:
    name: str
    database: str  # "sqlite" or "postgres"
    label: str
    # Commands of the worker processes besides the web server.
    workers: list[list[str]] = field(default_factory=list)
    memcached: bool = False  # slowjobs' live store
    redis: bool = False  # a broker the stack needs
    # Measures this system takes part in (a variant may run only some).
    measures: tuple[str, ...] = ("submit", "drain", "latency", "makespan", "progress")

    @property
    def is_slowjobs(self) -> bool:
        return self.name.startswith("slowjobs")


def celery_worker(pool: str) -> list[str]:
    return [
        PYTHON,
        "-m",
        "celery",
        "-A",
        "bench.peers.celery",
        "worker",
        "-P",
        pool,
        "-c",
        str(WORKERS),
        "-l",
        "warning",
    ]


SYSTEMS = {
    system.name: system
    for system in [
        System("slowjobs-sqlite", "sqlite", "slowjobs (SQLite)", memcached=True),
        System(
            "slowjobs-postgres", "postgres", "slowjobs (PostgreSQL)", memcached=True
        ),
        System(
            "celery-threads",
            "postgres",
            "Celery threads + Redis + results",
            workers=[celery_worker("threads")],
            redis=True,
        ),
        System(
            "celery-prefork",
            "postgres",
            "Celery prefork + Redis + results",
            workers=[celery_worker("prefork")],
            redis=True,
        ),
        System(
            "celery-prefork-noresults",
            "postgres",
            "Celery prefork + Redis, no result store",
            workers=[celery_worker("prefork")],
            redis=True,
            measures=("submit", "drain"),
        ),
        System(
            "rq",
            "postgres",
            "RQ (django-rq) + Redis",
            workers=[
                [*MANAGE, "rqworker-pool", "default", "--num-workers", str(WORKERS)]
            ],
            redis=True,
        ),
        System(
            "django-tasks-db",
            "postgres",
            "django-tasks-db db_worker (PostgreSQL)",
            # No progress API: a task has no way to report any.
            measures=("submit", "drain", "latency", "makespan"),
            workers=[
                [
                    *MANAGE,
                    "db_worker",
                    "--interval",
                    "0.1",
                    "--no-startup-delay",
                    "-v0",
                    "--worker-id",
                    f"bench-{number}",
                ]
                for number in range(WORKERS)
            ],
        ),
    ]
}
