"""The API and dashboard on PostgreSQL: the same routes and answers as on SQLite, through real gunicorn."""

from api_support import AUTH, http_json, make_dead, start_gunicorn
from queuectl_core.store import open_store


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
