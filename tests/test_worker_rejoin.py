"""Ghost workers (issue 13, item 4): after an outage longer than 2 x lease_timeout (a long lock, a full disk, a
failover, a partition) the first worker back deleted the other workers' rows (they looked dead). They went on
claiming, but vanished from `worker list`, /metrics and `worker stop`, and their --health failed for good. A
heartbeat that finds no row for its worker now registers it again, in the same transaction."""

from helpers import QUEUECTL_WORKER, QUIET, enqueue, run_cli, wait_for
from queuectl_core.store import open_store


def test_workers_whose_rows_were_forgotten_register_again_and_worker_stop_reaches_them(db_path, processes):
    store = open_store(str(db_path))
    try:
        store.set_settings({"lease_timeout": 3})  # a heartbeat a second
        group = processes.start_workers(db_path, "--count", "3", env=QUIET)
        wait_for(lambda: len(store.live_workers()) == 3, timeout=30, message="three workers")
        listed = {(worker["id"], worker["started_at"]) for worker in store.live_workers()}

        store.connection.execute("DELETE FROM workers")  # what the first heartbeat after the outage did
        assert store.live_workers() == []

        wait_for(lambda: {(w["id"], w["started_at"]) for w in store.live_workers()} == listed, timeout=15,
                 message="every worker listed again, with its own start time")
        job = enqueue(store, "echo still working")
        wait_for(lambda: store.get_job(job)["state"] == "completed", timeout=30, message="a job after the outage")
        health = processes.start([QUEUECTL_WORKER, "--health"], env={"QUEUECTL_DB": str(db_path)})
        assert health.wait(timeout=30) == 0

        stop = run_cli(db_path, "worker", "stop")
        assert stop.returncode == 0, stop.stderr
        assert group.wait(timeout=30) == 0  # every one of them was asked, and stopped
        assert store.live_workers() == []
        assert processes.log(group).count("registered again") == 3
    finally:
        store.close()
