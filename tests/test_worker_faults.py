"""Worker faults found by the chaos campaign (tests/chaos), each with the test that keeps it fixed.

- The contention run: API reads closed the database files they had opened read-write, inotify reported
  IN_CLOSE_WRITE, and every idle worker woke for a claim (a write transaction) that found nothing: 11,066 empty
  claims in 9 s with 8 workers and 2 API readers, 933 once fixed.
- The soak: a second SIGTERM that reached the supervisor while Python was shutting down (after its workers had
  exited) killed it with the default action: exit -15 (143) instead of 0 after a clean stop.
"""

import os
import signal
import sys
import time
from pathlib import Path

from helpers import QUEUECTL_WORKER, wait_for
from queuectl_core.store import open_store
from queuectl_core.validation import check_job

TIMED_WORKER = str(Path(__file__).resolve().parent / "chaos" / "timed_worker.py")


def claim_attempts(directory):
    return sum(len(path.read_text().splitlines()) for path in directory.glob("claims-*.txt"))


def test_reads_of_the_database_and_files_beside_it_do_not_wake_an_idle_worker_but_a_new_job_does(
        sqlite_path, tmp_path, processes):
    timings = tmp_path / "claims"
    timings.mkdir()
    open_store(str(sqlite_path)).close()
    worker = processes.start([sys.executable, TIMED_WORKER, "--count", "1"],
                             env={"QUEUECTL_DB": str(sqlite_path), "QUEUECTL_CLAIM_TIMINGS": str(timings)})
    wait_for(lambda: claim_attempts(timings) > 0, timeout=30, message="the worker's first claim")

    before = claim_attempts(timings)
    neighbour = sqlite_path.parent / "app.log"
    for number in range(300):  # ~2 s of readers and a log beside the database
        reader = open_store(str(sqlite_path))
        reader.counts()
        reader.list_jobs(limit=5)
        reader.close()
        with open(neighbour, "a") as log:
            log.write(f"line {number}\n")
    woken = claim_attempts(timings) - before

    # Idle, the worker still looks a few times a second (for jobs whose run_at arrives): far fewer than 600 events.
    assert woken < 150, woken
    store = open_store(str(sqlite_path))
    store.enqueue(check_job({"id": "new", "command": "true"}))
    wait_for(lambda: store.get_job("new")["state"] == "completed", timeout=30, message="the new job to run")
    store.close()
    assert worker.poll() is None, processes.log(worker)


def test_a_supervisor_flooded_with_sigterm_still_stops_with_exit_0(sqlite_path, processes):
    open_store(str(sqlite_path)).close()
    codes = []
    for _ in range(3):
        worker = processes.start([QUEUECTL_WORKER, "--count", "1"], env={"QUEUECTL_DB": str(sqlite_path)})
        store = open_store(str(sqlite_path))
        wait_for(lambda: store.live_workers(), timeout=30, message="the worker to start")  # noqa: B023
        store.close()
        deadline = time.monotonic() + 60
        while worker.poll() is None and time.monotonic() < deadline:  # SIGTERM after SIGTERM, until it is gone
            try:
                os.kill(worker.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            time.sleep(0.001)
        codes.append(worker.wait(timeout=10))
    assert codes == [0, 0, 0], [processes.log(p)[-500:] for p in processes.processes]


def test_a_dropped_postgresql_connection_neither_abandons_the_running_job_nor_stops_the_worker(pg_url, processes):
    # A server restart, a failover or an idle timeout drops connections. The worker used to fail every call from
    # then on, and the heartbeat's error escaped the run: the job went on unsupervised, its result never stored.
    import secrets

    import psycopg
    from helpers import POSTGRES_URL, run_cli

    name = f"queuectl-drop-{secrets.token_hex(4)}"
    url = f"{pg_url}&application_name={name}"  # the worker's connections, to be dropped
    store = open_store(pg_url)
    try:
        store.set_settings({"lease_timeout": 3})
        worker = processes.start_workers(url, "--count", "1")
        store.enqueue(check_job({"id": "long", "command": "sleep 3; echo done"}))
        wait_for(lambda: store.get_job("long")["state"] == "processing", timeout=30, message="the run to start")
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            dropped = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                    " WHERE application_name = %s", (name,)).fetchone()[0]
        assert dropped == 1  # the worker's one connection, which also LISTENs
        assert run_cli(url, "enqueue", '{"id": "after", "command": "echo after"}').returncode == 0

        def finished():
            return all(store.get_job(job)["state"] == "completed" for job in ("long", "after"))

        wait_for(finished, timeout=60, message="both jobs to complete")
        runs = store.get_job("long", history=True)["history"]
        assert [(run["exit_code"], run["error"], run["output"]) for run in runs] == [(0, None, "done\n")]
        assert worker.poll() is None, processes.log(worker)
    finally:
        store.close()


def test_a_dropped_notification_connection_never_costs_a_finished_run(pg_url, processes):
    # Issue 13, item 6b: the worker drained its LISTEN connection between a job's end and the recording of its
    # result; with that connection dropped, the error skipped the recording: the job stayed processing until its
    # lease expired and ran again as "worker lost", though its worker was alive. The worker now LISTENs on its one
    # connection: dropped again and again, each time while a job runs, it listens again and loses no result.
    import secrets

    import psycopg
    from helpers import POSTGRES_URL, QUIET

    name = f"queuectl-listen-{secrets.token_hex(4)}"
    store = open_store(pg_url)
    try:
        store.set_settings({"lease_timeout": 3})
        worker = processes.start_workers(f"{pg_url}&application_name={name}", "--count", "1", env=QUIET)
        for number in range(3):
            job = f"run-{number}"
            store.enqueue(check_job({"id": job, "command": "sleep 0.5; echo done"}))
            wait_for(lambda: store.get_job(job)["state"] == "processing", timeout=30,  # noqa: B023
                     message="the run to start")
            with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                dropped = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                        " WHERE application_name = %s", (name,)).fetchone()
            assert dropped[0] == 1  # its one connection
            wait_for(lambda: store.get_job(job)["state"] == "completed", timeout=30,  # noqa: B023
                     message="the job to complete")
            runs = store.get_job(job, history=True)["history"]
            assert [(run["exit_code"], run["error"], run["output"]) for run in runs] == [(0, None, "done\n")]
        assert worker.poll() is None, processes.log(worker)
        assert "Traceback" not in processes.log(worker)
    finally:
        store.close()


def test_a_durability_change_reaches_a_running_worker_at_its_next_heartbeat(sqlite_path):
    # Found while writing docs/reliability.md: `config set durability full` reached only processes started
    # afterwards; a running worker (strace: 0 fsyncs for 20 jobs) kept synchronous=NORMAL until restarted.
    worker, cli = open_store(str(sqlite_path)), open_store(str(sqlite_path))
    try:
        worker.register_worker("w1", "host", 1)
        assert worker.connection.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        cli.set_setting("durability", "full")
        worker.heartbeat("w1", 30)
        assert worker.connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        cli.set_setting("durability", "normal")
        worker.heartbeat("w1", 30)
        assert worker.connection.execute("PRAGMA synchronous").fetchone()[0] == 1
    finally:
        worker.close()
        cli.close()
