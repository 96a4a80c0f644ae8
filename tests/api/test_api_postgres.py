"""The API and dashboard on PostgreSQL: the same routes and answers as on SQLite, through real gunicorn."""

import socket
import threading
from urllib.parse import urlsplit

import pytest
from api_support import AUTH, TOKEN, http_json, make_dead, start_gunicorn
from helpers import busy_worker
from queuectl_api import create_app
from queuectl_core.store import open_store
from relay import Relay


def test_gunicorn_on_postgresql_serves_the_contracts_routes(pg_url, processes):
    store = open_store(pg_url)
    make_dead(store, "gone")
    store.close()
    base = start_gunicorn(processes, pg_url)
    assert http_json("GET", f"{base}/healthz") == (200, {"status": "ok"})
    assert http_json("GET", f"{base}/api/v1/stats")[0] == 401
    status, record = http_json("POST", f"{base}/api/v1/jobs", {"id": "pg1", "command": "echo hi"}, AUTH)
    assert status == 201 and record["state"] == "pending"
    assert http_json("POST", f"{base}/api/v1/jobs", {"id": "pg1", "command": "x"}, AUTH)[0] == 409
    assert http_json("POST", f"{base}/api/v1/jobs", {"command": "x", "max_retries": 1.0}, AUTH)[0] == 400
    status, body = http_json("GET", f"{base}/api/v1/jobs?state=pending&limit=5", headers=AUTH)
    assert status == 200 and [job["id"] for job in body["jobs"]] == ["pg1"]
    assert http_json("GET", f"{base}/api/v1/jobs/pg1", headers=AUTH)[1]["history"] == []
    assert http_json("POST", f"{base}/api/v1/jobs/pg1/retry", headers=AUTH)[0] == 409
    status, record = http_json("POST", f"{base}/api/v1/jobs/gone/retry", headers=AUTH)
    assert status == 200 and (record["state"], record["attempts"]) == ("pending", 0)
    status, stats = http_json("GET", f"{base}/api/v1/stats", headers=AUTH)
    assert status == 200 and stats["jobs"]["pending"] == 2
    status, series = http_json("GET", f"{base}/api/v1/throughput", headers=AUTH)
    assert status == 200 and sum(minute["failed"] for minute in series["minutes"]) == 1
    for _ in range(20):  # more requests than the pool has connections: each is given back
        assert http_json("GET", f"{base}/api/v1/jobs/pg1", headers=AUTH)[0] == 200


def app_on(url):
    return create_app({"QUEUECTL_DB": url, "QUEUECTL_API_TOKEN": TOKEN, "TESTING": True}).test_client()


def test_workers_show_their_slots_and_running_jobs_in_the_api_and_the_metrics(pg_url):
    store = open_store(pg_url)
    jobs = busy_worker(store, "w4", 4, [30, 10, 2])
    store.close()
    client = app_on(pg_url)
    [worker] = client.get("/api/v1/workers", headers=AUTH).get_json()["workers"]
    assert worker["concurrency"] == 4 and [job["id"] for job in worker["jobs"]] == jobs
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'queuectl_worker_slots{state="busy",worker="w4"} 3.0' in metrics
    assert 'queuectl_worker_slots{state="idle",worker="w4"} 1.0' in metrics


def test_a_database_lost_in_the_middle_of_a_request_answers_503_with_a_json_error(pg_url):
    link = Relay(urlsplit(pg_url).port)
    client = app_on(pg_url.replace(f":{urlsplit(pg_url).port}/", f":{link.port}/"))
    assert client.post("/api/v1/jobs", headers=AUTH, json={"id": "waits", "command": "true"}).status_code == 201
    threading.Timer(1.0, link.cut).start()  # while the request below polls the job's state
    response = client.get("/api/v1/jobs/waits/wait?timeout=10", headers=AUTH)
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json()["error"].startswith("database error: ")


def test_a_database_server_that_refuses_connections_answers_503_on_every_route_that_needs_it(pg_url):
    with socket.create_server(("127.0.0.1", 0)) as reserved:
        closed_port = reserved.getsockname()[1]
    client = app_on(f"postgresql://postgres@127.0.0.1:{closed_port}/test")
    for method, path in (("GET", "/api/v1/stats"), ("GET", "/api/v1/jobs/x"), ("POST", "/api/v1/jobs")):
        response = client.open(path, method=method, headers=AUTH, json={"command": "true"})
        assert response.status_code == 503 and "error" in response.get_json()
    assert client.get("/healthz").status_code == 503


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_nul_byte_in_an_id_or_a_filter_answers_400_or_404_on_both_backends(backend, sqlite_path, pg_url):
    client = app_on(str(sqlite_path) if backend == "sqlite" else pg_url)
    for path in ("/api/v1/jobs/a%00b", "/api/v1/jobs/a%00b/logs", "/api/v1/jobs?q=a%00b"):
        response = client.get(path, headers=AUTH)
        assert response.status_code in (200, 400, 404), (path, response.get_data(as_text=True))
        if response.status_code != 200:
            assert "error" in response.get_json()
    for path in ("/api/v1/jobs/a%00b/cancel", "/api/v1/jobs/a%00b/retry"):
        assert client.post(path, headers=AUTH).status_code in (400, 404)
