"""The worker service with real processes and signals on a real SQLite file."""

import json
import os
import signal
import statistics
import time

import psutil
import pytest
from helpers import QUEUECTL, QUIET, alive, enqueue, iso_seconds, run_cli, state_of, wait_for, wait_state
from queuectl_core.validation import check_job


def worker_pids(store):
    """pid of each live worker process (the pid is part of the worker id and recorded)."""
    return {w["id"]: w["pid"] for w in store.live_workers()}


def read_pids(path):
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_300_jobs_on_4_workers_each_run_exactly_once(store, db_path, processes, tmp_path):
    log = tmp_path / "runs.log"
    ids = store.enqueue_many(
        [(n, check_job({"command": f'echo "$QUEUECTL_JOB_ID" >> {log}', "id": f"j{n}"})) for n in range(300)]
    )
    workers = processes.start_workers(db_path, "--count", "4", "--burst", env=QUIET)
    assert workers.wait(timeout=120) == 0, processes.log(workers)
    lines = log.read_text().split()
    assert sorted(lines) == sorted(ids)  # every job once, none twice
    assert store.counts()["completed"] == 300
    ran_on = {job["worker_id"] for job in store.list_jobs(limit=300)}
    assert len(ran_on) >= 2  # the work was shared


def test_a_failing_job_is_retried_with_exponential_backoff_then_dead(store, db_path, processes):
    store.set_setting("backoff_base", "1.5")
    job_id = enqueue(store, "echo trying; exit 3", max_retries=2)
    workers = processes.start_workers(db_path, "--burst", env=QUIET)
    assert workers.wait(timeout=60) == 0, processes.log(workers)
    job = store.get_job(job_id, history=True)
    assert (job["state"], job["attempts"], job["exit_code"]) == ("dead", 3, 3)
    runs = job["history"]
    assert [r["attempt"] for r in runs] == [1, 2, 3]
    assert all(r["exit_code"] == 3 and r["output"] == "trying\n" for r in runs)
    starts = [iso_seconds(r["started_at"]) for r in runs]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    # delay after failure k is 1.5^k seconds: 1.5 then 2.25 (generous upper bounds: noisy machines)
    assert 1.4 <= gaps[0] < 6 and 2.1 <= gaps[1] < 8, gaps
    assert [j["id"] for j in store.list_jobs(state="dead")] == [job_id]


def test_a_timeout_kills_the_whole_process_tree_and_counts_as_a_failure(store, db_path, processes, tmp_path):
    pids = tmp_path / "pids"
    command = (f"sleep 300 & echo $! >> {pids}; setsid sleep 301 & echo $! >> {pids};"
               f" echo $$ >> {pids}; wait")
    job_id = enqueue(store, command, max_retries=0)
    workers = processes.start_workers(db_path, "--burst", "--timeout", "1", env=QUIET)
    assert workers.wait(timeout=60) == 0, processes.log(workers)
    job = store.get_job(job_id, history=True)
    assert (job["state"], job["exit_code"]) == ("dead", None)
    assert "timeout" in job["last_error"] and "timeout" in job["history"][0]["error"]
    recorded = read_pids(pids)
    assert len(recorded) == 3
    wait_for(lambda: not any(alive(p) for p in recorded), 10, message="every process of the job to end")


def test_a_jobs_own_timeout_wins_over_the_workers(store, db_path, processes):
    job_id = enqueue(store, "sleep 30", timeout=0.5, max_retries=0)
    workers = processes.start_workers(db_path, "--burst", "--timeout", "600", env=QUIET)
    assert workers.wait(timeout=60) == 0
    assert "timeout: killed after 0.5s" in store.get_job(job_id)["last_error"]


def test_output_is_kept_as_a_capped_tail(store, db_path, processes):
    job_id = enqueue(store, "head -c 20000000 /dev/zero | tr '\\0' 'x'; echo; echo the-end")
    workers = processes.start_workers(db_path, "--burst", env=QUIET)
    assert workers.wait(timeout=60) == 0
    output = store.get_job(job_id, history=True)["history"][0]["output"]
    assert output.endswith("the-end\n")
    assert 64 * 1024 <= len(output) < 65 * 1024
    assert "earlier bytes not kept" in output


def test_a_job_sees_its_id_attempt_and_worker_but_not_the_api_token(store, db_path, processes):
    job_id = enqueue(store, 'echo "$QUEUECTL_JOB_ID/$QUEUECTL_ATTEMPT/$QUEUECTL_WORKER_ID/${QUEUECTL_API_TOKEN:-none}"')
    workers = processes.start_workers(db_path, "--burst", env={**QUIET, "QUEUECTL_API_TOKEN": "secret"})
    assert workers.wait(timeout=60) == 0
    job = store.get_job(job_id, history=True)
    assert job["history"][0]["output"] == f"{job_id}/1/{job['worker_id']}/none\n"


def test_worker_stop_lets_the_running_job_finish_then_every_worker_exits(store, db_path, processes):
    job_id = enqueue(store, "sleep 1.5; echo finished")
    workers = processes.start_workers(db_path, "--count", "2", env=QUIET)
    wait_state(store, job_id, "processing")
    result = run_cli(db_path, "worker", "stop")
    assert result.returncode == 0 and "Asked 2 workers" in result.stdout
    assert workers.wait(timeout=30) == 0
    job = store.get_job(job_id, history=True)
    assert job["state"] == "completed" and job["history"][0]["output"] == "finished\n"
    assert store.live_workers() == []


def test_a_start_right_after_a_stop_works_and_does_not_cancel_the_stop(store, db_path, processes):
    first = processes.start_workers(db_path, env=QUIET)
    wait_for(lambda: len(store.live_workers()) == 1, message="the first worker")
    assert run_cli(db_path, "worker", "stop").returncode == 0
    second = processes.start_workers(db_path, env=QUIET)
    assert first.wait(timeout=30) == 0  # the stop still reached the first worker
    job_id = enqueue(store, "echo later")
    wait_state(store, job_id, "completed")  # ... and the second one works
    assert second.poll() is None
    assert len(store.live_workers()) == 1


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_lets_the_running_job_finish_then_exits_0(store, db_path, processes, signal_number):
    job_id = enqueue(store, "sleep 1.5; echo finished")
    workers = processes.start_workers(db_path, "--count", "2", env=QUIET)
    wait_state(store, job_id, "processing")
    workers.send_signal(signal_number)
    assert workers.wait(timeout=30) == 0
    assert state_of(store, job_id) == "completed"


def test_a_second_signal_kills_the_job_and_hands_it_back_at_once(store, db_path, processes, tmp_path):
    pids = tmp_path / "pids"
    job_id = enqueue(store, f"echo $$ >> {pids}; sleep 300")
    workers = processes.start_workers(db_path, env=QUIET)
    wait_for(lambda: read_pids(pids), message="the job to start")
    workers.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # let the first signal be relayed before the second one
    workers.send_signal(signal.SIGTERM)
    assert workers.wait(timeout=30) == 0
    job = store.get_job(job_id, history=True)
    assert (job["state"], job["attempts"]) == ("pending", 0)
    assert "interrupted" in job["history"][0]["error"] and job["history"][0]["finished_at"]
    wait_for(lambda: not alive(read_pids(pids)[0]), 10, message="the job's shell to end")


def test_a_sigkilled_workers_job_dies_with_it_and_another_worker_finishes_it(store, db_path, processes, tmp_path):
    store.set_setting("lease_timeout", "1")
    pids = tmp_path / "pids"
    job_id = enqueue(store, f"sleep 200 & echo $! >> {pids}; echo $$ >> {pids}; wait", timeout=3)
    group_a = processes.start_workers(db_path, env=QUIET)
    wait_for(lambda: len(read_pids(pids)) == 2, message="the job to start")
    victim_id, victim_pid = next(iter(worker_pids(store).items()))
    group_b = processes.start_workers(db_path, env=QUIET)
    os.kill(victim_pid, signal.SIGKILL)
    # The job's shell (PR_SET_PDEATHSIG) and its child (swept by the supervisor) die with the worker.
    first_run = read_pids(pids)
    wait_for(lambda: not any(alive(p) for p in first_run), 10, message="the killed worker's job processes to end")
    # Once the lease expires a live worker hands the job back and it runs again (and times out).
    wait_for(lambda: len(store.get_job(job_id, history=True)["history"]) >= 2, 20, message="a second run")
    job = store.get_job(job_id, history=True)
    assert "worker lost" in job["history"][0]["error"] and victim_id in job["history"][0]["error"]
    assert job["history"][1]["worker_id"] != victim_id
    assert group_a.poll() is None and group_b.poll() is None  # the supervisor restarted the killed worker
    wait_for(lambda: victim_id not in worker_pids(store), 10, message="the dead worker to leave the list")


def test_when_the_supervisor_is_killed_its_workers_finish_their_job_and_exit(store, db_path, processes):
    job_id = enqueue(store, "sleep 1; echo done")
    supervisor = processes.start_workers(db_path, env=QUIET)
    wait_state(store, job_id, "processing")
    worker_pid = next(iter(worker_pids(store).values()))
    supervisor.kill()
    supervisor.wait(timeout=10)
    wait_state(store, job_id, "completed")
    wait_for(lambda: not alive(worker_pid), 10, message="the orphaned worker to exit")


def test_concurrent_bulk_enqueuers_while_workers_run_lose_nothing(store, db_path, processes, tmp_path):
    log = tmp_path / "runs.log"
    workers = processes.start_workers(db_path, "--count", "2", env=QUIET)
    files = []
    for n in range(3):
        path = tmp_path / f"batch{n}.jsonl"
        path.write_text("".join(f'{{"id": "b{n}-{i}", "command": "echo b{n}-{i} >> {log}"}}\n' for i in range(100)))
        files.append(path)
    enqueuers = [processes.start([QUEUECTL, "enqueue", "--file", str(f)],
                                 env={"QUEUECTL_DB": str(db_path)}) for f in files]
    for enqueuer in enqueuers:
        assert enqueuer.wait(timeout=60) == 0, processes.log(enqueuer)
    wait_for(lambda: store.counts()["completed"] == 300, 90, message="all 300 jobs to complete")
    assert sorted(log.read_text().split()) == sorted(f"b{n}-{i}" for n in range(3) for i in range(100))
    assert "locked" not in processes.log(workers)


def test_an_idle_worker_picks_up_a_new_job_quickly_and_stays_near_zero_cpu(store, db_path, processes):
    processes.start_workers(db_path, env=QUIET)
    wait_for(lambda: store.live_workers(), message="the worker to register")
    worker = psutil.Process(next(iter(worker_pids(store).values())))
    time.sleep(0.5)
    cpu_before = sum(worker.cpu_times()[:2])
    time.sleep(2)
    idle_cpu = (sum(worker.cpu_times()[:2]) - cpu_before) / 2
    delays = []
    for _ in range(5):
        job_id = enqueue(store, "true")
        enqueued = time.time()
        wait_state(store, job_id, "completed")
        started = store.get_job(job_id, history=True)["history"][0]["started_at"]
        delays.append(iso_seconds(started) - enqueued)
        time.sleep(0.3)
    # Generous bounds only: the benchmark suite measures the real figures.
    assert statistics.median(delays) < 1.0, delays
    assert idle_cpu < 0.05, idle_cpu


def test_worker_start_through_the_cli_runs_workers_until_nothing_is_left(store, db_path):
    job_id = enqueue(store, "echo via-cli")
    result = run_cli(db_path, "worker", "start", "--count", "2", "--burst", env=QUIET, timeout=60)
    assert result.returncode == 0, result.stderr
    assert state_of(store, job_id) == "completed"


def test_worker_list_shows_host_pid_and_current_job(store, db_path, processes):
    job_id = enqueue(store, "sleep 2")
    processes.start_workers(db_path, env=QUIET)
    wait_state(store, job_id, "processing")
    result = run_cli(db_path, "worker", "list", "--json")
    (worker,) = json.loads(result.stdout)
    assert worker["current_job"] == job_id and str(worker["pid"]) in worker["id"]
    assert worker["host"] in worker["id"] and worker["heartbeat_at"].endswith("Z")
