"""Enqueueing over HTTP (issue 18): jobs/s through POST /api/v1/jobs/batch with 10,000-job batches, beside one job
per POST /api/v1/jobs, both against gunicorn (the contract's settings) on a fresh SQLite file."""

import http.client
import json
import os
import secrets
import socket
import time

from common import BIN, REPO, scratch_dir, start, stop, wait_for

BATCH = 10_000


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def measure(location=None, batches=5, one_seconds=2.0):
    """{'batch_jobs_per_second', 'one_jobs_per_second', ...}: the best of `batches` batches of 10,000 jobs, and
    one-job POSTs (each on a new connection, as gunicorn's sync workers close each) for `one_seconds`."""
    try:
        import queuectl_api  # noqa: F401
    except ImportError as error:
        return {"skipped": f"services/api is not importable ({error})"}
    where = scratch_dir("batch")
    location = location or os.path.join(where, "queue.db")
    token = secrets.token_hex(16)
    port = _free_port()
    log = open(os.path.join(where, "gunicorn.log"), "wb")
    env = {"QUEUECTL_DB": location, "QUEUECTL_API_TOKEN": token, "QUEUECTL_API_BIND": f"127.0.0.1:{port}",
           "QUEUECTL_API_WORKERS": "2", "QUEUECTL_API_ACCESS_LOG": os.devnull, "QUEUECTL_LOG_LEVEL": "warning"}
    server = start([os.path.join(BIN, "gunicorn"), "-c", os.path.join(REPO, "config", "gunicorn.conf.py"),
                    "queuectl_api:create_app()"], env=env, stderr=log, cwd=REPO)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(method, url, body=None, expect=200):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request(method, url, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            if response.status != expect:
                raise RuntimeError(f"{method} {url}: {response.status} {data[:200]!r}")
            return data
        finally:
            connection.close()

    try:
        def healthy():
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited {server.returncode}; see {log.name}")
            try:
                return call("GET", "/healthz") is not None
            except (OSError, RuntimeError):
                return False

        wait_for(healthy, 30, 0.1, what="gunicorn to answer /healthz")
        for _ in range(2):  # both workers open the store
            call("GET", "/api/v1/stats")
        # The body is built before the clock starts: what is timed is the client's send and the server's work.
        rates = []
        for number in range(batches):
            body = json.dumps([{"command": f"echo {number}-{n}", "priority": n % 3} for n in range(BATCH)]).encode()
            begin = time.perf_counter()
            ids = json.loads(call("POST", "/api/v1/jobs/batch", body, expect=201))["ids"]
            rates.append(len(ids) / (time.perf_counter() - begin))
        one = json.dumps({"command": "echo one"}).encode()
        count, begin = 0, time.perf_counter()
        while time.perf_counter() - begin < one_seconds:
            call("POST", "/api/v1/jobs", one, expect=201)
            count += 1
        one_rate = count / (time.perf_counter() - begin)
        return {"batch_jobs_per_second": max(rates), "batch_rates": rates, "batch_size": BATCH,
                "one_jobs_per_second": one_rate, "one_requests": count, "body_bytes": len(body)}
    finally:
        stop(server)
        log.close()
