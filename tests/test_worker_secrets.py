"""Secrets of the service never reach a job: not in its environment, not in any ancestor's /proc/PID/environ."""

import os
import secrets
import subprocess
import sys

import pytest
from helpers import QUEUECTL, QUEUECTL_WORKER, QUIET, enqueue

SECRET_NAMES = ("QUEUECTL_API_TOKEN", "QUEUECTL_API_READ_TOKEN", "QUEUECTL_SESSION_SECRET", "PGPASSWORD")

# Each ancestor, up to pid 1: a header with its pid, then its environment (unreadable ones say so), then the
# job's own environment. Written to a file: the output's tail is capped, and the point is every byte.
WALK_ANCESTORS = r"""
pid=$$
while :; do
    echo "=== pid $pid"
    tr '\0' '\n' < /proc/$pid/environ 2>/dev/null || echo "(unreadable)"
    [ "$pid" -le 1 ] && break
    pid=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$pid/status)
    [ -n "$pid" ] && [ "$pid" -ge 1 ] || break
done
echo "=== own environment"
env
"""


def environments_by_pid(report):
    """{pid or 'own': environment text} from the walk's report."""
    sections = {}
    for block in report.split("=== ")[1:]:
        header, _, body = block.partition("\n")
        sections["own" if header == "own environment" else int(header.split()[1])] = body
    return sections


@pytest.mark.parametrize("entry", ["queuectl-worker", "queuectl worker start"])
def test_no_secret_of_the_service_is_in_any_environment_a_job_can_read(store, db_path, processes, tmp_path, entry):
    values = {name: f"{name.lower()}-{secrets.token_hex(8)}" for name in SECRET_NAMES}
    report = tmp_path / "environments"
    job_id = enqueue(store, f"{{ {WALK_ANCESTORS} }} > {report} 2>&1")
    argv = [QUEUECTL_WORKER] if entry == "queuectl-worker" else [QUEUECTL, "worker", "start"]
    worker = processes.start([*argv, "--burst"], env={**QUIET, **values, "QUEUECTL_DB": str(db_path)})
    assert worker.wait(timeout=60) == 0, processes.log(worker)
    assert store.get_job(job_id)["state"] == "completed"

    sections = environments_by_pid(report.read_text())
    text = report.read_text()
    for name, value in values.items():
        assert value not in text, f"{name} reached a job"
    # The walk really read our processes: the supervisor (the started process: `worker start` execs in place),
    # its worker (the job's parent) and the job itself, each with the worker's environment.
    worker_pid = int(store.get_job(job_id)["worker_id"].rsplit("-", 2)[1])
    for pid in (worker.pid, worker_pid):
        assert "QUEUECTL_DB=" in sections.get(pid, ""), (pid, sections.keys())
    assert "QUEUECTL_JOB_ID=" + job_id in sections["own"]


def test_the_token_is_read_from_the_shell_that_started_the_worker_before_the_scrub_too(store, db_path, processes,
                                                                                        tmp_path):
    # What the scrub cannot reach: a process that is not ours. Documented (docs/security.md); this shows the walk
    # itself finds a secret where there is one, so the test above cannot pass by reading nothing.
    value = f"token-{secrets.token_hex(8)}"
    report = tmp_path / "environments"
    enqueue(store, f"{{ {WALK_ANCESTORS} }} > {report} 2>&1")
    shell = processes.start(["/bin/sh", "-c", f"{QUEUECTL_WORKER} --burst; echo done"],
                            env={**QUIET, "QUEUECTL_API_TOKEN": value, "QUEUECTL_DB": str(db_path)})
    assert shell.wait(timeout=60) == 0, processes.log(shell)
    sections = environments_by_pid(report.read_text())
    assert value in sections[shell.pid]  # the starting shell's own environment: not ours to change
    assert all(value not in body for pid, body in sections.items() if pid != shell.pid)


def test_pgpassword_is_handed_to_the_re_executed_worker_outside_its_environment_block():
    # The worker needs PGPASSWORD (libpq reads it with getenv) but a job must not read it in /proc/PPID/environ:
    # the re-executed program gets it through an inherited pipe, into os.environ only.
    program = ("from queuectl_core.secret_env import take_handed_secrets; take_handed_secrets(); import os;"
               " block = open('/proc/self/environ', 'rb').read();"
               " print(os.environ.get('PGPASSWORD'), b'PGPASSWORD' in block, b'pw-1' in block,"
               " 'QUEUECTL_API_TOKEN' in os.environ, 'QUEUECTL_SECRETS_FD' in os.environ,"
               " len(os.listdir('/proc/self/fd')))")
    starter = ("import sys; from queuectl_core.secret_env import exec_without_secrets;"
               f" exec_without_secrets([sys.executable, '-c', {program!r}])")
    result = subprocess.run([sys.executable, "-c", starter], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "PGPASSWORD": "pw-1", "QUEUECTL_API_TOKEN": "t-1"})
    assert result.returncode == 0, result.stderr
    password, in_block, value_in_block, token, fd_variable, open_fds = result.stdout.split()
    assert (password, in_block, value_in_block, token, fd_variable) == ("pw-1", "False", "False", "False", "False")
    assert int(open_fds) <= 4  # 0, 1, 2 and listdir's own: the pipe was closed after reading
