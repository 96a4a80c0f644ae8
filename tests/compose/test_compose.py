"""The compose deployment end to end, on a real Docker engine, as a user would drive it.

Needs a Docker engine, Compose v2 and the local base image: tests/compose/docker-up.sh provides all
three (.ci/run calls it); without them these tests skip with the reason.
"""

import json
import os
import secrets
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("QUEUECTL_BASE_IMAGE", "queuectl-test/python:bookworm")
pytestmark = pytest.mark.timeout(900)


def _missing_engine():
    def ok(*args):
        try:
            return subprocess.run(args, capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    if not ok("docker", "info"):
        return "no Docker engine answers (run tests/compose/docker-up.sh)"
    if not ok("docker", "compose", "version"):
        return "Docker Compose v2 is missing (run tests/compose/docker-up.sh)"
    if not ok("docker", "image", "inspect", BASE_IMAGE):
        return f"the base image {BASE_IMAGE} is missing (run tests/compose/docker-up.sh)"
    return None


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Deployment:
    """One compose project of our own (its own name, port, token and volume)."""

    def __init__(self):
        self.project = f"queuectl-test-{secrets.token_hex(3)}"
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.env = {**os.environ, "BASE_IMAGE": BASE_IMAGE, "QUEUECTL_API_TOKEN": self.token,
                    "QUEUECTL_PORT": str(self.port)}

    def compose(self, *args, input=None, timeout=300, check=True):
        result = subprocess.run(
            ["docker", "compose", "-p", self.project, "-f", str(ROOT / "docker-compose.yml"), *args],
            input=input, capture_output=True, text=True, env=self.env, cwd=ROOT, timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def cli(self, *args, input=None):
        return self.compose("run", "--rm", "-T", "cli", *args, input=input, timeout=120)

    def api(self, path, token=True):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def worker_containers(self, all_states=False):
        args = ["ps", "--format", "json", "worker"] + (["-a"] if all_states else [])
        out = self.compose(*args).stdout.strip()
        rows = json.loads(out) if out.startswith("[") else [json.loads(line) for line in out.splitlines() if line]
        return rows


@pytest.fixture(scope="module")
def deployment():
    reason = _missing_engine()
    if reason:
        pytest.skip(reason)
    deployment = Deployment()
    try:
        deployment.compose("--profile", "cli", "build", timeout=900)  # the cli image too, before `run`
        deployment.compose("up", "-d", "--wait", "--scale", "worker=3", timeout=300)
        yield deployment
    finally:
        deployment.compose("down", "-v", "--remove-orphans", "--timeout", "5", check=False, timeout=300)


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
