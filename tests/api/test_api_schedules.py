"""The schedule and rerun routes: the same checks and errors as the CLI."""

from api_support import AUTH


def test_schedules_through_the_api(client):
    body = {"name": "nightly", "cron": "30 2 * * *", "timezone": "Europe/Berlin", "job": {"command": "backup.sh"}}
    added = client.post("/api/v1/schedules", json=body, headers=AUTH)
    assert added.status_code == 201, added.get_json()
    assert added.get_json()["next_run_at"][11:16] in ("00:30", "01:30")
    assert client.post("/api/v1/schedules", json=body, headers=AUTH).status_code == 409
    [listed] = client.get("/api/v1/schedules", headers=AUTH).get_json()["schedules"]
    assert (listed["name"], listed["cron"], listed["every"], listed["paused"]) == ("nightly", "30 2 * * *", None, False)
    assert client.post("/api/v1/schedules/nightly/pause", headers=AUTH).get_json()["paused"] is True
    assert client.post("/api/v1/schedules/nightly/resume", headers=AUTH).get_json()["paused"] is False
    ran = client.post("/api/v1/schedules/nightly/run", headers=AUTH)
    assert ran.status_code == 201 and ran.get_json()["schedule"] == "nightly"
    assert client.get("/api/v1/schedules/nightly", headers=AUTH).get_json()["last_job_id"] == ran.get_json()["id"]
    rerun = client.post(f"/api/v1/jobs/{ran.get_json()['id']}/rerun", headers=AUTH)
    assert rerun.status_code == 201 and rerun.get_json()["command"] == "backup.sh"
    assert rerun.get_json()["schedule"] is None  # a rerun is a job of its own
    assert client.delete("/api/v1/schedules/nightly", headers=AUTH).get_json() == {"name": "nightly", "removed": True}
    for method, path in (("delete", ""), ("post", "/pause"), ("post", "/resume"), ("post", "/run"), ("get", "")):
        answer = getattr(client, method)(f"/api/v1/schedules/nightly{path}", headers=AUTH)
        assert answer.status_code == 404 and "no schedule named 'nightly'" in answer.get_json()["error"]
    assert client.post("/api/v1/jobs/nope/rerun", headers=AUTH).status_code == 404


def test_a_bad_schedule_gets_400_naming_what_is_wrong_and_adds_nothing(client):
    job = {"command": "true"}
    for body, words in (
        ({"name": "s", "cron": "61 * * * *", "job": job}, "cron"),
        ({"name": "s", "every": "0.2s", "job": job}, "at least 1s"),
        ({"name": "s", "every": 5, "timezone": "Mars/Olympus", "job": job}, "time zone"),
        ({"name": "s", "every": 5, "job": {"command": "true", "id": "x"}}, "id is not allowed"),
        ({"name": "s", "every": 5, "cron": "* * * * *", "job": job}, "either"),
        ({"name": "s", "every": 5}, "needs its job"),
        ({"name": "s s", "every": 5, "job": job}, "name"),
        ({"name": "s", "every": 5, "job": job, "extra": 1}, "unknown key"),
    ):
        answer = client.post("/api/v1/schedules", json=body, headers=AUTH)
        assert answer.status_code == 400 and words in answer.get_json()["error"], (body, answer.get_json())
    assert client.get("/api/v1/schedules", headers=AUTH).get_json() == {"schedules": []}
