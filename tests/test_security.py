"""Security properties of the worker side: secrets stay out of logs and jobs, one job's output never shows up as
another's, the default database is private, and the images run as an unprivileged user.

(The API's side: tests/api/test_api_auth.py, test_api_headers.py, test_api_secrets.py; docs/security.md.)
"""

import os
import re
import stat
from pathlib import Path

from helpers import cli_json, run_cli
from queuectl_core.store import open_store
from queuectl_core.validation import check_job

REPO = Path(__file__).resolve().parents[1]
TOKEN = "token-that-must-never-show-up-0123456789"
QUIET = {"QUEUECTL_LOG_LEVEL": "DEBUG"}  # the chattiest level: still no secret


def test_neither_the_worker_log_nor_any_job_output_shows_the_api_token(sqlite_path, processes):
    db_path, store = sqlite_path, open_store(str(sqlite_path))  # the worker's business: one backend is enough
    commands = {
        "env": "env",
        "set": "set",
        "proc-self": "tr '\\0' '\\n' < /proc/self/environ",
        "failing": "env; exit 3",
        "timeout": "env; sleep 30",
    }
    for job_id, command in commands.items():
        spec = {"id": job_id, "command": command, "max_retries": 0}
        if job_id == "timeout":
            spec["timeout"] = 0.5
        store.enqueue(check_job(spec))
    worker = processes.start_workers(db_path, "--burst", env={**QUIET, "QUEUECTL_API_TOKEN": TOKEN})
    assert worker.wait(timeout=60) == 0, processes.log(worker)

    log = processes.log(worker)
    assert TOKEN not in log
    assert "DEBUG" in log or "INFO" in log  # the log was really written
    for job_id in commands:
        job = store.get_job(job_id, history=True)
        output = job["history"][-1]["output"]
        assert TOKEN not in output and "QUEUECTL_API_TOKEN" not in output, job_id
        assert "QUEUECTL_JOB_ID=" + job_id in output or job_id == "set"  # the environment was really printed


def test_the_output_of_one_job_never_shows_up_in_another_jobs_history(sqlite_path, processes):
    db_path, store = sqlite_path, open_store(str(sqlite_path))
    # Jobs that print their own marker slowly, many at once on several workers, so that their runs interleave.
    jobs = {f"job-{number:02d}": f"marker-{number:02d}-{os.urandom(4).hex()}" for number in range(12)}
    for job_id, marker in jobs.items():
        store.enqueue(check_job({"id": job_id, "command": f"for i in 1 2 3 4 5 6; do echo {marker}; sleep 0.02; done;"
                                                          f" echo {marker} >&2"}))
    worker = processes.start_workers(db_path, "--count", "4", "--burst")
    assert worker.wait(timeout=120) == 0, processes.log(worker)

    for job_id, marker in jobs.items():
        shown = cli_json(db_path, "show", job_id)
        assert shown["state"] == "completed"
        output = shown["history"][-1]["output"]
        assert output.split() == [marker] * 7, (job_id, output)  # its own lines, all of them, nothing else
        logs = run_cli(db_path, "logs", job_id)
        if logs.returncode == 0:  # `queuectl logs` (operator commands) where present
            assert set(logs.stdout.split()) == {marker}, (job_id, logs.stdout)


def test_the_default_database_directory_is_private_to_its_user(tmp_path):
    data_home = tmp_path / "data"
    result = run_cli("", "status", env={"XDG_DATA_HOME": str(data_home), "QUEUECTL_DB": ""})
    assert result.returncode == 0, result.stderr
    directory = data_home / "queuectl"
    assert (directory / "queuectl.db").exists()
    # Commands and their output may hold secrets: other local users must not read them.
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_every_image_runs_as_an_unprivileged_user():
    dockerfiles = sorted((REPO / "services").glob("*/Dockerfile"))
    assert dockerfiles
    for dockerfile in dockerfiles:
        users = re.findall(r"^USER\s+(\S+)", dockerfile.read_text(), re.M)
        assert users, dockerfile
        final = users[-1].split(":")[0]
        assert final not in ("root", "0"), (dockerfile, final)
        assert not final.isdigit() or int(final) >= 1000, (dockerfile, final)


def test_compose_gives_the_token_to_the_api_container_only():
    compose = (REPO / "docker-compose.yml").read_text()
    services = re.split(r"^  (\w+):\s*$", compose.split("\nservices:", 1)[1].split("\nvolumes:", 1)[0], flags=re.M)
    blocks = dict(zip(services[1::2], services[2::2], strict=False))
    assert "QUEUECTL_API_TOKEN" in blocks["api"]
    for name, block in blocks.items():
        if name != "api":
            assert "QUEUECTL_API_TOKEN" not in block, name
    env_file = (REPO / "config" / "queuectl.env").read_text()
    assert "QUEUECTL_API_TOKEN" not in env_file  # shared by every container
