"""Named queues through the API: list, limit, rate, pause and resume per queue, with the CLI's checks (400 naming
the bad name or value, nothing changed) and an audit entry per change. On SQLite and PostgreSQL."""

import pytest
from api_support import AUTH, READ_TOKEN, TOKEN
from helpers import BACKENDS, queue_location
from queuectl_api import create_app
from queuectl_core.validation import check_job


@pytest.fixture(params=BACKENDS)
def db_path(request, tmp_path):
    """Both backends here (the API's other tests run on SQLite)."""
    yield from queue_location(request.param, tmp_path)


def test_queues_are_listed_limited_rated_paused_and_resumed_through_the_api(client, store):
    assert client.get("/api/v1/queues", headers=AUTH).get_json() == {"queues": []}
    for queue in ("deploy", "deploy", "encode"):
        store.enqueue(check_job({"command": "true", "queue": queue}))
    listed = client.get("/api/v1/queues", headers=AUTH).get_json()["queues"]
    assert [(entry["name"], entry["counts"]["pending"], entry["limit"], entry["rate"], entry["paused"])
            for entry in listed] == [("deploy", 2, None, None, False), ("encode", 1, None, None, False)]
    assert listed == store.queue_list()

    answer = client.put("/api/v1/queues/deploy/limit", json={"limit": 1}, headers=AUTH)
    assert answer.status_code == 200 and answer.get_json()["limit"] == 1
    answer = client.put("/api/v1/queues/encode/rate", json={"rate": "100/30s"}, headers=AUTH)
    assert answer.status_code == 200 and answer.get_json()["rate"] == store.queue_info("encode")["rate"]
    assert store.queue_info("deploy")["limit"] == 1 and store.queue_info("encode")["rate"] is not None

    paused = client.post("/api/v1/queues/encode/pause", headers=AUTH).get_json()
    assert (paused["paused"], paused["changed"]) == (True, True) and paused["paused_since"]
    assert store.paused_since("encode") == paused["paused_since"] and store.paused_since() is None
    again = client.post("/api/v1/queues/encode/pause", headers=AUTH).get_json()
    assert (again["paused"], again["changed"], again["paused_since"]) == (True, False, paused["paused_since"])
    assert client.get("/api/v1/queues/encode", headers=AUTH).get_json() == {**store.queue_info("encode")}
    resumed = client.post("/api/v1/queues/encode/resume", headers=AUTH).get_json()
    assert (resumed["paused"], resumed["changed"], resumed["paused_since"]) == (False, True, None)
    assert client.post("/api/v1/queues/encode/resume", headers=AUTH).get_json()["changed"] is False

    assert client.put("/api/v1/queues/deploy/limit", json={"limit": None}, headers=AUTH).get_json()["limit"] is None
    assert client.put("/api/v1/queues/encode/rate", json={"rate": None}, headers=AUTH).get_json()["rate"] is None
    # A queue with a setting is listed before it holds a job; one without either is zeros and nulls.
    client.put("/api/v1/queues/later/limit", json={"limit": 3}, headers=AUTH)
    assert "later" in [entry["name"] for entry in client.get("/api/v1/queues", headers=AUTH).get_json()["queues"]]
    empty = client.get("/api/v1/queues/nothing-here", headers=AUTH).get_json()
    assert (sum(empty["counts"].values()), empty["limit"], empty["rate"], empty["paused"]) == (0, None, None, False)

    actions = [(entry["actor"], entry["action"], entry["target"]) for entry in store.audit_log(limit=20)]
    assert actions[::-1] == [
        ("api:operator", "queue-limit", "deploy"), ("api:operator", "queue-rate", "encode"),
        ("api:operator", "pause", "queue encode"), ("api:operator", "pause", "queue encode"),
        ("api:operator", "resume", "queue encode"), ("api:operator", "resume", "queue encode"),
        ("api:operator", "queue-limit", "deploy"), ("api:operator", "queue-rate", "encode"),
        ("api:operator", "queue-limit", "later")]


@pytest.mark.parametrize("method, path, body, words", [
    ("put", "/api/v1/queues/bad%20name/limit", {"limit": 2}, "queue must be 1-64 characters"),
    ("put", "/api/v1/queues/" + "q" * 65 + "/limit", {"limit": 2}, "queue must be 1-64 characters"),
    ("put", "/api/v1/queues/q/limit", {"limit": 0}, "limit must be an integer from 1"),
    ("put", "/api/v1/queues/q/limit", {"limit": 2.0}, "limit must be an integer from 1"),
    ("put", "/api/v1/queues/q/limit", {"limit": "2"}, "limit must be an integer from 1"),
    ("put", "/api/v1/queues/q/limit", {"limit": True}, "limit must be an integer from 1"),
    ("put", "/api/v1/queues/q/limit", {}, "limit is required"),
    ("put", "/api/v1/queues/q/limit", {"limit": 2, "rate": "1/s"}, "unknown key 'rate'"),
    ("put", "/api/v1/queues/q/limit", None, "request body must be a JSON object"),
    ("put", "/api/v1/queues/q/rate", {"rate": "10/fortnight"}, "rate must be N/PERIOD"),
    ("put", "/api/v1/queues/q/rate", {"rate": "0/m"}, "rate must be N/PERIOD"),
    ("put", "/api/v1/queues/q/rate", {"rate": "1/2d"}, "rate must be N/PERIOD"),
    ("put", "/api/v1/queues/q/rate", {"rate": " 010/m"}, "without spaces or leading zeros"),
    ("put", "/api/v1/queues/q/rate", {"rate": 10}, "rate must be N/PERIOD"),
    ("put", "/api/v1/queues/q/rate", {"limit": 1}, "unknown key 'limit'"),
    ("post", "/api/v1/queues/bad%2Fname/pause", None, "queue must be"),
    ("post", "/api/v1/queues/b%C3%A4d/resume", None, "queue must be"),
    ("get", "/api/v1/queues/b%C3%A4d", None, "queue must be"),
    ("get", "/api/v1/queues?state=x", None, "unknown query parameter 'state'"),
])
def test_bad_input_answers_400_naming_it_and_changes_nothing(client, store, method, path, body, words):
    answer = getattr(client, method)(path, json=body, headers=AUTH)
    assert answer.status_code in (400, 404), (path, body, answer.get_json())
    if answer.status_code == 400:
        assert words in answer.get_json()["error"], answer.get_json()
    else:  # a %2F is a second path segment: no such route
        assert "/" in path.replace("%2F", "/")[len("/api/v1/queues/"):]
    assert store.queue_list() == [] and store.audit_log() == []


def test_a_viewer_reads_the_queues_and_changes_none(db_path, store):
    app = create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN,
                      "QUEUECTL_API_READ_TOKEN": READ_TOKEN, "TESTING": True})
    client = app.test_client()
    viewer = {"Authorization": f"Bearer {READ_TOKEN}"}
    store.set_queue_limit("deploy", 1)
    assert client.get("/api/v1/queues", headers=viewer).get_json()["queues"][0]["limit"] == 1
    for method, path, body in (("put", "limit", {"limit": 5}), ("put", "rate", {"rate": "1/s"}),
                               ("post", "pause", None), ("post", "resume", None)):
        answer = getattr(client, method)(f"/api/v1/queues/deploy/{path}", json=body, headers=viewer)
        assert answer.status_code == 403 and "read-only" in answer.get_json()["error"]
    entry = store.queue_info("deploy")
    assert (entry["limit"], entry["rate"], entry["paused"]) == (1, None, False)
