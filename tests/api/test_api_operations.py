"""Issue 7's routes: cancel, logs, wait, pause/resume, purge, DLQ purge, dependencies and exit-code lists,
with the same checks and the same auth/CSRF rules as the rest of the API; and one run through real gunicorn
and a real worker."""

import time

import pytest
from api_support import AUTH, add_job, http_json, make_dead, start_gunicorn
from helpers import wait_for
from queuectl_core.store import SqliteStore
from queuectl_core.timeutil import now_ms


@pytest.fixture
def store(db_path, app):
    opened = SqliteStore(str(db_path))
    yield opened
    opened.close()


# ---- cancel -----------------------------------------------------------------------------------------------


def test_cancel_answers_200_for_a_waiting_job_202_for_a_running_one_and_409_once_ended(client, store):
    add_job(store, id="running")
    store.claim_next("w", 30)
    add_job(store, id="waiting")
    response = client.post("/api/v1/jobs/waiting/cancel", headers=AUTH)
    assert response.status_code == 200 and response.get_json()["state"] == "cancelled"
    response = client.post("/api/v1/jobs/running/cancel", headers=AUTH)
    assert response.status_code == 202 and response.get_json()["state"] == "processing"
    assert store.heartbeat("w", 30, store_claim(store, "running")).cancel_requested
    again = client.post("/api/v1/jobs/waiting/cancel", headers=AUTH)
    assert again.status_code == 409 and "only pending, failed or processing" in again.get_json()["error"]
    assert client.post("/api/v1/jobs/nope/cancel", headers=AUTH).status_code == 404
    assert client.post("/api/v1/jobs/waiting/cancel?x=1", headers=AUTH).status_code == 400
    assert client.post("/api/v1/jobs/waiting/cancel").status_code == 401


def store_claim(store, job_id):
    """The running job's claim as its worker holds it (seq and lease token read back)."""
    from queuectl_core.store import Claim

    seq, token = store.connection.execute("SELECT seq, lease_token FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return Claim(seq=seq, attempt=1, token=token, job=store.get_job(job_id))


def test_a_dashboard_session_cancels_only_with_its_csrf_header(logged_in, store):
    client, csrf = logged_in
    add_job(store, id="x")
    assert client.post("/api/v1/jobs/x/cancel").status_code == 403
    assert client.post("/api/v1/jobs/x/cancel", headers={"X-CSRF-Token": csrf}).status_code == 200


# ---- logs and wait ------------------------------------------------------------------------------------------


def test_logs_gives_the_latest_run_or_run_n_and_404s_what_does_not_exist(client, store):
    add_job(store, id="fresh", delay=3600)
    body = client.get("/api/v1/jobs/fresh/logs", headers=AUTH).get_json()
    assert (body["attempt"], body["output"], body["running"], body["state"]) == (None, "", False, "pending")
    make_dead(store, "dead-one")
    body = client.get("/api/v1/jobs/dead-one/logs", headers=AUTH).get_json()
    assert (body["attempt"], body["output"], body["running"]) == (1, "some output\n", False)
    assert client.get("/api/v1/jobs/dead-one/logs?attempt=1", headers=AUTH).get_json()["output"] == "some output\n"
    missing = client.get("/api/v1/jobs/dead-one/logs?attempt=2", headers=AUTH)
    assert missing.status_code == 404 and "has no run 2" in missing.get_json()["error"]
    for bad in ("attempt=0", "attempt=x", "follow=1"):
        assert client.get(f"/api/v1/jobs/dead-one/logs?{bad}", headers=AUTH).status_code == 400, bad
    assert client.get("/api/v1/jobs/nope/logs", headers=AUTH).status_code == 404


def test_logs_of_a_running_job_show_what_its_worker_flushed(client, store):
    add_job(store, id="chatty")
    claim = store.claim_next("w", 30)
    store.flush_output(claim, "line 1\n", 0)
    body = client.get("/api/v1/jobs/chatty/logs", headers=AUTH).get_json()
    assert (body["output"], body["running"], body["attempt"]) == ("line 1\n", True, 1)


def test_wait_answers_done_once_the_job_ended_and_not_done_after_its_timeout(client, store):
    add_job(store, id="waiting", delay=3600)
    started = time.monotonic()
    body = client.get("/api/v1/jobs/waiting/wait?timeout=1", headers=AUTH).get_json()
    assert body["done"] is False and body["job"]["state"] == "pending"
    assert 0.9 < time.monotonic() - started < 10
    make_dead(store, "ended")
    body = client.get("/api/v1/jobs/ended/wait", headers=AUTH).get_json()
    assert body["done"] is True and body["job"]["state"] == "dead"
    for bad in ("timeout=21", "timeout=-1", "timeout=soon", "ids=a"):
        assert client.get(f"/api/v1/jobs/ended/wait?{bad}", headers=AUTH).status_code == 400, bad
    assert client.get("/api/v1/jobs/nope/wait?timeout=0", headers=AUTH).status_code == 404


# ---- pause / resume ------------------------------------------------------------------------------------------


def test_pause_and_resume_show_in_stats_and_metrics(client, store):
    paused = client.post("/api/v1/pause", headers=AUTH).get_json()
    assert paused["paused"] is True and paused["paused_since"].endswith("Z")
    assert client.get("/api/v1/stats", headers=AUTH).get_json()["paused"] is True
    assert "queuectl_paused 1.0" in client.get("/metrics").get_data(as_text=True)
    add_job(store, id="held")
    assert store.claim_next("w", 30) is None
    assert client.post("/api/v1/resume", headers=AUTH).get_json() == {"paused": False, "paused_since": None}
    assert client.get("/api/v1/stats", headers=AUTH).get_json()["paused"] is False
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "queuectl_paused 0.0" in metrics and 'queuectl_jobs{queue="default",state="cancelled"} 0.0' in metrics
    assert client.post("/api/v1/pause").status_code == 401


# ---- purge -----------------------------------------------------------------------------------------------------


def finished_jobs(store):
    """A completed job that ended a day ago, a dead and a cancelled one now, and a pending one."""
    add_job(store, id="old-ok")
    claim = store.claim_next("w", 30)
    from queuectl_core.lifecycle import COMPLETED, Outcome

    outcome = Outcome(COMPLETED, 0, None)
    day_ago = now_ms() - 86_400_000
    store.finish_run(claim, outcome, "", now=day_ago)
    make_dead(store, "dead-one")
    add_job(store, id="cancelled-one")
    store.cancel("cancelled-one")
    add_job(store, id="pending-one")


def test_purge_deletes_what_it_is_asked_and_a_dry_run_only_counts(client, store):
    finished_jobs(store)
    body = {"states": ["completed", "cancelled"], "older_than": "12h", "dry_run": True}
    assert client.post("/api/v1/purge", headers=AUTH, json=body).get_json() == {"count": 1, "dry_run": True}
    body["dry_run"] = False
    assert client.post("/api/v1/purge", headers=AUTH, json=body).get_json() == {"count": 1, "dry_run": False}
    assert {job["id"] for job in store.list_jobs()} == {"dead-one", "cancelled-one", "pending-one"}
    body = {"states": ["cancelled"]}
    assert client.post("/api/v1/purge", headers=AUTH, json=body).get_json()["count"] == 1
    assert client.post("/api/v1/dlq/purge", headers=AUTH, json={"dry_run": True}).get_json()["count"] == 1
    assert client.post("/api/v1/dlq/purge", headers=AUTH).get_json() == {"count": 1, "dry_run": False}
    assert {job["id"] for job in store.list_jobs()} == {"pending-one"}


@pytest.mark.parametrize("body, words", [
    ({}, "states is required"),
    ({"states": []}, "states must be a non-empty list"),
    ({"states": "completed"}, "states must be a non-empty list"),
    ({"states": ["pending"]}, "only finished jobs can be purged"),
    ({"states": ["completed"], "older_than": "7x"}, "older_than must be a duration"),
    ({"states": ["completed"], "older_than": -1}, "older_than must be a duration"),
    ({"states": ["completed"], "dry_run": "yes"}, "dry_run must be true or false"),
    ({"states": ["completed"], "everything": True}, "unknown key 'everything'"),
])
def test_purge_refuses_bad_input_with_400_naming_it(client, store, body, words):
    add_job(store, id="kept")
    response = client.post("/api/v1/purge", headers=AUTH, json=body)
    assert response.status_code == 400 and words in response.get_json()["error"], response.get_json()
    assert client.post("/api/v1/dlq/purge", headers=AUTH, json={"states": ["dead"]}).status_code == 400
    assert store.list_jobs()[0]["id"] == "kept"


# ---- enqueue: dependencies and exit-code lists ---------------------------------------------------------------------


def test_enqueue_takes_after_and_exit_code_lists_and_409s_an_unknown_dependency(client, store):
    add_job(store, id="first")
    response = client.post("/api/v1/jobs", headers=AUTH, json={
        "command": "true", "id": "second", "after": ["first"], "retry_on": [1, "timeout"], "no_retry_on": [2]})
    assert response.status_code == 201
    record = response.get_json()
    assert (record["after"], record["retry_on"], record["no_retry_on"]) == (["first"], [1, "timeout"], [2])
    unknown = client.post("/api/v1/jobs", headers=AUTH, json={"command": "true", "after": ["ghost"]})
    assert unknown.status_code == 409 and unknown.get_json()["error"] == "after: no job with id 'ghost'"
    bad = client.post("/api/v1/jobs", headers=AUTH, json={"command": "true", "no_retry_on": [256]})
    assert bad.status_code == 400 and "no_retry_on" in bad.get_json()["fields"]
    assert [job["id"] for job in store.list_jobs()] == ["second", "first"]


def test_the_retention_setting_takes_a_duration_through_the_api(client):
    response = client.put("/api/v1/settings", headers=AUTH, json={"retention": "7d"})
    assert response.status_code == 200 and response.get_json()["retention"] == 604800
    bad = client.put("/api/v1/settings", headers=AUTH, json={"retention": "soon"})
    assert bad.status_code == 400 and "retention" in bad.get_json()["fields"]


# ---- through real gunicorn and a real worker ----------------------------------------------------------------------


def test_a_running_job_is_followed_and_cancelled_through_the_served_api(processes, db_path):
    base = start_gunicorn(processes, db_path)
    processes.start_workers(db_path, env={"QUEUECTL_LOG_LEVEL": "WARNING"})
    status, record = http_json("POST", f"{base}/api/v1/jobs", {"command": "echo started; sleep 60", "id": "long"},
                               AUTH)
    assert status == 201
    wait_for(lambda: http_json("GET", f"{base}/api/v1/jobs/long/logs", headers=AUTH)[1]["output"] == "started\n",
             20, message="the running job's output to show")
    status, record = http_json("POST", f"{base}/api/v1/jobs/long/cancel", headers=AUTH)
    assert status == 202
    status, body = http_json("GET", f"{base}/api/v1/jobs/long/wait?timeout=15", headers=AUTH)
    assert body["done"] is True and body["job"]["state"] == "cancelled"
