"""gunicorn settings for queuectl's API and dashboard.

    gunicorn -c config/gunicorn.conf.py "queuectl_api:create_app()"

Reads QUEUECTL_DB (the SQLite file) and QUEUECTL_API_TOKEN (required); QUEUECTL_API_BIND overrides the
address (default 127.0.0.1:8080; a container sets 0.0.0.0:8080), QUEUECTL_API_WORKERS the process count.
"""

import os
import sys

# Refuse to start without a token, before any worker boots, with a message that says what to do.
if not os.environ.get("QUEUECTL_API_TOKEN", "").strip():
    try:
        from queuectl_api.config import TOKEN_HELP
    except ImportError:  # the package is installed beside gunicorn; this only guards a broken install
        TOKEN_HELP = "QUEUECTL_API_TOKEN is not set: set it to a long random secret."
    print(f"queuectl-api: error: {TOKEN_HELP}", file=sys.stderr, flush=True)
    sys.exit(1)

bind = os.environ.get("QUEUECTL_API_BIND", "127.0.0.1:8080").split(",")
workers = int(os.environ.get("QUEUECTL_API_WORKERS", "2"))
worker_class = "sync"
timeout = 30
graceful_timeout = 10
# Small limits on the request line and headers; the body limit is the app's MAX_CONTENT_LENGTH (413).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = os.environ.get("QUEUECTL_API_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("QUEUECTL_LOG_LEVEL", "info").lower()
proc_name = "queuectl-api"
# gunicorn's control socket is one fixed path per user: two servers on a host (tests, `make dev`) would fight over it.
control_socket_disable = True


def on_starting(server):
    """Check the database before the workers boot: a bad path is one clear error, not N tracebacks."""
    from queuectl_core.errors import DatabaseUnusable
    from queuectl_core.store import open_store

    try:
        open_store(os.environ.get("QUEUECTL_DB") or None).close()
    except DatabaseUnusable as error:
        print(f"queuectl-api: error: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
