"""A job's output through a real worker: any byte survives, on both backends; memory bounded by size, not rate."""

import os
import time

import psutil
from helpers import QUIET, cli_json, enqueue, run_cli, wait_for


def test_nul_and_invalid_utf8_in_the_output_are_stored_escaped_and_the_job_runs_once(store, db_path, processes):
    # PostgreSQL text cannot hold NUL: such a job used to be retried for ever, then run again as "worker lost".
    job_id = enqueue(store, r"printf 'a\000b\377c'; printf 'x\000' >&2")
    worker = processes.start_workers(db_path, "--burst", env=QUIET)
    assert worker.wait(timeout=60) == 0, processes.log(worker)
    shown = cli_json(db_path, "show", job_id)
    assert (shown["state"], shown["exit_code"], len(shown["history"])) == ("completed", 0, 1)
    assert shown["history"][0]["output"] == "a\\x00b\\xffcx\\x00"
    assert "database error" not in processes.log(worker)


def memory_of(pid):
    """Bytes the process holds: its resident memory plus any in-memory file (memfd) it has open."""
    held = psutil.Process(pid).memory_info().rss
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}").startswith("/memfd:"):
                held += os.stat(f"/proc/{pid}/fd/{name}").st_blocks * 512
        except OSError:
            pass  # closed meanwhile
    return held


def test_a_job_printing_300_mb_keeps_the_workers_memory_small(sqlite_path, processes):
    from queuectl_core.store import open_store

    store = open_store(str(sqlite_path))
    supervisor = processes.start_workers(sqlite_path, env=QUIET)
    warm_up = enqueue(store, "echo warm")
    wait_for(lambda: store.get_job(warm_up)["state"] == "completed", 30, message="the warm-up job")
    worker = psutil.Process(supervisor.pid).children()[0].pid
    baseline = memory_of(worker)

    job_id = enqueue(store, "head -c 300000000 /dev/zero; echo end")
    peak = baseline
    deadline = time.monotonic() + 120
    while store.get_job(job_id)["state"] != "completed":
        assert time.monotonic() < deadline, "the job did not finish in 120 s"
        peak = max(peak, memory_of(worker))
        time.sleep(0.005)  # sampling, not waiting for a condition: the peak is what is measured

    print(f"the worker grew by {(peak - baseline) / 2**20:.1f} MiB")
    assert peak - baseline < 20 * 2**20, f"the worker grew by {(peak - baseline) / 2**20:.0f} MiB"
    run = store.get_job(job_id, history=True)["history"][-1]
    assert run["output"].endswith("\\x00" * 1000 + "end\n")
    assert run["output"].startswith("[... 299934468 earlier bytes not kept ...]\n")  # every byte counted
    assert run_cli(sqlite_path, "worker", "stop").returncode == 0
    assert supervisor.wait(timeout=30) == 0, processes.log(supervisor)
    store.close()
