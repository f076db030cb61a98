"""Gunicorn settings for the web process: `gunicorn -c hogsend/gunicorn.conf.py hogsend.wsgi`.

Sync workers, one persistent database connection each. Every view on the hot path (ingest, the
Studio) is synchronous ORM code, so a process per core pair does the same work as async workers
with fewer moving parts, and the connection budget is exactly `workers` (README, "Connection
budget"). Put a reverse proxy in front for TLS and slow clients.
"""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count() * 2)))
worker_class = "sync"
# A request that takes longer than this is stuck: the worker is replaced and the client gets an error.
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then (memory hygiene), not all at once.
max_requests = 20000
max_requests_jitter = 2000
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
# One connection per worker process, kept between requests (the sync worker has one thread).
raw_env = [f"DB_CONN_MAX_AGE={os.environ.get('DB_CONN_MAX_AGE', '300')}"]
