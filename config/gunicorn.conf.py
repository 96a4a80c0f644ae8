"""gunicorn settings for queuectl's API and dashboard.

    gunicorn -c config/gunicorn.conf.py "queuectl_api:create_app()"

Reads QUEUECTL_DB (the SQLite file) and QUEUECTL_API_TOKEN (required, at least 32 characters);
QUEUECTL_API_READ_TOKEN (optional) is the viewer's token; QUEUECTL_API_BIND overrides the address (default
127.0.0.1:8080; a container sets 0.0.0.0:8080), QUEUECTL_API_WORKERS the process count.

Dashboard sessions are signed with QUEUECTL_SESSION_SECRET when set, else with a random secret made here in the
master before it forks the workers, so that every worker (and every worker it respawns) accepts every session;
restarting the server then logs everyone out.
"""

import os
import sys


def _startup_problem():
    try:
        from queuectl_api.config import startup_problem
    except ImportError:  # the package is installed beside gunicorn; this only guards a broken install
        return None if os.environ.get("QUEUECTL_API_TOKEN", "").strip() else "QUEUECTL_API_TOKEN is not set."
    return startup_problem(os.environ)


# Refuse to start without a usable token, before any worker boots, with a message that says what to do.
_problem = _startup_problem()
if _problem:
    print(f"queuectl-api: error: {_problem}", file=sys.stderr, flush=True)
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
    """In the master, before any worker: make the session secret every worker inherits, and check the database
    (a bad path is one clear error, not N tracebacks)."""
    from queuectl_api.config import session_secret
    from queuectl_core.errors import DatabaseUnusable
    from queuectl_core.store import open_store

    session_secret()  # generated now, in the master: the forked workers share it

    try:
        open_store(os.environ.get("QUEUECTL_DB") or None).close()
    except DatabaseUnusable as error:
        print(f"queuectl-api: error: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
