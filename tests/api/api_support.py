"""Helpers of the API tests: the token, a real gunicorn on a free port, HTTP calls, jobs in given states.

(A module of its own, not conftest.py, so that test modules import it by a name no other directory uses.)"""

import json
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

from helpers import wait_for
from queuectl_core.lifecycle import FAILED, Outcome
from queuectl_core.validation import check_job

TOKEN = "test-token-0123456789abcdef-0123456789"
READ_TOKEN = "read-token-0123456789abcdef-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REPO = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
GUNICORN_CONF = str(REPO / "config" / "gunicorn.conf.py")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(processes, db_path, token=TOKEN, extra_env=None):
    """Start gunicorn (owned by `processes`) on a free 127.0.0.1 port; return its base URL once it answers."""
    port = free_port()
    env = {"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": token, "QUEUECTL_API_BIND": f"127.0.0.1:{port}",
           "QUEUECTL_API_ACCESS_LOG": "/dev/null", **(extra_env or {})}
    process = processes.start([GUNICORN, "-c", GUNICORN_CONF, "queuectl_api:create_app()"], env=env, cwd=str(REPO))
    base = f"http://127.0.0.1:{port}"

    def answers():
        assert process.poll() is None, f"gunicorn exited: {processes.log(process)}"
        try:
            return http_call("GET", f"{base}/healthz")[0] == 200
        except OSError:
            return False

    wait_for(answers, timeout=30, message="gunicorn to answer /healthz")
    return base


def add_job(store, command="true", **keys):
    """Enqueue a job through the shared validation; return its record."""
    return store.enqueue(check_job({"command": command, **keys}))


def make_dead(store, job_id, command="exit 3", error="exit code 3"):
    """A job that failed its only run and is now dead (claimed and finished without a worker).

    Call it while no other job is due, so that the claim takes this one."""
    add_job(store, command, id=job_id, max_retries=0)
    claim = store.claim_next("test-worker", 30)
    assert claim.id == job_id
    outcome = Outcome(FAILED, 3, error)
    store.finish_run(claim, outcome, "some output\n")
    return store.get_job(job_id)


def http_call(method, url, body=None, headers=None, timeout=10):
    """Send one request; return (status, headers, body bytes) without raising on 4xx/5xx."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def http_json(method, url, body=None, headers=None):
    """Send one request; return (status, decoded JSON body)."""
    status, _, raw = http_call(method, url, body, headers)
    return status, json.loads(raw)
