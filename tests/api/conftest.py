"""Fixtures of the API tests: an app on a fresh SQLite file, its test client, real gunicorn, job helpers."""

import socket
import sys
from pathlib import Path

import pytest
from api_http import http_call
from helpers import wait_for
from queuectl_api import create_app
from queuectl_core.timeutil import now_ms
from queuectl_core.transitions import FAILED, Outcome, decide
from queuectl_core.validation import check_job

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REPO = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
GUNICORN_CONF = str(REPO / "config" / "gunicorn.conf.py")


@pytest.fixture
def app(db_path):
    """The Flask app on a fresh database file, with a known token."""
    return create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN, "TESTING": True})


@pytest.fixture
def client(app):
    """A Flask test client (no credentials unless a test sends them)."""
    return app.test_client()


@pytest.fixture
def logged_in(client):
    """A test client with a dashboard session; returns (client, csrf token)."""
    client.get("/login")
    with client.session_transaction() as session:
        csrf = session["csrf"]
    response = client.post("/login", data={"token": TOKEN, "csrf_token": csrf, "next": "/"})
    assert response.status_code == 302
    with client.session_transaction() as session:
        return client, session["csrf"]


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
        assert process.poll() is None, f"gunicorn exited: {process.stderr.read().decode()}"
        try:
            return http_call("GET", f"{base}/healthz")[0] == 200
        except OSError:
            return False

    wait_for(answers, timeout=30, message="gunicorn to answer /healthz")
    return base


@pytest.fixture
def server(processes, db_path):
    """Base URL of a real gunicorn serving the app on `db_path`."""
    return start_gunicorn(processes, db_path)


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
    store.finish_run(claim, outcome, "some output\n", decide(0, 0, outcome, store.get_settings(), now_ms()))
    return store.get_job(job_id)
