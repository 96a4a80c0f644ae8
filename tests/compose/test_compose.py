"""The compose deployment on SQLite end to end, on a real Docker engine, as a user would drive it.

Needs a Docker engine, Compose v2 and the local base image: tests/compose/docker-up.sh provides all
three (.ci/run calls it); without them these tests skip with the reason. Fixtures: conftest.py.
"""

import json
import subprocess
import time

import pytest
from helpers import wait_for

pytestmark = pytest.mark.timeout(900)


def test_thirty_jobs_from_the_cli_container_complete_on_several_worker_containers(deployment):
    lines = "".join(json.dumps({"id": f"c{n}", "command": f"sleep 0.3; echo ran c{n}"}) + "\n" for n in range(30))
    assert deployment.cli("enqueue", "-", input=lines).stdout.strip() == "30"
    wait_for(lambda: deployment.api("/api/v1/stats")[1]["jobs"]["completed"] >= 30, 120,
             message="30 jobs to complete")
    status, body = deployment.api("/api/v1/jobs?state=completed&limit=100")
    assert status == 200
    workers = {job["worker_id"] for job in body["jobs"] if job["id"].startswith("c")}
    assert len(workers) >= 2, workers
    containers = {row["ID"][:12] for row in deployment.worker_containers()}
    # A worker id names its container (the hostname), so an operator can tell which one ran a job.
    assert all(any(worker.startswith(cid) for cid in containers) for worker in workers), (workers, containers)
    listed = json.loads(deployment.cli("worker", "list", "--json").stdout)
    assert len(listed) == 3 and {w["host"] for w in listed} <= containers


def test_the_api_answers_from_the_host_and_refuses_a_missing_token(deployment):
    assert deployment.api("/healthz", token=False) == (200, {"status": "ok"})
    assert deployment.api("/api/v1/stats", token=False)[0] == 401
    status, stats = deployment.api("/api/v1/stats")
    assert status == 200 and set(stats["jobs"]) >= {"pending", "processing", "completed", "failed", "dead"}


def test_a_killed_worker_containers_job_is_finished_by_another_container(deployment):
    deployment.cli("config", "set", "lease_timeout", "3")
    deployment.cli("enqueue", json.dumps({"id": "long1", "command": "sleep 6; echo survived"}))
    wait_for(lambda: deployment.api("/api/v1/jobs/long1")[1]["state"] == "processing", 60,
             message="long1 to start")
    victim = deployment.api("/api/v1/jobs/long1")[1]["worker_id"]
    container = next(row["ID"] for row in deployment.worker_containers() if victim.startswith(row["ID"][:12]))
    subprocess.run(["docker", "kill", container], check=True, capture_output=True, timeout=60)
    wait_for(lambda: deployment.api("/api/v1/jobs/long1")[1]["state"] == "completed", 120,
             message="long1 to be completed by another worker")
    history = deployment.api("/api/v1/jobs/long1")[1]["history"]
    assert "worker lost" in history[0]["error"] and history[0]["worker_id"] == victim
    assert history[-1]["worker_id"] != victim and history[-1]["output"] == "survived\n"


def test_a_job_starts_in_its_own_directory_and_its_rm_rf_leaves_the_queue_alone(deployment):
    job = deployment.run_job('pwd; echo "$HOME"')
    assert job["state"] == "completed"
    assert job["history"][-1]["output"].split() == ["/jobs", "/jobs"]  # QUEUECTL_JOB_DIR, not the data volume
    # What a careless job does in its directory no longer reaches the database.
    job = deployment.run_job("rm -rf ./* ./.[!.]* ; ls -A /data")
    assert job["state"] == "completed" and "queuectl.db" in job["history"][-1]["output"].split()
    assert deployment.api("/api/v1/stats")[0] == 200
    assert deployment.run_job("echo still here")["history"][-1]["output"] == "still here\n"


# Modules a job writes into the data volume, each recording in /data/planted-ran that it was imported. Before,
# gunicorn ran in /data (first on sys.path: queuectl_api, flask and gunicorn's own imports came from there) and
# so did the healthcheck's `python3 -c` (urllib).
PLANTED = ("urllib", "queuectl_api", "flask", "gunicorn", "sitecustomize", "usercustomize")
PLANT = "; ".join(
    f"mkdir -p /data/{name} && echo 'open(\"/data/planted-ran\", \"a\").write(\"{name} \")' "
    f">/data/{name}/__init__.py && cp /data/{name}/__init__.py /data/{name}.py"
    for name in PLANTED
)


def test_a_job_cannot_plant_a_module_that_the_api_imports(deployment):
    job = deployment.run_job(PLANT + "; ls /data")
    assert job["state"] == "completed" and "urllib.py" in job["history"][-1]["output"].split(), job
    try:
        restarted = time.time()
        deployment.compose("restart", "api", timeout=120)
        deployment.wait_healthy_after("api", restarted)  # gunicorn booted again and the healthcheck ran
        assert deployment.api("/api/v1/stats")[0] == 200
        listing = deployment.exec("api", "ls", "-A", "/data").stdout.split()
        assert "planted-ran" not in listing, deployment.exec("api", "cat", "/data/planted-ran").stdout
        # gunicorn's working directory (first on its sys.path) is the image's, which jobs cannot write.
        assert deployment.exec("api", "readlink", "/proc/1/cwd").stdout.strip() == "/srv/queuectl"
    finally:
        names = " ".join(f"/data/{name} /data/{name}.py" for name in PLANTED)
        deployment.run_job(f"rm -rf {names} /data/planted-ran")


def test_the_containers_have_no_capabilities_no_new_privileges_a_pid_limit_and_a_read_only_image(deployment):
    for service in ("api", "worker"):
        host = deployment.inspect(service)["HostConfig"]
        assert host["CapDrop"] == ["ALL"] and host["ReadonlyRootfs"] is True, (service, host)
        assert "no-new-privileges:true" in host["SecurityOpt"] and host["PidsLimit"] > 0, (service, host)
    status = deployment.exec("api", "cat", "/proc/1/status").stdout
    assert "CapBnd:\t0000000000000000" in status and "NoNewPrivs:\t1" in status
    # What a job sees: no capability, an image it cannot change, and two scratch directories it can.
    job = deployment.run_job(
        "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; "
        "touch /opt/queuectl/x /etc/x 2>/dev/null || echo image read-only; "
        "touch /tmp/x /jobs/x && echo scratch writable"
    )
    output = job["history"][-1]["output"]
    assert "CapEff:\t0000000000000000" in output and "CapBnd:\t0000000000000000" in output, output
    assert "NoNewPrivs:\t1" in output and "image read-only" in output and "scratch writable" in output, output


def test_worker_stop_from_the_cli_container_stops_every_worker_gracefully(deployment):
    deployment.cli("enqueue", json.dumps({"id": "last", "command": "sleep 2; echo finished"}))
    wait_for(lambda: deployment.api("/api/v1/jobs/last")[1]["state"] == "processing", 60, message="last to start")
    assert "Asked" in deployment.cli("worker", "stop").stdout

    def all_exited():
        rows = deployment.worker_containers(all_states=True)
        return rows and all(row["State"] == "exited" for row in rows)

    wait_for(all_exited, 90, message="every worker container to exit")
    rows = deployment.worker_containers(all_states=True)
    # The job that was running finished first; clean exits (0) are not restarted by on-failure.
    assert deployment.api("/api/v1/jobs/last")[1]["state"] == "completed"
    survivors = [row for row in rows if "(0)" in row["Status"]]
    assert len(survivors) >= 2, rows
