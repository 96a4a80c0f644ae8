"""What the compose tests share: a deployment of our own on the real Docker engine, driven as a user would."""

import calendar
import hashlib
import json
import os
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("QUEUECTL_BASE_IMAGE", "queuectl-test/python:bookworm")
# Stands in for postgres:16 where no registry is reachable; built from tests/compose/postgres on BASE_IMAGE.
POSTGRES_TEST_IMAGE = os.environ.get("QUEUECTL_POSTGRES_TEST_IMAGE", "queuectl-test/postgres:bookworm")
# Images tagged per checkout: two worktrees testing at once never run each other's code.
IMAGE_TAG = "test-" + hashlib.sha1(str(ROOT).encode()).hexdigest()[:10]
SQLITE_FILES = ("docker-compose.yml",)
POSTGRES_FILES = ("docker-compose.yml", "docker-compose.postgres.yml")
FINAL_STATES = ("completed", "dead", "failed", "cancelled")


def _ok(*args):
    try:
        return subprocess.run(args, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def missing_compose():
    """Why `docker compose` cannot be run here (None when it can; no engine is needed for `config`)."""
    if not _ok("docker", "compose", "version"):
        return "Docker Compose v2 is missing (run tests/compose/docker-up.sh)"
    return None


def missing_engine():
    """Why no deployment can be started here (None when one can)."""
    if not _ok("docker", "info"):
        return "no Docker engine answers (run tests/compose/docker-up.sh)"
    if missing_compose():
        return missing_compose()
    if not _ok("docker", "image", "inspect", BASE_IMAGE):
        return f"the base image {BASE_IMAGE} is missing (run tests/compose/docker-up.sh)"
    return None


def build_postgres_test_image():
    """The stand-in postgres image (cached by the engine after the first build, ~30 s); nothing to build when
    QUEUECTL_POSTGRES_TEST_IMAGE names another image (e.g. postgres:16 where a registry is reachable)."""
    if not POSTGRES_TEST_IMAGE.startswith("queuectl-test/"):
        return
    subprocess.run(
        ["docker", "build", "-q", "-t", POSTGRES_TEST_IMAGE, "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
         str(ROOT / "tests" / "compose" / "postgres")],
        check=True, capture_output=True, timeout=900,
    )


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def compose_config(files, env):
    """`docker compose config` of `files` with `env` added: (returncode, merged config or None, stderr)."""
    args = ["docker", "compose", "-p", "queuectl-config"]
    for name in files:
        args += ["-f", str(ROOT / name)]
    result = subprocess.run([*args, "--profile", "cli", "config", "--format", "json"], capture_output=True,
                            text=True, env={**os.environ, **env}, cwd=ROOT, timeout=60)
    merged = json.loads(result.stdout) if result.returncode == 0 else None
    return result.returncode, merged, result.stderr


class Deployment:
    """One compose project of our own (its own name, port, token and volumes)."""

    def __init__(self, files=SQLITE_FILES, env=None):
        self.project = f"queuectl-test-{secrets.token_hex(3)}"
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.files = files
        self.env = {**os.environ, "BASE_IMAGE": BASE_IMAGE, "QUEUECTL_API_TOKEN": self.token,
                    "QUEUECTL_PORT": str(self.port), "QUEUECTL_IMAGE_TAG": IMAGE_TAG, **(env or {})}

    def compose(self, *args, input=None, timeout=300, check=True):
        files = [arg for name in self.files for arg in ("-f", str(ROOT / name))]
        result = subprocess.run(
            ["docker", "compose", "-p", self.project, *files, *args],
            input=input, capture_output=True, text=True, env=self.env, cwd=ROOT, timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def start(self, workers):
        self.compose("--profile", "cli", "build", timeout=900)  # the cli image too, before `run`
        self.compose("up", "-d", "--wait", "--scale", f"worker={workers}", timeout=300)

    def stop(self):
        # With the cli profile: the data volume that `run cli` created goes too.
        self.compose("--profile", "cli", "down", "-v", "--remove-orphans", "--timeout", "5", check=False,
                     timeout=300)

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

    def run_job(self, command, timeout=120):
        """Enqueue `command` (no retries) and wait for its end; returns the job with its history."""
        job_id = f"j{secrets.token_hex(4)}"
        self.cli("enqueue", json.dumps({"id": job_id, "command": command, "max_retries": 0}))
        wait_for(lambda: self.api(f"/api/v1/jobs/{job_id}")[1]["state"] in FINAL_STATES, timeout,
                 message=f"job {job_id} to end")
        return self.api(f"/api/v1/jobs/{job_id}")[1]

    def containers(self, service, all_states=False):
        args = ["ps", "--format", "json", service] + (["-a"] if all_states else [])
        out = self.compose(*args).stdout.strip()
        return json.loads(out) if out.startswith("[") else [json.loads(line) for line in out.splitlines() if line]

    def worker_containers(self, all_states=False):
        return self.containers("worker", all_states)

    def inspect(self, service):
        """`docker inspect` of the service's (first) container."""
        container = self.containers(service)[0]["ID"]
        out = subprocess.run(["docker", "inspect", container], check=True, capture_output=True, text=True,
                             timeout=60).stdout
        return json.loads(out)[0]

    def exec(self, service, *command, check=True):
        return self.compose("exec", "-T", service, *command, timeout=60, check=check)

    def wait_healthy_after(self, service, since):
        """Wait for a health check of `service` that started after `since` (epoch seconds) and passed."""
        def passed_since():
            health = self.inspect(service)["State"].get("Health") or {}
            return any(_epoch(entry["Start"]) > since and entry["ExitCode"] == 0 for entry in health.get("Log", []))

        wait_for(passed_since, 90, message=f"a passing health check of {service}")


def _epoch(docker_time):
    """Docker's UTC time (RFC 3339 with nanoseconds) as epoch seconds."""
    seconds, _, fraction = docker_time.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(seconds, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{fraction or 0}")
