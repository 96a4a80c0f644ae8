"""Each route of the API: status codes and bodies as the contract says, through the Flask test client."""

import pytest
from api_support import AUTH, add_job, make_dead
from helpers import busy_worker
from queuectl_core.store import SqliteStore

JOB_KEYS = {"id", "command", "state", "attempts", "max_retries", "priority", "run_at", "timeout", "created_at",
            "updated_at", "last_error", "exit_code", "worker_id"}


@pytest.fixture
def store(db_path, app):
    opened = SqliteStore(str(db_path))
    yield opened
    opened.close()


def test_healthz_answers_ok_without_a_token(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_stats_is_the_object_status_json_prints(client, store):
    add_job(store, id="a")
    response = client.get("/api/v1/stats", headers=AUTH)
    assert response.status_code == 200
    body = response.get_json()
    assert body == {"jobs": {"pending": 1, "processing": 0, "completed": 0, "failed": 0, "dead": 0, "cancelled": 0},
                    "workers": [], "paused": False}
    assert body == store.status()


def test_enqueue_answers_201_with_the_record(client):
    response = client.post("/api/v1/jobs", headers=AUTH,
                           json={"command": "echo hi", "id": "job-1", "priority": 5, "max_retries": 1, "timeout": 2.5})
    assert response.status_code == 201
    record = response.get_json()
    assert JOB_KEYS <= set(record)
    assert record["id"] == "job-1" and record["state"] == "pending" and record["attempts"] == 0
    assert record["priority"] == 5 and record["max_retries"] == 1 and record["timeout"] == 2.5
    assert record["created_at"].endswith("Z") and "." in record["created_at"]


def test_enqueue_uses_the_max_retries_setting_and_generates_an_id(client, store):
    store.set_setting("max_retries", "7")
    record = client.post("/api/v1/jobs", headers=AUTH, json={"command": "true"}).get_json()
    assert record["max_retries"] == 7
    assert record["id"]


def test_enqueue_takes_a_json_body_whatever_its_content_type(client):
    response = client.post("/api/v1/jobs", headers=AUTH, data='{"command": "true", "id": "plain"}',
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201


def test_enqueue_of_a_duplicate_id_answers_409(client):
    client.post("/api/v1/jobs", headers=AUTH, json={"command": "true", "id": "twice"})
    response = client.post("/api/v1/jobs", headers=AUTH, json={"command": "false", "id": "twice"})
    assert response.status_code == 409
    assert response.get_json() == {"error": "a job with id 'twice' already exists"}


@pytest.mark.parametrize("job, key", [
    ({}, "command"),
    ({"command": ""}, "command"),
    ({"command": "   "}, "command"),
    ({"command": None}, "command"),
    ({"command": 5}, "command"),
    ({"command": "true", "id": "has space"}, "id"),
    ({"command": "true", "id": ""}, "id"),
    ({"command": "true", "id": "x" * 129}, "id"),
    ({"command": "true", "max_retries": -1}, "max_retries"),
    ({"command": "true", "max_retries": 1.5}, "max_retries"),
    ({"command": "true", "max_retries": True}, "max_retries"),
    ({"command": "true", "max_retries": None}, "max_retries"),
    ({"command": "true", "max_retries": "3"}, "max_retries"),
    ({"command": "true", "priority": 2**63}, "priority"),
    ({"command": "true", "delay": -1}, "delay"),
    ({"command": "true", "timeout": 0}, "timeout"),
    ({"command": "true", "timeout": "soon"}, "timeout"),
    ({"command": "true", "run_at": "tomorrow"}, "run_at"),
    ({"command": "true", "run_at": "2030-01-01T00:00:00"}, "run_at"),
    ({"command": "true", "run_at": "2030-01-01T00:00:00Z", "delay": 1}, "delay"),
    ({"command": "true", "colour": "red"}, "colour"),
])
def test_enqueue_refuses_bad_input_with_400_naming_the_key(client, job, key):
    response = client.post("/api/v1/jobs", headers=AUTH, json=job)
    assert response.status_code == 400
    body = response.get_json()
    assert key in body["error"] or key in body["fields"]
    assert key in body["fields"]


def test_enqueue_reports_every_bad_field_at_once(client):
    response = client.post("/api/v1/jobs", headers=AUTH,
                           json={"command": "", "id": "bad id", "priority": "high", "delay": -2, "timeout": 0})
    assert response.status_code == 400
    assert set(response.get_json()["fields"]) == {"command", "id", "priority", "delay", "timeout"}


@pytest.mark.parametrize("body", ["[]", '"text"', "3", "null", "true"])
def test_enqueue_refuses_a_body_that_is_not_an_object(client, body):
    response = client.post("/api/v1/jobs", headers=AUTH, data=body, content_type="application/json")
    assert response.status_code == 400
    assert "JSON object" in response.get_json()["error"]


def test_list_jobs_is_newest_first_with_a_total_count_header(client, store):
    for index in range(5):
        add_job(store, f"echo {index}", id=f"job-{index}")
    response = client.get("/api/v1/jobs", headers=AUTH)
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["jobs"]
    assert [job["id"] for job in body["jobs"]] == [f"job-{i}" for i in (4, 3, 2, 1, 0)]
    assert response.headers["X-Total-Count"] == "5"
    assert JOB_KEYS <= set(body["jobs"][0])


def test_list_jobs_pages_with_limit_and_offset(client, store):
    for index in range(5):
        add_job(store, id=f"job-{index}")
    page = client.get("/api/v1/jobs?limit=2&offset=1", headers=AUTH)
    assert [job["id"] for job in page.get_json()["jobs"]] == ["job-3", "job-2"]
    assert page.headers["X-Total-Count"] == "5"
    beyond = client.get("/api/v1/jobs?offset=10", headers=AUTH)
    assert beyond.get_json() == {"jobs": []}


def test_list_jobs_filters_by_state_and_searches_id_and_command(client, store):
    make_dead(store, "dead-one", command="exit 3")
    add_job(store, "echo needle", id="a")
    add_job(store, "echo hay", id="needle-id")
    add_job(store, "echo 100%_done", id="b")
    dead = client.get("/api/v1/jobs?state=dead", headers=AUTH).get_json()["jobs"]
    assert [job["id"] for job in dead] == ["dead-one"]
    found = client.get("/api/v1/jobs?q=NEEDLE", headers=AUTH)
    assert {job["id"] for job in found.get_json()["jobs"]} == {"a", "needle-id"}
    assert found.headers["X-Total-Count"] == "2"
    # LIKE wildcards in the search text are literal characters.
    assert [job["id"] for job in client.get("/api/v1/jobs?q=%25_", headers=AUTH).get_json()["jobs"]] == ["b"]
    assert client.get("/api/v1/jobs?q=needle&state=dead", headers=AUTH).get_json() == {"jobs": []}


def test_list_jobs_sorts_by_a_column_in_either_order(client, store):
    add_job(store, id="low", priority=1)
    add_job(store, id="high", priority=9)
    add_job(store, id="mid", priority=5)
    ascending = client.get("/api/v1/jobs?sort=priority&order=asc", headers=AUTH).get_json()["jobs"]
    assert [job["id"] for job in ascending] == ["low", "mid", "high"]
    by_id = client.get("/api/v1/jobs?sort=id&order=desc", headers=AUTH).get_json()["jobs"]
    assert [job["id"] for job in by_id] == ["mid", "low", "high"]


def test_show_job_has_its_history(client, store):
    make_dead(store, "failed-once")
    response = client.get("/api/v1/jobs/failed-once", headers=AUTH)
    assert response.status_code == 200
    job = response.get_json()
    assert job["state"] == "dead" and job["attempts"] == 1
    assert len(job["history"]) == 1
    run = job["history"][0]
    assert run["attempt"] == 1 and run["exit_code"] == 3 and run["error"] == "exit code 3"
    assert run["output"] == "some output\n" and run["worker_id"] == "test-worker" and run["finished_at"]


def test_show_job_of_an_unknown_id_answers_404(client):
    response = client.get("/api/v1/jobs/nope", headers=AUTH)
    assert response.status_code == 404
    assert response.get_json() == {"error": "no job with id 'nope'"}


def test_retry_moves_a_dead_job_back_to_pending(client, store):
    make_dead(store, "d")
    response = client.post("/api/v1/jobs/d/retry", headers=AUTH)
    assert response.status_code == 200
    record = response.get_json()
    assert record["state"] == "pending" and record["attempts"] == 0 and record["id"] == "d"


def test_retry_of_a_job_that_is_not_dead_answers_409_and_of_an_unknown_one_404(client, store):
    add_job(store, id="p")
    conflict = client.post("/api/v1/jobs/p/retry", headers=AUTH)
    assert conflict.status_code == 409
    assert "pending" in conflict.get_json()["error"]
    missing = client.post("/api/v1/jobs/nope/retry", headers=AUTH)
    assert missing.status_code == 404
    assert "nope" in missing.get_json()["error"]


def test_retry_all_moves_every_dead_job_back(client, store):
    make_dead(store, "d1")
    make_dead(store, "d2")
    add_job(store, id="p")
    response = client.post("/api/v1/dlq/retry-all", headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == {"retried": 2}
    assert store.counts()["pending"] == 3
    assert client.post("/api/v1/dlq/retry-all", headers=AUTH).get_json() == {"retried": 0}


def test_stop_workers_answers_202_and_flags_every_live_worker(client, store):
    store.register_worker("w1", "host", 1)
    store.register_worker("w2", "host", 2)
    response = client.post("/api/v1/workers/stop", headers=AUTH)
    assert response.status_code == 202
    assert response.get_json() == {"stop_requested": 2}
    assert all(worker["stop_requested"] for worker in store.live_workers())


def test_workers_lists_the_live_workers_with_their_stats(client, store):
    store.register_worker("w1", "host-a", 42)
    store.heartbeat("w1", 30, stats={"worker": {"cpu_percent": 1.5, "memory_bytes": 1000}, "job": None})
    workers = client.get("/api/v1/workers", headers=AUTH).get_json()["workers"]
    assert [(w["id"], w["host"], w["pid"]) for w in workers] == [("w1", "host-a", 42)]
    assert workers[0]["stats"]["worker"] == {"cpu_percent": 1.5, "memory_bytes": 1000}


def test_workers_and_stats_show_each_worker_s_slots_and_its_running_jobs(client, store):
    jobs = busy_worker(store, "w4", 4, [30, 10, 2])
    store.register_worker("w1", "host", 7)
    workers = client.get("/api/v1/workers", headers=AUTH).get_json()["workers"]
    busy, plain = sorted(workers, key=lambda worker: worker["concurrency"], reverse=True)
    assert busy["id"] == "w4" and busy["concurrency"] == 4
    assert [job["id"] for job in busy["jobs"]] == jobs  # longest running first
    assert busy["jobs"][0]["started_at"] < busy["jobs"][1]["started_at"] < busy["jobs"][2]["started_at"]
    assert (busy["current_job"], busy["current_job_started_at"]) == (jobs[0], busy["jobs"][0]["started_at"])
    assert (plain["id"], plain["concurrency"], plain["jobs"], plain["current_job"]) == ("w1", 1, [], None)
    assert client.get("/api/v1/stats", headers=AUTH).get_json()["workers"] == workers


def test_settings_read_like_config_get_json(client, store):
    response = client.get("/api/v1/settings", headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == store.get_settings()


def test_settings_change_checks_values_as_config_set_does(client, store):
    response = client.put("/api/v1/settings", headers=AUTH,
                          json={"max_retries": 5, "backoff_base": 3.5, "backoff_jitter": "full"})
    assert response.status_code == 200
    assert response.get_json()["max_retries"] == 5 and response.get_json()["backoff_base"] == 3.5
    assert store.get_settings()["max_retries"] == 5


@pytest.mark.parametrize("change, bad", [
    ({"max_retries": -1}, "max_retries"),
    ({"max_retries": 1.5}, "max_retries"),
    ({"max_retries": "5"}, "max_retries"),
    ({"max_retries": "lots"}, "max_retries"),
    ({"backoff_base": 0.5}, "backoff_base"),
    ({"lease_timeout": None}, "lease_timeout"),
    ({"durability": "extreme"}, "durability"),
    ({"colour": "red"}, "colour"),
])
def test_a_bad_setting_answers_400_and_changes_nothing(client, store, change, bad):
    before = store.get_settings()
    response = client.put("/api/v1/settings", headers=AUTH, json={"backoff_max": 10, **change})
    assert response.status_code == 400
    assert list(response.get_json()["fields"]) == [bad]
    assert store.get_settings() == before


def test_an_empty_settings_change_answers_400(client):
    response = client.put("/api/v1/settings", headers=AUTH, json={})
    assert response.status_code == 400


def test_throughput_has_one_entry_per_minute(client):
    response = client.get("/api/v1/throughput?minutes=15", headers=AUTH)
    assert response.status_code == 200
    minutes = response.get_json()["minutes"]
    assert len(minutes) == 15
    assert set(minutes[0]) == {"minute", "succeeded", "failed"}
    assert len(client.get("/api/v1/throughput", headers=AUTH).get_json()["minutes"]) == 60


def test_openapi_document_is_served_with_the_token(client):
    response = client.get("/api/v1/openapi.json", headers=AUTH)
    assert response.status_code == 200
    assert response.get_json()["openapi"].startswith("3.")


@pytest.mark.parametrize("page", ["/", "/jobs", "/jobs/some-job", "/enqueue", "/settings"])
def test_every_dashboard_page_renders_for_a_logged_in_user(logged_in, page):
    client, csrf = logged_in
    response = client.get(page)
    assert response.status_code == 200
    assert response.content_type.startswith("text/html")
    assert f'<meta name="csrf-token" content="{csrf}">' in response.get_data(as_text=True)


def test_the_job_page_escapes_the_id_from_the_url(logged_in):
    client, _ = logged_in
    html = client.get('/jobs/%3Cimg%20src=x%20onerror=alert(1)%3E%22').get_data(as_text=True)
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&#34;" in html


def test_static_assets_are_served_without_a_login(client):
    for asset in ("app.css", "api.js", "dom.js", "overview.js", "chart.js", "jobs.js", "job.js", "enqueue.js",
                  "settings.js", "favicon.svg"):
        assert client.get(f"/static/{asset}").status_code == 200, asset
