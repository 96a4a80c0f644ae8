"""Jobs start in a directory of their own (`--job-dir`, QUEUECTL_JOB_DIR, else $HOME), never the database's."""

import os
import shutil

import pytest
from helpers import QUEUECTL, QUEUECTL_WORKER, QUIET, assert_refused, enqueue, run_cli, wait_for


def run_burst(processes, db_path, *args, env=None, cwd=None):
    """`queuectl-worker --burst ARGS` to its end; the finished process."""
    worker = processes.start_workers(db_path, "--burst", *args, env={**QUIET, **(env or {})}, cwd=cwd)
    assert worker.wait(timeout=60) == 0, processes.log(worker)
    return worker


def last_output(store, job_id):
    job = store.get_job(job_id, history=True)
    assert job["state"] == "completed", job
    return job["history"][-1]["output"]


@pytest.mark.parametrize("way", ["--job-dir", "QUEUECTL_JOB_DIR", "HOME", "worker start --job-dir"])
def test_a_job_starts_in_the_workers_job_directory(store, db_path, processes, tmp_path, way):
    jobs, home, elsewhere = tmp_path / "jobs", tmp_path / "home", tmp_path / "elsewhere"
    for directory in (jobs, home, elsewhere):
        directory.mkdir()
    job_id = enqueue(store, "pwd")
    env = {"HOME": str(home if way == "HOME" else elsewhere)}
    args = []
    if way == "--job-dir":
        args = ["--job-dir", str(jobs)]
    elif way == "QUEUECTL_JOB_DIR":
        env["QUEUECTL_JOB_DIR"] = str(jobs)
    if way == "worker start --job-dir":
        worker = processes.start([QUEUECTL, "worker", "start", "--burst", "--job-dir", str(jobs)],
                                 env={**QUIET, **env, "QUEUECTL_DB": str(db_path)}, cwd=elsewhere)
        assert worker.wait(timeout=60) == 0, processes.log(worker)
    else:
        run_burst(processes, db_path, *args, env=env, cwd=elsewhere)  # the worker's own directory is not used
    assert last_output(store, job_id) == f"{home if way == 'HOME' else jobs}\n"


def test_a_job_that_empties_its_directory_cannot_touch_the_database(sqlite_path, processes, tmp_path):
    from queuectl_core.store import open_store

    store = open_store(str(sqlite_path))
    home = tmp_path / "home"
    home.mkdir()
    (home / "a-file-of-the-job-dir").write_text("x")
    job_id = enqueue(store, "rm -f ./*; ls -A; echo done")
    after = enqueue(store, "echo next")
    # The worker is started where the database is (the mistake that used to put jobs beside it).
    run_burst(processes, sqlite_path, env={"HOME": str(home)}, cwd=tmp_path)
    assert last_output(store, job_id) == "done\n"  # it ran, in the job directory, which it emptied
    assert not (home / "a-file-of-the-job-dir").exists()
    assert sqlite_path.exists() and last_output(store, after) == "next\n"
    store.close()


def test_the_database_directory_as_job_directory_is_refused(sqlite_path, tmp_path):
    import subprocess

    def start(*args, env=None):
        return subprocess.run([*args, "--burst"], capture_output=True, text=True, timeout=60,
                              env={**os.environ, **QUIET, "QUEUECTL_DB": str(sqlite_path), **(env or {})})

    for result in (start(QUEUECTL_WORKER, "--job-dir", str(tmp_path)),
                   start(QUEUECTL_WORKER, "--job-dir", str(tmp_path / "." / "")),
                   start(QUEUECTL_WORKER, env={"QUEUECTL_JOB_DIR": str(tmp_path)}),
                   start(QUEUECTL_WORKER, env={"HOME": str(tmp_path)}),
                   start(QUEUECTL, "worker", "start", "--job-dir", str(tmp_path))):
        assert_refused(result, 2, "job directory", str(tmp_path), "database", "--job-dir")


def test_a_missing_job_directory_is_refused_at_start(db_path, tmp_path):
    import subprocess

    missing = tmp_path / "missing"
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for args, env in (([QUEUECTL_WORKER, "--job-dir", str(missing)], {}),
                      ([QUEUECTL_WORKER, "--job-dir", str(a_file)], {}),
                      ([QUEUECTL_WORKER], {"QUEUECTL_JOB_DIR": str(missing)}),
                      ([QUEUECTL_WORKER], {"QUEUECTL_JOB_DIR": "", "HOME": str(missing)}),
                      ([QUEUECTL, "worker", "start", "--job-dir", str(missing)], {})):
        result = subprocess.run([*args, "--burst"], capture_output=True, text=True, timeout=60,
                                env={**os.environ, **QUIET, "QUEUECTL_DB": str(db_path), **env})
        assert_refused(result, 2, "job directory", "does not exist")
    empty = subprocess.run([QUEUECTL_WORKER, "--job-dir", "", "--burst"], capture_output=True, text=True, timeout=60,
                           env={**os.environ, **QUIET, "QUEUECTL_DB": str(db_path)})
    assert_refused(empty, 2, "--job-dir needs a directory")


def test_a_job_directory_removed_while_the_worker_runs_fails_that_run_and_the_worker_goes_on(
        store, db_path, processes, tmp_path):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    worker = processes.start_workers(db_path, "--job-dir", str(jobs), env=QUIET)
    first = enqueue(store, "pwd")
    wait_for(lambda: store.get_job(first)["state"] == "completed", 30, message="the first job")
    shutil.rmtree(jobs)
    second = enqueue(store, "pwd", max_retries=0)
    wait_for(lambda: store.get_job(second)["state"] == "dead", 30, message="the run in the missing directory")
    error = store.get_job(second)["last_error"]
    assert str(jobs) in error and "No such file or directory" in error, error
    jobs.mkdir()
    third = enqueue(store, "pwd")
    wait_for(lambda: store.get_job(third)["state"] == "completed", 30, message="a job once the directory is back")
    assert worker.poll() is None
    assert run_cli(db_path, "worker", "stop").returncode == 0
    assert worker.wait(timeout=30) == 0, processes.log(worker)
