"""`worker start --concurrency K`: one worker process runs K jobs at once, with every per-job promise kept per slot.
Real processes and signals, on both backends."""

import os
import signal
import time

from helpers import QUIET, alive, enqueue, run_cli, wait_for, wait_state
from queuectl_core.validation import check_job


def read_pids(path):
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def history(store, job_id):
    return store.get_job(job_id, history=True)["history"]


def finished(store, *job_ids):
    return all(store.get_job(job_id)["state"] in ("completed", "dead", "cancelled") for job_id in job_ids)


def running_jobs(store):
    """{worker id: [ids of the jobs it runs]} from the worker registry."""
    return {worker["id"]: [job["id"] for job in worker["jobs"]] for worker in store.live_workers()}


def test_k_jobs_run_at_once_in_one_worker_process_and_the_registry_shows_each_slot(store, db_path, processes):
    ids = [enqueue(store, "sleep 2; echo done", id=f"j{n}") for n in range(4)]
    processes.start_workers(db_path, "--count", "1", "--concurrency", "4", env=QUIET)
    wait_for(lambda: sum(map(len, running_jobs(store).values())) == 4, 30, message="4 jobs running")
    (worker,) = store.live_workers()
    assert worker["concurrency"] == 4
    assert sorted(job["id"] for job in worker["jobs"]) == ids
    wait_for(lambda: finished(store, *ids), 30, message="the jobs to finish")
    runs = [history(store, job_id)[0] for job_id in ids]
    assert {run["worker_id"] for run in runs} == {worker["id"]}
    assert all(run["exit_code"] == 0 and run["output"] == "done\n" for run in runs)
    # Every run started before any of them ended: they overlapped.
    assert max(run["started_at"] for run in runs) < min(run["finished_at"] for run in runs)


def test_a_timeout_in_one_slot_kills_that_job_only(store, db_path, processes):
    slow = enqueue(store, "sleep 60", id="slow", timeout=1, max_retries=0)
    neighbours = [enqueue(store, "sleep 3; echo done", id=f"n{n}") for n in range(2)]
    processes.start_workers(db_path, "--concurrency", "3", env=QUIET)
    wait_for(lambda: finished(store, slow, *neighbours), 40, message="the jobs to finish")
    assert store.get_job(slow)["state"] == "dead"
    killed = history(store, slow)[0]
    assert killed["error"].startswith("timeout")
    for job_id in neighbours:
        (run,) = history(store, job_id)
        assert (run["exit_code"], run["error"], run["output"]) == (0, None, "done\n")
        assert run["started_at"] < killed["finished_at"] < run["finished_at"]  # it ran on through the kill


def test_cancelling_one_slot_stops_that_job_only(store, db_path, processes, tmp_path):
    victim = enqueue(store, "sleep 60", id="victim")
    neighbours = [enqueue(store, "sleep 3; echo done", id=f"n{n}") for n in range(2)]
    processes.start_workers(db_path, "--concurrency", "3", env=QUIET)
    wait_for(lambda: sum(map(len, running_jobs(store).values())) == 3, 30, message="3 jobs running")
    assert run_cli(db_path, "cancel", victim).returncode == 0
    wait_for(lambda: finished(store, victim, *neighbours), 40, message="the jobs to finish")
    assert store.get_job(victim)["state"] == "cancelled"
    for job_id in neighbours:
        assert store.get_job(job_id)["state"] == "completed"
        assert history(store, job_id)[0]["output"] == "done\n"


def test_a_sigkilled_worker_takes_every_running_tree_with_it_and_each_job_is_handed_back_once(
        store, db_path, processes, tmp_path):
    store.set_setting("lease_timeout", "1")
    pids = tmp_path / "pids"
    # The first run leaves a child behind its shell (in the job's process group); the run after the hand-back ends.
    command = (f'if [ "$QUEUECTL_ATTEMPT" = 1 ]; then sleep 200 & echo $! >> {pids}; echo $$ >> {pids}; wait;'
               ' else echo again; fi')
    ids = [enqueue(store, command, id=f"k{n}") for n in range(3)]
    processes.start_workers(db_path, "--concurrency", "3", env=QUIET)
    wait_for(lambda: len(read_pids(pids)) == 6, 30, message="3 jobs to start")
    (victim_id, running), = running_jobs(store).items()
    assert sorted(running) == ids
    victim_pid = next(worker["pid"] for worker in store.live_workers() if worker["id"] == victim_id)
    processes.start_workers(db_path, "--concurrency", "3", env=QUIET)
    os.kill(victim_pid, signal.SIGKILL)
    first_runs = read_pids(pids)
    wait_for(lambda: not any(alive(pid) for pid in first_runs), 15, message="every tree of the killed worker to end")
    wait_for(lambda: finished(store, *ids), 40, message="the jobs to run again")
    for job_id in ids:
        lost, again = history(store, job_id)  # handed back once: two runs, no more
        assert "worker lost" in lost["error"] and victim_id in lost["error"]
        assert (again["exit_code"], again["output"]) == (0, "again\n") and again["worker_id"] != victim_id
        assert store.get_job(job_id)["state"] == "completed"


def test_a_second_sigterm_hands_back_every_running_job(store, db_path, processes, tmp_path):
    pids = tmp_path / "pids"
    ids = [enqueue(store, f"echo $$ >> {pids}; sleep 300", id=f"h{n}") for n in range(3)]
    workers = processes.start_workers(db_path, "--concurrency", "3", env=QUIET)
    wait_for(lambda: len(read_pids(pids)) == 3, 30, message="3 jobs to start")
    workers.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # let the first signal be relayed before the second one
    workers.send_signal(signal.SIGTERM)
    assert workers.wait(timeout=30) == 0, processes.log(workers)
    for job_id in ids:
        job = store.get_job(job_id, history=True)
        assert (job["state"], job["attempts"]) == ("pending", 0)
        assert "interrupted" in job["history"][0]["error"] and job["history"][0]["finished_at"]
    wait_for(lambda: not any(alive(pid) for pid in read_pids(pids)), 10, message="the shells to end")


def test_a_first_sigterm_lets_every_running_job_finish(store, db_path, processes):
    ids = [enqueue(store, "sleep 1.5; echo finished", id=f"f{n}") for n in range(3)]
    workers = processes.start_workers(db_path, "--concurrency", "3", env=QUIET)
    for job_id in ids:
        wait_state(store, job_id, "processing")
    workers.send_signal(signal.SIGTERM)
    assert workers.wait(timeout=30) == 0, processes.log(workers)
    assert [store.get_job(job_id)["state"] for job_id in ids] == ["completed"] * 3


def test_the_output_of_concurrent_jobs_never_mixes(store, db_path, processes):
    lines = 3000
    ids = [enqueue(store, f'for i in $(seq 1 {lines}); do echo "$QUEUECTL_JOB_ID line $i"; done', id=f"o{n}")
           for n in range(4)]
    workers = processes.start_workers(db_path, "--concurrency", "4", "--burst", env=QUIET)
    assert workers.wait(timeout=60) == 0, processes.log(workers)
    for job_id in ids:
        output = history(store, job_id)[0]["output"]
        assert output.splitlines() == [f"{job_id} line {i}" for i in range(1, lines + 1)]


def test_every_job_runs_exactly_once_over_processes_with_several_slots(store, db_path, processes, tmp_path):
    log = tmp_path / "runs.log"
    ids = store.enqueue_many(
        [(n, check_job({"command": f'echo "$QUEUECTL_JOB_ID" >> {log}', "id": f"e{n}"})) for n in range(200)])
    workers = processes.start_workers(db_path, "--count", "2", "--concurrency", "4", "--burst", env=QUIET)
    assert workers.wait(timeout=120) == 0, processes.log(workers)
    assert sorted(log.read_text().split()) == sorted(ids)
    assert store.counts()["completed"] == 200


def test_a_worker_process_holds_one_postgresql_connection_whatever_its_slots(pg_url, processes):
    import secrets

    import psycopg
    from helpers import POSTGRES_URL
    from queuectl_core.store import open_store

    name = f"queuectl-slots-{secrets.token_hex(4)}"
    store = open_store(pg_url)
    try:
        ids = [enqueue(store, "sleep 4", id=f"c{n}") for n in range(10)]
        processes.start_workers(f"{pg_url}&application_name={name}", "--count", "2", "--concurrency", "5", env=QUIET)
        wait_for(lambda: sum(map(len, running_jobs(store).values())) == 10, 30, message="10 jobs running")
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            connections = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                        (name,)).fetchone()[0]
        assert connections == 2  # 2 worker processes, 10 slots
        wait_for(lambda: finished(store, *ids), 30, message="the jobs to finish")
    finally:
        store.close()


def test_queuectl_worker_start_passes_its_concurrency_and_the_environment_sets_the_default(
        store, db_path, processes):
    from helpers import QUEUECTL

    ids = [enqueue(store, "sleep 1.5", id=f"c{n}") for n in range(2)]
    cli = processes.start([QUEUECTL, "worker", "start", "--concurrency", "2", "--burst"],
                          env={"QUEUECTL_DB": str(db_path), **QUIET})
    assert cli.wait(timeout=60) == 0, processes.log(cli)
    runs = [history(store, job_id)[0] for job_id in ids]
    assert runs[0]["worker_id"] == runs[1]["worker_id"]  # one process ran both, at once
    assert max(run["started_at"] for run in runs) < min(run["finished_at"] for run in runs)
    processes.start_workers(db_path, env={"QUEUECTL_CONCURRENCY": "3", **QUIET})
    wait_for(lambda: store.live_workers(), 30, message="the worker to register")
    assert store.live_workers()[0]["concurrency"] == 3


def test_a_concurrency_out_of_range_is_refused_with_a_clear_message(tmp_path):
    import subprocess

    from helpers import QUEUECTL, QUEUECTL_WORKER, assert_no_traceback

    def refused(result, *words):
        assert result.returncode == 2, (result.returncode, result.stderr)
        assert_no_traceback(result)
        for word in words:
            assert word in result.stderr, (word, result.stderr)

    db = {"QUEUECTL_DB": str(tmp_path / "queue.db")}
    refused(run_cli(db["QUEUECTL_DB"], "worker", "start", "--concurrency", "0"), "--concurrency", "1<=x<=256")
    for value in ("0", "257", "many"):
        refused(subprocess.run([QUEUECTL_WORKER, "--concurrency", value], capture_output=True, text=True,
                               env={**os.environ, **db}, timeout=30), "--concurrency", "from 1 to 256")
    refused(subprocess.run([QUEUECTL, "worker", "start"], capture_output=True, text=True, timeout=30,
                           env={**os.environ, **db, "QUEUECTL_CONCURRENCY": "lots"}),
            "QUEUECTL_CONCURRENCY", "from 1 to 256")


def test_limits_hold_inside_one_worker_with_free_slots(store, db_path, processes):
    # 6 slots, but the key lets 2 run at once and the queue 3: a worker never fills its slots past a limit.
    keyed = [enqueue(store, "sleep 0.6", id=f"k{n}", concurrency_key="deploy", concurrency_limit=2) for n in range(4)]
    store.set_queue_limit("batch", 3)
    queued = [enqueue(store, "sleep 0.6", id=f"q{n}", queue="batch") for n in range(5)]
    workers = processes.start_workers(db_path, "--concurrency", "6", "--burst", env=QUIET)
    assert workers.wait(timeout=60) == 0, processes.log(workers)

    def most_at_once(job_ids):
        runs = [history(store, job_id)[0] for job_id in job_ids]
        events = sorted([(run["started_at"], 1) for run in runs] + [(run["finished_at"], -1) for run in runs])
        running = peak = 0
        for _, change in events:  # an end and a start at the same millisecond: the end first
            running += change
            peak = max(peak, running)
        return peak

    assert most_at_once(keyed) == 2
    assert most_at_once(queued) == 3
