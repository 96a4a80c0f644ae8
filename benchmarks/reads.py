"""Reading a big queue: `queuectl status --json` (a process), GET /api/v1/stats and the dashboard's
job list call (GET /api/v1/jobs as jobs.js sends it) from gunicorn, on a database of 1M jobs."""

import http.client
import os
import secrets
import socket
import time

from common import BIN, PYTHON, QUEUECTL, REPO, median, scratch_dir, start, stop, wait_for, wall

# What the dashboard's jobs page asks for when it opens (static/jobs.js: query()).
DASHBOARD_JOBS = "/api/v1/jobs?sort=created_at&order=desc&limit=50&offset=0"


def in_process(location, runs=10):
    """Median milliseconds of the store calls behind the three figures (the database's share);
    `location` is a SQLite path or a postgresql:// URL."""
    from queuectl_core.store import open_store

    store = open_store(location)
    try:
        result = {}
        for name, call in (("status", store.status), ("counts", store.counts),
                           ("search_jobs", lambda: store.search_jobs(limit=50))):
            times = []
            for _ in range(runs):
                begin = time.perf_counter()
                call()
                times.append((time.perf_counter() - begin) * 1000)
            result[f"{name}_ms"] = median(times)
        return result
    finally:
        store.close()


def status_cli(path, runs=10):
    """Median wall milliseconds of one `queuectl status --json` process on `path`, interleaved with the
    same command on an empty queue, `queuectl --help` and a bare `python -c pass` (the start-up's share)."""
    from queuectl_core.store import SqliteStore

    empty = os.path.join(scratch_dir("status-empty"), "queue.db")
    SqliteStore(empty).close()
    times = {"big": [], "empty": [], "help": [], "python": []}
    for _ in range(runs):
        times["big"] += wall([QUEUECTL, "--db", path, "status", "--json"], runs=1)
        times["empty"] += wall([QUEUECTL, "--db", empty, "status", "--json"], runs=1)
        times["help"] += wall([QUEUECTL, "--help"], runs=1)
        times["python"] += wall([PYTHON, "-c", "pass"], runs=1)
    return {"median_ms": median(times["big"]) * 1000, "empty_ms": median(times["empty"]) * 1000,
            "help_ms": median(times["help"]) * 1000, "python_pass_ms": median(times["python"]) * 1000,
            "runs": runs}


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(path, runs=20):
    """Median milliseconds of GET /api/v1/stats and of the dashboard's job list, one request per
    connection (gunicorn's sync workers close each), from a gunicorn started as the contract says."""
    try:
        import queuectl_api  # noqa: F401
    except ImportError as error:
        return {"skipped": f"services/api is not importable yet ({error})"}
    token = secrets.token_hex(16)
    port = _free_port()
    log = open(os.path.join(scratch_dir("api"), "gunicorn.log"), "wb")
    env = {"QUEUECTL_DB": path, "QUEUECTL_API_TOKEN": token, "QUEUECTL_API_BIND": f"127.0.0.1:{port}",
           "QUEUECTL_API_WORKERS": "2", "QUEUECTL_API_ACCESS_LOG": os.devnull, "QUEUECTL_LOG_LEVEL": "warning"}
    server = start([os.path.join(BIN, "gunicorn"), "-c", os.path.join(REPO, "config", "gunicorn.conf.py"),
                    "queuectl_api:create_app()"], env=env, stderr=log, cwd=REPO)

    def get(url):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            begin = time.perf_counter()
            connection.request("GET", url, headers={"Authorization": f"Bearer {token}"})
            response = connection.getresponse()
            body = response.read()
            elapsed = time.perf_counter() - begin
            if response.status != 200:
                raise RuntimeError(f"GET {url}: {response.status} {body[:200]!r}")
            return elapsed
        finally:
            connection.close()

    try:
        def healthy():
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited {server.returncode}; see {log.name}")
            try:
                return get("/healthz") is not None
            except (OSError, RuntimeError):
                return False

        wait_for(healthy, 30, 0.1, what="gunicorn to answer /healthz")
        result = {}
        for name, url in (("stats", "/api/v1/stats"), ("jobs", DASHBOARD_JOBS)):
            get(url)  # both gunicorn workers warm: the first request opens the store
            get(url)
            result[f"{name}_ms"] = median([get(url) * 1000 for _ in range(runs)])
        result["runs"] = runs
        return result
    finally:
        stop(server)
        log.close()
