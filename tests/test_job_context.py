"""A job's own environment, directory and input reach the job (and never the worker), with real worker processes
on both backends; and `rerun`."""

import json
import os

import pytest
from helpers import QUIET, enqueue, run_cli, wait_state


def test_env_cwd_and_stdin_reach_the_job(store, db_path, processes, tmp_path):
    out = tmp_path / "seen"
    work = tmp_path / "work"
    work.mkdir()
    command = f'{{ echo "$GREETING|$QUEUECTL_JOB_ID|$(pwd)"; cat; }} > {out}'
    job_id = enqueue(store, command, env={"GREETING": "hello world", "QUEUECTL_JOB_ID": "forged"},
                     cwd=str(work), stdin="line one\nline two\n")
    workers = processes.start_workers(db_path, "--burst", env=QUIET)
    assert workers.wait(timeout=60) == 0, processes.log(workers)
    assert store.get_job(job_id)["state"] == "completed"
    # queuectl's own variables win over the job's
    assert out.read_text() == f"hello world|{job_id}|{work}\nline one\nline two\n"


def test_the_job_s_env_never_reaches_the_worker(store, db_path, processes, tmp_path):
    marker = tmp_path / "started"
    job_id = enqueue(store, f"touch {marker}; sleep 30", env={"ONLY_FOR_THE_JOB": "1"})
    processes.start_workers(db_path, "--count", "1", env=QUIET)
    wait_state(store, job_id, "processing")
    from helpers import wait_for

    wait_for(marker.exists, message="the job to start")
    [worker] = store.live_workers()
    with open(f"/proc/{worker['pid']}/environ", "rb") as handle:
        assert b"ONLY_FOR_THE_JOB" not in handle.read()
    job_pids = [pid for pid in os.listdir("/proc") if pid.isdigit() and _environ_has(pid, b"ONLY_FOR_THE_JOB=1")]
    assert job_pids  # the job's own processes have it (the fixture kills the workers, and so the job)


def _environ_has(pid, needle):
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return needle in handle.read().split(b"\0")
    except OSError:
        return False


def test_a_missing_cwd_fails_that_run_with_a_clear_error_and_the_worker_goes_on(store, db_path, processes, tmp_path):
    bad = enqueue(store, "true", cwd=str(tmp_path / "gone"), max_retries=0)
    good = enqueue(store, "true")
    workers = processes.start_workers(db_path, "--burst", env=QUIET)
    assert workers.wait(timeout=60) == 0, processes.log(workers)
    failed = store.get_job(bad, history=True)
    assert failed["state"] == "dead"
    assert f"working directory {tmp_path / 'gone'} does not exist" in failed["last_error"]
    assert failed["history"][0]["error"] == failed["last_error"]
    assert store.get_job(good)["state"] == "completed"


def test_a_mib_of_stdin_is_fed_whole_and_a_job_that_never_reads_it_does_not_block(store, db_path, processes):
    data = "x" * (1024 * 1024 - 1) + "\n"
    reader = enqueue(store, "wc -c", stdin=data)
    ignorer = enqueue(store, "true", stdin=data)
    workers = processes.start_workers(db_path, "--burst", env=QUIET)
    assert workers.wait(timeout=60) == 0, processes.log(workers)
    assert store.get_job(reader, history=True)["history"][0]["output"].strip() == "1048576"
    assert store.get_job(ignorer)["state"] == "completed"


@pytest.mark.parametrize("fields, words", [
    ({"env": {"A-B": "x"}}, ["env", "name"]),
    ({"env": {"A": 1}}, ["env", "A", "string"]),
    ({"env": ["A=1"]}, ["env", "object"]),
    ({"env": {f"V{n}": "x" for n in range(101)}}, ["env", "100"]),
    ({"cwd": "relative"}, ["cwd", "absolute"]),
    ({"cwd": ""}, ["cwd", "absolute"]),
    ({"stdin": "x" * (1024 * 1024 + 1)}, ["stdin", "1 MiB"]),
    ({"stdin": 5}, ["stdin", "string"]),
    ({"on_success": "echo"}, ["on_success", "object"]),
    ({"on_dead": {"command": "x", "id": "fixed"}}, ["on_dead", "id", "not allowed"]),
    ({"on_success": {"command": "x", "on_success": {"command": "y"}}}, ["on_success", "hooks of its own"]),
    ({"on_success": {"nothing": "x"}}, ["on_success", "unknown key"]),
])
def test_bad_context_keys_are_refused_naming_the_key(db_path, fields, words):
    # through standard input: a MiB is more than one argument may hold
    result = run_cli(db_path, "enqueue", "-", input=json.dumps({"command": "true", **fields}))
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    for word in words:
        assert word in message, (word, message)


def test_rerun_copies_the_spec_into_a_new_job(store, db_path):
    original = enqueue(store, "exit 3", max_retries=0, priority=5, timeout=9, env={"A": "1"}, cwd="/tmp",
                       stdin="in", on_success={"command": "echo ok"}, retry_on=[3])
    result = run_cli(db_path, "rerun", original, "--json")
    assert result.returncode == 0, result.stderr
    copy = json.loads(result.stdout)
    source = store.get_job(original)
    assert copy["id"] != original and copy["state"] == "pending" and copy["attempts"] == 0
    for key in ("command", "max_retries", "priority", "timeout", "env", "cwd", "stdin", "on_success", "retry_on"):
        assert copy[key] == source[key], key
    plain = run_cli(db_path, "rerun", original)
    assert plain.returncode == 0 and store.get_job(plain.stdout.strip())["command"] == "exit 3"
    missing = run_cli(db_path, "rerun", "no-such-job")
    assert missing.returncode == 1 and "no job with id 'no-such-job'" in missing.stderr
