"""The multi-host scenarios: each builds its load on a fresh database of the lab's cluster, does its harm, and
checks the result (checks.py). Each returns a Verdict with its failures and figures."""

import json
import random
import subprocess
import time

from checks import Verdict, check_exactly_once, job_spec, read_runs
from lab import QUEUECTL
from queuectl_core.store import open_store
from queuectl_core.validation import check_job


def wait_until(predicate, timeout, message):
    """Poll `predicate` every 0.05 s; the value, or AssertionError naming `message` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(0.05)


def prepared(lab, name, lease, backoff_base=1):
    """A fresh database `name` with `lease` as lease_timeout: (url, store)."""
    url = lab.create_database(name)
    store = open_store(url)
    store.set_setting("lease_timeout", str(lease))
    store.set_setting("backoff_base", str(backoff_base))  # a lost run is tried again after 1 s, not 2
    store.set_setting("max_retries", "5")
    return url, store


def enqueue(store, specs):
    return store.enqueue_many([(n, check_job(spec)) for n, spec in enumerate(specs, start=1)])


def background(prefix, count, log, seed):
    """`count` jobs of 0.3-1 s (ticks of 0.1 s), the same ones in every run for a seed."""
    rng = random.Random(seed)
    return [job_spec(f"{prefix}{n}", rng.randint(3, 10), log) for n in range(count)]


def worker_hosts(url):
    """The hosts `queuectl worker list` shows (the CLI, from the root namespace)."""
    result = subprocess.run([QUEUECTL, "--db", url, "worker", "list", "--json"], capture_output=True, text=True,
                            timeout=30)
    if result.returncode != 0:
        return set()
    return {worker["host"] for worker in json.loads(result.stdout)}


def processing_on(store, job_id, host):
    job = store.get_job(job_id)
    return job["state"] == "processing" and (job["worker_id"] or "").startswith(f"{host}-")


def all_completed(store, count):
    return store.counts()["completed"] == count


def finish(lab, store, ids, log, verdict, timeout, started):
    """Wait for every job, stop the workers, run the common checks; figures: the scenario's seconds."""
    try:
        wait_until(lambda: all_completed(store, len(ids)), timeout, f"{len(ids)} jobs to complete")
    except AssertionError as error:
        verdict.failures.append(str(error))
    verdict.figures["seconds"] = round(time.monotonic() - started, 1)
    for number in list(lab.workers):
        lab.stop_workers(number)
    check_exactly_once(store, ids, log, verdict)
    store.close()
    return verdict


def grep_log(lab, number, text):
    return [line for line in lab.worker_log(number).read_text(errors="replace").splitlines() if text in line]


def long_partition(lab):
    """Host 1 is cut off mid-job for 3 x lease_timeout: its jobs run again elsewhere, its own copies stop before
    (no overlap), the result it finished during the cut is refused when the link returns, and it rejoins."""
    lease = 4
    verdict = Verdict()
    url, store = prepared(lab, "long_partition", lease)
    log = lab.dir / "long_partition.log"
    started = time.monotonic()
    # Host 1 alone at first, so that it holds both: x ends during the cut (its result arrives late), y runs on
    # past the lease (its worker must stop it).
    lab.start_workers(1, url)
    ids = enqueue(store, [job_spec("x", 15, log), job_spec("y", 200, log)])
    wait_until(lambda: processing_on(store, "x", "host-1") and processing_on(store, "y", "host-1"), 30,
               "host-1 to run x and y")
    lab.cut(1)
    cut_at = time.time()
    lab.start_workers(2, url)
    lab.start_workers(3, url)
    ids += enqueue(store, background("b", 30, log, seed=1))
    time.sleep(3 * lease)
    lab.heal(1)
    healed_at = time.time()
    verdict.figures.update({"lease_timeout": lease, "partition_seconds": round(healed_at - cut_at, 1)})
    try:
        wait_until(lambda: "host-1" in worker_hosts(url), 4 * lease, "host-1 back in `worker list`")
        verdict.figures["rejoined_after_seconds"] = round(time.time() - healed_at, 1)
    except AssertionError as error:
        verdict.failures.append(f"{error} (without a restart)")
    # Host 1's late result for x reaches the store only after the heal, and is refused (fenced by the lease token).
    fenced = wait_for_lines(lab, 1, "job x was handed to another worker; result dropped", 2 * lease)
    verdict.check(fenced, "host-1 never tried to record x's late result, or it was not refused")
    finish(lab, store, ids, log, verdict, 120, started)
    runs = read_runs(log)
    for job_id in ("x", "y"):
        job_runs = runs.get(job_id, [])
        first_host = job_runs[0].host if job_runs else None
        verdict.check(len(job_runs) >= 2 and first_host == "host-1" and job_runs[-1].host != "host-1",
                      f"{job_id} was not run again by another host after host-1 was cut off: {job_runs}")
        if job_runs:
            verdict.figures[f"{job_id}_host1_last_line_after_cut"] = round(job_runs[0].last - cut_at, 2)
        if len(job_runs) >= 2:
            verdict.figures[f"{job_id}_rerun_started_after_cut"] = round(job_runs[1].first - cut_at, 2)
    verdict.check(runs.get("x") and runs["x"][0].ended, "x's first run on host-1 did not finish during the cut")
    verdict.check(runs.get("y") and not runs["y"][0].ended, "y's copy on host-1 was not stopped")
    verdict.figures["host1_lease_stops"] = len(grep_log(lab, 1, "stopped its run"))
    return verdict


def wait_for_lines(lab, number, text, timeout):
    try:
        return wait_until(lambda: grep_log(lab, number, text), timeout, text)
    except AssertionError:
        return []


def short_partition(lab):
    """Host 1 is cut off for less than a third of lease_timeout, twice, under load: nothing runs twice."""
    lease = 9
    verdict = Verdict()
    url, store = prepared(lab, "short_partition", lease)
    log = lab.dir / "short_partition.log"
    started = time.monotonic()
    ids = enqueue(store, background("s", 60, log, seed=2))
    for number in (1, 2, 3):
        lab.start_workers(number, url)
    cuts = []
    for _ in range(2):
        wait_until(lambda: any(processing_on(store, job_id, "host-1") for job_id in ids), 30, "host-1 busy")
        lab.cut(1)
        cut_at = time.monotonic()
        time.sleep(2.5)
        lab.heal(1)
        cuts.append(round(time.monotonic() - cut_at, 1))
        time.sleep(2)
    verdict.figures.update({"lease_timeout": lease, "partitions_seconds": cuts})
    finish(lab, store, ids, log, verdict, 120, started)
    verdict.check(not verdict.figures["reruns"], f"jobs ran twice: {verdict.figures['reruns']}")
    return verdict


def server_restart(lab):
    """The PostgreSQL server restarts (pg_ctl restart -m fast) under load: workers reconnect, LISTEN again, and
    every job completes once."""
    lease = 6
    verdict = Verdict()
    url, store = prepared(lab, "server_restart", lease)
    log = lab.dir / "server_restart.log"
    started = time.monotonic()
    ids = enqueue(store, background("r", 90, log, seed=3))
    for number in (1, 2, 3):
        lab.start_workers(number, url)
    wait_until(lambda: store.counts()["completed"] >= 20, 60, "20 jobs to complete")
    restart_started = time.monotonic()
    lab.pg_ctl("restart", "-m", "fast")
    verdict.figures["restart_seconds"] = round(time.monotonic() - restart_started, 1)
    store.close()
    store = open_store(url)
    # Each of the 6 workers connects again (seen from the server: its one connection, which also LISTENs).
    try:
        wait_until(lambda: worker_sessions(store) >= 6, 30, "6 worker sessions after the restart")
        verdict.figures["reconnected_after_seconds"] = round(time.monotonic() - restart_started, 1)
    except AssertionError as error:
        verdict.failures.append(f"{error}: {worker_sessions(store)} found")
    try:
        wait_until(lambda: all_completed(store, len(ids)), 120, f"{len(ids)} jobs to complete")
    except AssertionError as error:
        verdict.failures.append(str(error))
    # Idle now, the workers listen again: a job enqueued into the empty queue starts at once. Without the LISTEN
    # it would wait for an idle worker's next look, up to 2 s later.
    time.sleep(2.5)
    pickups = []
    for number in range(3):
        (probe,) = enqueue(store, [job_spec(f"probe{number}", 1, log)])
        ids.append(probe)
        enqueued = time.monotonic()
        wait_until(lambda: store.get_job(probe)["state"] != "pending", 10, "the probe to start")  # noqa: B023
        pickups.append(round(time.monotonic() - enqueued, 3))
        time.sleep(0.7)
    verdict.figures["probe_pickup_seconds"] = pickups
    verdict.check(max(pickups) < 0.5, f"probe jobs waited {pickups} s to start: the workers do not LISTEN again")
    finish(lab, store, ids, log, verdict, 60, started)
    verdict.check(not verdict.figures["reruns"], f"jobs ran twice: {verdict.figures['reruns']}")
    return verdict


def worker_sessions(store):
    """The server's client sessions on this database other than `store`'s own: the workers'."""
    rows = store._read("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND backend_type = 'client backend' AND pid <> pg_backend_pid()").fetchone()
    return rows[0]


def packet_loss(lab, probability=0.1):
    """Host 2 loses `probability` of its packets both ways: every job still completes once, just slower there."""
    lease = 9
    verdict = Verdict()
    url, store = prepared(lab, "packet_loss", lease)
    log = lab.dir / "packet_loss.log"
    started = time.monotonic()
    lab.drop_packets(2, probability)
    ids = enqueue(store, background("p", 90, log, seed=4))
    for number in (1, 2, 3):
        lab.start_workers(number, url)
    finish(lab, store, ids, log, verdict, 150, started)
    lab.stop_dropping(2)
    verdict.figures["loss_probability"] = probability
    verdict.check(not verdict.figures["reruns"], f"jobs ran twice: {verdict.figures['reruns']}")
    return verdict


SCENARIOS = {"long_partition": long_partition, "short_partition": short_partition,
             "server_restart": server_restart, "packet_loss": packet_loss}
