"""The compose files and `make up` as files: what each container may do, checked without starting one.

Needs only the `docker compose` binary (`config` merges and validates the files); skipped without it.
The behaviour itself is tested on the engine in test_compose.py and test_compose_postgres.py.
"""

import os
import re
import stat
import subprocess

import pytest
from compose_support import POSTGRES_FILES, ROOT, SQLITE_FILES, compose_config, missing_compose

QUEUECTL_SERVICES = ("api", "worker", "cli")
SECRETS = {"QUEUECTL_API_TOKEN": "t" * 40, "QUEUECTL_POSTGRES_PASSWORD": "pw0123456789"}


@pytest.fixture(scope="module")
def configs():
    reason = missing_compose()
    if reason:
        pytest.skip(reason)
    merged = {}
    for files in (SQLITE_FILES, POSTGRES_FILES):
        returncode, config, stderr = compose_config(files, SECRETS)
        assert returncode == 0, stderr
        merged[files] = config
    return merged


def test_compose_on_postgresql_refuses_to_start_without_a_password_and_says_how_to_make_one():
    reason = missing_compose()
    if reason:
        pytest.skip(reason)
    env = {"QUEUECTL_API_TOKEN": SECRETS["QUEUECTL_API_TOKEN"], "QUEUECTL_POSTGRES_PASSWORD": ""}
    returncode, _, stderr = compose_config(POSTGRES_FILES, env)
    assert returncode != 0
    assert "QUEUECTL_POSTGRES_PASSWORD" in stderr and "secrets.token_hex" in stderr, stderr
    # No default password anywhere, and no superuser made for the queue by the image.
    text = (ROOT / "docker-compose.postgres.yml").read_text()
    assert ":-queuectl" not in text and "POSTGRES_USER" not in text


def test_every_container_drops_all_capabilities_gains_no_privileges_and_has_a_pid_limit(configs):
    for files, config in configs.items():
        for name, service in config["services"].items():
            assert service.get("cap_drop") == ["ALL"], (files, name)
            assert "no-new-privileges:true" in service.get("security_opt", []), (files, name)
            assert int(service.get("pids_limit", 0)) > 0, (files, name)
            if name in QUEUECTL_SERVICES:
                # A read-only image; scratch space only in tmpfs mounts.
                assert service.get("read_only") is True, (files, name)
                assert any(mount.startswith("/tmp:") for mount in service.get("tmpfs", [])), (files, name)


def test_no_service_works_in_the_data_volume_and_the_api_runs_python_isolated(configs):
    for files, config in configs.items():
        for name, service in config["services"].items():
            assert not str(service.get("working_dir", "")).startswith("/data"), (files, name)
        healthcheck = config["services"]["api"]["healthcheck"]["test"]
        assert healthcheck[:3] == ["CMD", "python3", "-I"], healthcheck
        assert config["services"]["worker"]["environment"].get("QUEUECTL_JOB_DIR", "/jobs") == "/jobs"
        assert any(mount.startswith("/jobs:") for mount in config["services"]["worker"]["tmpfs"])
    for dockerfile in sorted((ROOT / "services").glob("*/Dockerfile")):
        text = dockerfile.read_text()
        workdir = re.findall(r"^WORKDIR\s+(\S+)", text, re.M)[-1]
        assert not workdir.startswith("/data"), dockerfile
    api = (ROOT / "services" / "api" / "Dockerfile").read_text()
    assert re.search(r'^CMD \["gunicorn", "--chdir", "/srv/queuectl"', api, re.M)
    worker = (ROOT / "services" / "worker" / "Dockerfile").read_text()
    assert "QUEUECTL_JOB_DIR=/jobs" in worker


def test_under_postgresql_the_api_and_the_workers_mount_no_data_volume(configs):
    services = configs[POSTGRES_FILES]["services"]
    assert services["api"].get("volumes", []) == [] and services["worker"].get("volumes", []) == []
    assert services["api"]["environment"]["QUEUECTL_DB"].startswith("postgresql://queuectl:")
    # The postgres service's init script makes the queue's role; the server runs as its own user.
    postgres = services["postgres"]
    assert postgres["user"] == "postgres"
    assert any(v["target"] == "/docker-entrypoint-initdb.d" for v in postgres["volumes"])


def _make(directory, *targets, env=None):
    return subprocess.run(
        ["make", "-s", "-f", str(ROOT / "Makefile"), *targets, "PYTHON=python3"], cwd=directory,
        capture_output=True, text=True, timeout=60, preexec_fn=lambda: os.umask(0o022),
        env={**os.environ, "QUEUECTL_POSTGRES_PASSWORD": "", **(env or {})},
    )


def test_make_writes_env_readable_by_its_owner_only(tmp_path):
    result = _make(tmp_path, ".env")  # as `make up` does first, under the usual umask 022
    assert result.returncode == 0, result.stderr
    env_file = tmp_path / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert _make(tmp_path, "postgres-env").returncode == 0  # as `make up-postgres` does
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    lines = env_file.read_text().splitlines()
    assert [line.split("=")[0] for line in lines] == ["QUEUECTL_API_TOKEN", "QUEUECTL_POSTGRES_PASSWORD"]
    assert all(len(line.split("=", 1)[1]) >= 32 for line in lines)
    # Run again: nothing is replaced (a new password would lock the queue out of its database).
    assert _make(tmp_path, "postgres-env").returncode == 0
    assert env_file.read_text().splitlines() == lines
    # A .env left world-readable by an older `make up` is made private.
    env_file.chmod(0o644)
    assert _make(tmp_path, "private-env").returncode == 0
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
