"""The API served by real gunicorn processes on a free 127.0.0.1 port, with a real worker on the same file."""

import json
import os
import runpy
import signal
import sqlite3
import subprocess
import time

from api_support import AUTH, GUNICORN, GUNICORN_CONF, REPO, TOKEN, http_call, http_json, start_gunicorn
from helpers import wait_for
from queuectl_api.config import MAX_BODY_BYTES


def test_gunicorn_refuses_to_start_without_a_token_and_says_how_to_set_one(db_path):
    env = {key: value for key, value in os.environ.items() if key != "QUEUECTL_API_TOKEN"}
    env.update(QUEUECTL_DB=str(db_path), QUEUECTL_API_BIND="127.0.0.1:0")
    result = subprocess.run([GUNICORN, "-c", GUNICORN_CONF, "queuectl_api:create_app()"], env=env, cwd=str(REPO),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "QUEUECTL_API_TOKEN is not set" in result.stderr
    assert "secrets.token_urlsafe" in result.stderr
    assert "Traceback" not in result.stderr


def test_gunicorn_refuses_to_start_on_an_unusable_database(tmp_path, processes):
    env = {**os.environ, "QUEUECTL_API_TOKEN": TOKEN, "QUEUECTL_DB": str(tmp_path / "missing" / "q.db"),
           "QUEUECTL_API_BIND": "127.0.0.1:0"}
    result = subprocess.run([GUNICORN, "-c", GUNICORN_CONF, "queuectl_api:create_app()"], env=env, cwd=str(REPO),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_config_binds_127_0_0_1_port_8080_unless_told_otherwise(monkeypatch):
    monkeypatch.setenv("QUEUECTL_API_TOKEN", TOKEN)
    monkeypatch.delenv("QUEUECTL_API_BIND", raising=False)
    assert runpy.run_path(GUNICORN_CONF)["bind"] == ["127.0.0.1:8080"]
    monkeypatch.setenv("QUEUECTL_API_BIND", "0.0.0.0:9000")
    assert runpy.run_path(GUNICORN_CONF)["bind"] == ["0.0.0.0:9000"]


def test_a_job_enqueued_over_http_is_run_by_a_real_worker(server, db_path, processes):
    processes.start_workers(db_path, "--count", "1")
    status, record = http_json("POST", f"{server}/api/v1/jobs", {"command": "echo from-http", "id": "http-1"}, AUTH)
    assert status == 201 and record["state"] == "pending"

    def completed():
        job = http_json("GET", f"{server}/api/v1/jobs/http-1", headers=AUTH)[1]
        return job if job["state"] == "completed" else None

    job = wait_for(completed, timeout=30, message="the job to complete")
    assert job["history"][0]["exit_code"] == 0
    assert "from-http" in job["history"][0]["output"]
    stats = http_json("GET", f"{server}/api/v1/stats", headers=AUTH)[1]
    assert stats["jobs"]["completed"] == 1 and len(stats["workers"]) == 1
    assert http_call("POST", f"{server}/api/v1/workers/stop", b"", AUTH)[0] == 202
    wait_for(lambda: not http_json("GET", f"{server}/api/v1/stats", headers=AUTH)[1]["workers"], timeout=30,
             message="the worker to stop")


def test_the_real_server_answers_401_413_404_and_405_as_json(server):
    for method, url, body, headers, expected in [
        ("GET", "/api/v1/stats", None, {}, 401),
        ("GET", "/api/v1/stats", None, {"Authorization": "Bearer wrong"}, 401),
        ("POST", "/api/v1/jobs", b"x" * (MAX_BODY_BYTES + 10), AUTH, 413),
        ("POST", "/api/v1/jobs", b"{not json", AUTH, 400),
        ("GET", "/api/v1/jobs?limit=5000", None, AUTH, 400),
        ("GET", "/api/v1/missing", None, AUTH, 404),
        ("DELETE", "/api/v1/jobs", None, AUTH, 405),
    ]:
        status, response_headers, raw = http_call(method, f"{server}{url}", body, headers)
        assert status == expected, (method, url, status, raw[:200])
        assert response_headers["Content-Type"] == "application/json"
        assert json.loads(raw)["error"]


def test_every_gunicorn_worker_reports_the_same_metrics(server, db_path):
    for index in range(3):
        http_json("POST", f"{server}/api/v1/jobs", {"command": "true", "id": f"m{index}"}, AUTH)
    # Several scrapes land on both gunicorn workers; the gauges come from the database, so they agree.
    for _ in range(6):
        status, _, raw = http_call("GET", f"{server}/metrics")
        assert status == 200
        assert 'queuectl_jobs{queue="default",state="pending"} 3.0' in raw.decode()


def test_gunicorn_stops_gracefully_on_sigterm(processes, db_path):
    start_gunicorn(processes, db_path)
    process = processes.processes[-1]
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def test_a_request_that_meets_a_locked_database_answers_503_before_gunicorn_would_kill_its_worker(sqlite_path,
                                                                                                processes):
    """SQLite waits for its write lock up to the API's request wait (10 s), well under gunicorn's 30 s worker
    timeout: the client gets a 503, not a dropped connection; reads go on meanwhile (WAL)."""
    base = start_gunicorn(processes, sqlite_path)
    holder = sqlite3.connect(sqlite_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer that keeps the lock (a bulk enqueue, a frozen process)
    try:
        started = time.monotonic()
        status, _, raw = http_call("POST", f"{base}/api/v1/jobs", {"command": "true"},
                                   {**AUTH, "Content-Type": "application/json"}, timeout=60)
        waited, body = time.monotonic() - started, json.loads(raw)
        assert status == 503 and body["error"].startswith("database error: "), (status, body)
        assert waited < 25  # answered, by this server, long before gunicorn's 30 s would have killed the worker
        assert http_json("GET", f"{base}/api/v1/stats", headers=AUTH)[0] == 200
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert http_json("POST", f"{base}/api/v1/jobs", {"command": "true"}, AUTH)[0] == 201
