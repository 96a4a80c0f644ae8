"""`queuectl-worker` with a stopwatch around each claim, for the contention script's claim latency figures.

The worker is the real one (same entry point, same loop, same store); only Store.finish_runs (which records the
ended runs and claims for the free slots) is wrapped: each call that claims appends "<microseconds> <1 if a job was
claimed else 0>" to $QUEUECTL_CLAIM_TIMINGS/claims-<pid>.txt.
"""

import os
import sys
import time

from queuectl_core.store import base as store_base

_finish_runs = store_base.Store.finish_runs
_files = {}


def timed_finish_runs(self, results, worker_id=None, lease_seconds=None, claim_count=0, *args, **kwargs):
    started = time.perf_counter_ns()
    transitions, claims = _finish_runs(self, results, worker_id, lease_seconds, claim_count, *args, **kwargs)
    if not claim_count:
        return transitions, claims
    microseconds = (time.perf_counter_ns() - started) // 1000
    pid = os.getpid()  # the supervisor forks the workers: one file per worker process
    if pid not in _files:
        path = os.path.join(os.environ["QUEUECTL_CLAIM_TIMINGS"], f"claims-{pid}.txt")
        _files[pid] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(_files[pid], f"{microseconds} {int(bool(claims))}\n".encode())
    return transitions, claims


store_base.Store.finish_runs = timed_finish_runs

if __name__ == "__main__":
    from queuectl_worker.main import main

    sys.exit(main())
