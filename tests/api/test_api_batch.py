"""POST /api/v1/jobs/batch: up to 10,000 jobs, all or nothing; an error names the index of the first bad job."""

import pytest
from api_support import AUTH, READ_TOKEN, TOKEN
from queuectl_api import create_app
from queuectl_core.store import open_store

URL = "/api/v1/jobs/batch"


def post(client, body, headers=AUTH):
    return client.post(URL, json=body, headers=headers)


def stored_ids(db_path):
    store = open_store(str(db_path))
    try:
        return sorted(job["id"] for job in store.list_jobs(limit=100_000))
    finally:
        store.close()


def test_a_batch_is_stored_in_order_with_generated_ids(client, db_path):
    jobs = [{"id": "first", "command": "true"}, {"command": "echo two", "priority": 5},
            {"id": "third", "command": "true", "after": ["first"]}]
    response = post(client, jobs)
    assert response.status_code == 201, response.json
    ids = response.json["ids"]
    assert ids[0] == "first" and ids[2] == "third" and len(ids) == 3
    store = open_store(str(db_path))
    try:
        assert store.get_job(ids[1])["command"] == "echo two"
        assert store.get_job(ids[1])["priority"] == 5
        assert store.get_job("third")["after"] == ["first"]
        entry = store.audit_log()[0]
    finally:
        store.close()
    assert entry["actor"] == "api:operator" and entry["action"] == "enqueue-batch"
    assert entry["details"] == {"count": 3, "first": "first", "last": "third"}


@pytest.mark.parametrize(("jobs", "index", "words"), [
    ([{"command": "true"}, {"command": "true"}, {"command": ""}, {"comand": "x"}], 2, "command"),
    ([{"command": "true"}, {"command": "true", "max_retries": -1}], 1, "max_retries"),
    ([{"command": "true"}, "not an object"], 1, "object"),
    ([{"id": "a", "command": "true"}, {"command": "true"}, {"id": "a", "command": "true"}], 2, "repeats job 0"),
    ([{"command": "true", "after": ["b"]}, {"id": "b", "command": "true"}], 0, "at index 1"),
], ids=["empty-command", "bad-key", "not-an-object", "repeated-id", "after-a-later-job"])
def test_a_bad_job_is_named_by_its_index_and_nothing_is_stored(client, db_path, jobs, index, words):
    response = post(client, jobs)
    assert response.status_code == 400, response.json
    assert response.json["index"] == index
    assert response.json["error"].startswith(f"job {index}: ")
    assert words in response.json["error"]
    assert stored_ids(db_path) == []


def test_an_existing_id_is_a_conflict_named_by_its_index(client, db_path):
    assert post(client, [{"id": "taken", "command": "true"}]).status_code == 201
    response = post(client, [{"id": "new-1", "command": "true"}, {"id": "taken", "command": "true"}])
    assert response.status_code == 409
    assert response.json == {"error": "job 1: a job with id 'taken' already exists", "index": 1}
    assert stored_ids(db_path) == ["taken"]


def test_an_unknown_dependency_is_a_conflict_named_by_its_index(client, db_path):
    response = post(client, [{"command": "true"}, {"command": "true", "after": ["nobody"]}])
    assert response.status_code == 409
    assert response.json == {"error": "job 1: after: no job with id 'nobody'", "index": 1}
    assert stored_ids(db_path) == []


@pytest.mark.parametrize(("body", "words"), [
    ([], "at least one job"),
    ({"command": "true"}, "JSON array"),
    ([{"command": "true"}] * 10_001, "at most 10000 jobs"),
], ids=["empty", "an-object", "too-many"])
def test_a_malformed_batch_is_refused(client, db_path, body, words):
    response = post(client, body)
    assert response.status_code == 400
    assert words in response.json["error"]
    assert stored_ids(db_path) == []


def test_a_full_batch_of_ten_thousand_is_accepted(client, db_path):
    response = post(client, [{"command": f"echo {n}"} for n in range(10_000)])
    assert response.status_code == 201
    assert len(set(response.json["ids"])) == 10_000
    assert len(stored_ids(db_path)) == 10_000


def test_a_viewer_cannot_enqueue_a_batch(db_path):
    app = create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN,
                      "QUEUECTL_API_READ_TOKEN": READ_TOKEN, "TESTING": True})
    response = post(app.test_client(), [{"command": "true"}], {"Authorization": f"Bearer {READ_TOKEN}"})
    assert response.status_code == 403
    assert stored_ids(db_path) == []
