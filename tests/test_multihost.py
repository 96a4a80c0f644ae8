"""Workers on two 'hosts' against one PostgreSQL database: each job once, and a lost host's jobs recovered.

The hosts are two worker groups with different QUEUECTL_HOST identities on this machine; what they share
is only the database server, as workers on two machines would.
"""

import collections
import os
import signal

from helpers import wait_for
from queuectl_core.store import open_store
from queuectl_core.validation import check_job

QUIET = {"QUEUECTL_LOG_LEVEL": "WARNING"}


def test_two_hosts_run_1000_jobs_once_and_a_killed_hosts_jobs_are_finished_by_the_other(pg_url, processes, tmp_path):
    store = open_store(pg_url)
    store.set_setting("lease_timeout", "1")
    log = tmp_path / "runs.log"
    ids = store.enqueue_many([
        (n, check_job({"id": f"m{n}", "command": f'sleep 0.01; echo "$QUEUECTL_JOB_ID $QUEUECTL_WORKER_ID" >> {log}'}))
        for n in range(1000)
    ])
    host_a = processes.start_workers(pg_url, "--count", "3", env={**QUIET, "QUEUECTL_HOST": "host-a"})
    host_b = processes.start_workers(pg_url, "--count", "3", env={**QUIET, "QUEUECTL_HOST": "host-b"})
    wait_for(lambda: store.counts()["completed"] >= 250, 120, message="a quarter of the jobs to complete")

    # Host A is lost: its supervisor and every worker process die at once, mid-run.
    a_workers = [w["pid"] for w in store.live_workers() if w["host"] == "host-a"]
    assert a_workers, "host A had live workers"
    for pid in [host_a.pid, *a_workers]:
        os.kill(pid, signal.SIGKILL)
    host_a.wait(timeout=10)

    wait_for(lambda: store.counts()["completed"] == 1000, 180, message="every job to complete")
    assert host_b.poll() is None
    runs = collections.Counter(line.split()[0] for line in log.read_text().splitlines())
    assert set(runs) == set(ids)
    for job_id, count in runs.items():
        if count > 1:  # only a run cut short by the lost host may have run again
            history = store.get_job(job_id, history=True)["history"]
            assert any("worker lost" in (run["error"] or "") and "host-a" in run["worker_id"] for run in history)
    hosts = {store.get_job(job_id)["worker_id"].rsplit("-", 2)[0] for job_id in ids}
    assert hosts == {"host-a", "host-b"}  # worker ids name their host
    counts = store.counts()
    assert counts["processing"] == 0 and counts["dead"] == 0
    store.close()
