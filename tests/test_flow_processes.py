"""Flow control with real processes on both backends: racing worker groups (as on two hosts) against queue
limits, concurrency keys and rates, concurrent enqueues of one unique key, a pause of one queue, a burst worker
of one queue. Limits are checked from the jobs' own start and end times and from the runs' records."""

import json
import subprocess

from helpers import QUEUECTL, QUIET, enqueue, run_cli, wait_for, wait_state


def timed(path, seconds):
    """A job that appends its own start and end times (seconds since the epoch) to `path`."""
    return (f'echo "start $(date +%s.%N)" >> {path}; sleep {seconds}; echo "end $(date +%s.%N)" >> {path}')


def most_at_once(path):
    """The largest number of jobs between their start and end lines at any instant."""
    events = []
    for line in path.read_text().splitlines():
        kind, at = line.split()
        events.append((float(at), 0 if kind == "end" else 1))  # at one instant an end counts before a start
    running = most = 0
    for _, change in sorted(events):
        running += 1 if change else -1
        most = max(most, running)
    assert running == 0, "every job wrote its end"
    return most


def runs_at_once(store, job_ids):
    """The same, from the runs the store recorded (claim to result)."""
    events = []
    for job_id in job_ids:
        for run in store.get_job(job_id, history=True)["history"]:
            events += [(run["started_at"], 1), (run["finished_at"], 0)]
    running = most = 0
    for _, change in sorted(events, key=lambda event: (event[0], event[1])):
        running += 1 if change else -1
        most = max(most, running)
    return most


def start_groups(processes, db_path, groups, *args):
    """`groups` worker processes of 3 workers each, racing as workers on that many hosts would."""
    return [processes.start_workers(db_path, "--count", "3", *args, env={**QUIET, "QUEUECTL_HOST": f"host{n}"})
            for n in range(groups)]


def test_racing_worker_groups_never_exceed_a_queue_limit_or_a_key_limit(store, db_path, processes, tmp_path):
    store.set_queue_limit("encode", 2)
    in_queue, keyed = tmp_path / "queue.log", tmp_path / "key.log"
    queued = [enqueue(store, timed(in_queue, 0.2), queue="encode") for _ in range(12)]
    keys = [enqueue(store, timed(keyed, 0.1), concurrency_key="deploy", concurrency_limit=1) for _ in range(6)]
    free = [enqueue(store, "true") for _ in range(6)]
    groups = start_groups(processes, db_path, 3, "--burst")
    for group in groups:
        assert group.wait(timeout=120) == 0, processes.log(group)
    assert store.counts()["completed"] == 24
    assert most_at_once(in_queue) <= 2 and runs_at_once(store, queued) <= 2
    assert most_at_once(keyed) == 1 and runs_at_once(store, keys) == 1
    assert all(store.get_job(job_id)["state"] == "completed" for job_id in free)
    assert store.queue_info("encode")["counts"]["completed"] == 12


def test_a_rate_holds_over_every_window(store, db_path, processes):
    store.set_queue_rate("api", 2, 1)
    jobs = [enqueue(store, "true", queue="api") for _ in range(7)]
    groups = start_groups(processes, db_path, 2, "--burst")
    for group in groups:
        assert group.wait(timeout=120) == 0, processes.log(group)
    starts = sorted(run["started_at"] for job_id in jobs for run in store.get_job(job_id, history=True)["history"])
    assert len(starts) == 7
    from helpers import iso_seconds

    seconds = [iso_seconds(start) for start in starts]
    for index, start in enumerate(seconds):  # the starts in the window of one second that ends at each start
        assert sum(1 for other in seconds[: index + 1] if other > start - 1.0) <= 2, seconds
    assert seconds[-1] - seconds[0] >= 2.9  # 7 starts at 2 per second need at least 3 windows


def test_concurrent_enqueues_of_one_unique_key_add_exactly_one_job(store, db_path, tmp_path):
    job = json.dumps({"command": "true", "unique_key": "nightly-report"})
    lines = "\n".join(json.dumps({"command": "true", "unique_key": f"k{n}"}) for n in range(50))
    bulk = tmp_path / "bulk.jsonl"
    bulk.write_text(lines)
    env = {"QUEUECTL_DB": str(db_path)}
    import os

    single = [subprocess.Popen([QUEUECTL, "enqueue", job], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, **env}) for _ in range(8)]
    many = [subprocess.Popen([QUEUECTL, "enqueue", "--file", str(bulk)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, **env}) for _ in range(4)]
    answers = [process.communicate(timeout=60) + (process.returncode,) for process in single]
    summaries = [process.communicate(timeout=60) + (process.returncode,) for process in many]
    assert all(code == 0 for _, _, code in answers + summaries), answers + summaries
    assert len({out for out, _, _ in answers}) == 1  # every enqueue printed the one job's id
    assert store.counts()["pending"] == 51
    added = [out.split()[0] for out, _, _ in summaries]
    assert sum(int(count) for count in added) == 50, summaries


def test_a_paused_queue_holds_its_jobs_while_other_queues_run(store, db_path, processes):
    assert run_cli(db_path, "pause", "--queue", "reports").returncode == 0
    held = enqueue(store, "true", queue="reports")
    other = enqueue(store, "true", queue="mail")
    processes.start_workers(db_path, env=QUIET)
    wait_state(store, other, "completed")
    assert store.get_job(held)["state"] == "pending"
    assert run_cli(db_path, "resume", "--queue", "reports").returncode == 0
    wait_state(store, held, "completed")


def test_a_burst_worker_of_one_queue_leaves_the_others_alone(store, db_path):
    mine = [enqueue(store, "true", queue="mine") for _ in range(3)]
    theirs = enqueue(store, "true", queue="theirs")
    result = run_cli(db_path, "worker", "start", "--queue", "mine", "--burst", "--count", "2", env=QUIET,
                     timeout=60)
    assert result.returncode == 0, result.stderr
    assert {store.get_job(job_id)["state"] for job_id in mine} == {"completed"}
    wait_for(lambda: store.get_job(theirs)["state"] == "pending", 1)
