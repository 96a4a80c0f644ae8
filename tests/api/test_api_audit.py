"""The audit log through the API (CONTRACT Part 2): every state-changing route writes exactly one entry with the actor
api:operator (bearer token or dashboard session alike); GET /api/v1/audit pages it, newest first; refused requests
write nothing. On SQLite and PostgreSQL (this module's `db_path`)."""

import pytest
from api_support import AUTH, make_dead
from helpers import BACKENDS, queue_location
from queuectl_core.validation import check_job


@pytest.fixture(params=BACKENDS)
def db_path(request, tmp_path):
    """Both backends here (the API's other tests run on SQLite)."""
    yield from queue_location(request.param, tmp_path)


def entries(store):
    return [(entry["actor"], entry["action"], entry["target"]) for entry in store.audit_log(limit=1000)]


def test_each_api_action_records_one_entry(client, store):
    for job_id in ("dead-1", "dead-2"):
        make_dead(store, job_id)
    steps = [
        ("POST", "/api/v1/jobs", {"id": "new", "command": "echo hi", "delay": 3600}, 201, ("enqueue", "new")),
        ("POST", "/api/v1/jobs/new/cancel", None, 200, ("cancel", "new")),
        ("POST", "/api/v1/jobs/dead-1/retry", None, 200, ("retry", "dead-1")),
        ("POST", "/api/v1/dlq/retry-all", None, 200, ("retry-all", "dlq")),
        ("POST", "/api/v1/purge", {"states": ["cancelled"]}, 200, ("purge", "cancelled")),
        ("POST", "/api/v1/dlq/purge", None, 200, ("dlq-purge", "dlq")),
        ("POST", "/api/v1/pause", None, 200, ("pause", "queue")),
        ("POST", "/api/v1/resume", None, 200, ("resume", "queue")),
        ("PUT", "/api/v1/settings", {"max_retries": 7, "backoff_base": 3}, 200,
         ("config-set", "max_retries,backoff_base")),
        ("POST", "/api/v1/workers/stop", None, 202, ("worker-stop", "workers")),
        # Reads and refusals record nothing.
        ("GET", "/api/v1/jobs/dead-2", None, 200, None),
        ("POST", "/api/v1/purge", {"states": ["completed"], "dry_run": True}, 200, None),
        ("POST", "/api/v1/jobs", {"id": "dead-2", "command": "x"}, 409, None),
        ("POST", "/api/v1/jobs", {"command": ""}, 400, None),
        ("POST", "/api/v1/jobs/dead-2/retry", None, 409, None),
        ("PUT", "/api/v1/settings", {"max_retries": -1}, 400, None),
    ]
    for method, path, body, status, expected in steps:
        before = len(entries(store))
        response = client.open(path, method=method, json=body, headers=AUTH)
        assert response.status_code == status, (path, response.get_json())
        recorded = entries(store)
        if expected is None:
            assert len(recorded) == before, path
        else:
            assert len(recorded) == before + 1, path
            assert recorded[0] == ("api:operator", *expected), path
    log = {entry["action"]: entry["details"] for entry in store.audit_log()}
    assert log["enqueue"] == {"command": "echo hi"}
    assert log["config-set"] == {"max_retries": {"from": 3, "to": 7}, "backoff_base": {"from": 2, "to": 3}}
    assert log["purge"] == {"count": 1, "older_than_seconds": 0, "states": ["cancelled"]}
    # Without a token nothing happens and nothing is recorded.
    assert client.post("/api/v1/pause").status_code == 401
    assert len(entries(store)) == 10


def test_a_dashboard_session_acts_as_the_operator(logged_in, store):
    client, csrf = logged_in
    assert client.post("/api/v1/pause", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.post("/api/v1/resume").status_code == 403  # no CSRF token: refused, not recorded
    assert entries(store) == [("api:operator", "pause", "queue")]


def test_the_audit_route_pages_the_log_newest_first(client, store):
    assert client.get("/api/v1/audit").status_code == 401
    assert client.get("/api/v1/audit", headers=AUTH).get_json() == {"entries": []}
    for n in range(5):
        store.pause(actor=f"cli:user{n}@host")
    page = client.get("/api/v1/audit?limit=2", headers=AUTH).get_json()["entries"]
    assert [entry["actor"] for entry in page] == ["cli:user4@host", "cli:user3@host"]
    assert list(page[0]) == ["at", "actor", "action", "target", "details"]
    assert page[0]["details"] == {"changed": False} and page[0]["at"].endswith("Z")
    rest = client.get("/api/v1/audit?limit=10&offset=2", headers=AUTH).get_json()["entries"]
    assert [entry["actor"] for entry in rest] == ["cli:user2@host", "cli:user1@host", "cli:user0@host"]
    assert [e["actor"] for e in client.get("/api/v1/audit", headers=AUTH).get_json()["entries"]] == [
        f"cli:user{n}@host" for n in range(4, -1, -1)]


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "offset=-1", "offset=", "since=1",
                                   "limit=1&limit=2"])
def test_bad_audit_parameters_are_a_400(client, query):
    response = client.get(f"/api/v1/audit?{query}", headers=AUTH)
    assert response.status_code == 400 and response.get_json()["error"]


def test_schedule_changes_and_reruns_through_the_api_record_one_entry_each(client, store):
    store.enqueue(check_job({"id": "original", "command": "true"}))
    steps = [
        ("POST", "/api/v1/schedules", {"name": "hourly", "cron": "0 * * * *", "job": {"command": "true"}}, 201,
         ("schedule-add", "hourly")),
        ("POST", "/api/v1/schedules/hourly/pause", None, 200, ("schedule-pause", "hourly")),
        ("POST", "/api/v1/schedules/hourly/resume", None, 200, ("schedule-resume", "hourly")),
        ("POST", "/api/v1/schedules/hourly/run", None, 201, ("schedule-run", "hourly")),
        ("DELETE", "/api/v1/schedules/hourly", None, 200, ("schedule-rm", "hourly")),
    ]
    for method, path, body, status, expected in steps:
        before = len(entries(store))
        response = client.open(path, method=method, headers=AUTH, json=body)
        assert response.status_code == status, (path, response.get_json())
        recorded = entries(store)
        assert len(recorded) == before + 1 and recorded[0] == ("api:operator", *expected), (path, recorded[:2])
    response = client.post("/api/v1/jobs/original/rerun", headers=AUTH)
    assert response.status_code == 201
    assert entries(store)[0] == ("api:operator", "rerun", response.get_json()["id"])
