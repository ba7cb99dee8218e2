"""gunicorn settings for the demo site (``gunicorn -c project/gunicorn.conf.py``)."""

from __future__ import annotations

import os

from slowjobs.lifecycle.gunicorn import post_worker_init, worker_exit

__all__ = ["post_worker_init", "worker_exit"]

# ASGI=true: uvicorn workers (pip install "slowjobs[asgi]"), which stream
# job events (GET /jobs/<ticket>/events) without a thread per watcher.
ASGI = os.environ.get("ASGI", "").lower() in ("1", "true", "yes", "on")
wsgi_app = "project.asgi:application" if ASGI else "project.wsgi:application"
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_WORKERS", "2"))
worker_class = "uvicorn_worker.UvicornWorker" if ASGI else "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
# Longer than SLOWJOBS_DRAIN_TIMEOUT, so the drain ends before gunicorn kills.
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "30"))
