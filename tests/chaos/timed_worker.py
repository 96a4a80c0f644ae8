"""`queuectl-worker` with a stopwatch around each claim, for the contention script's claim latency figures.

The worker is the real one (same entry point, same loop, same store); only Store.claim_next is wrapped, to
append "<microseconds> <1 if a job was claimed else 0>" to $QUEUECTL_CLAIM_TIMINGS/claims-<pid>.txt.
"""

import os
import sys
import time

from queuectl_core.store import base as store_base

_claim_next = store_base.Store.claim_next
_files = {}


def timed_claim_next(self, *args, **kwargs):
    started = time.perf_counter_ns()
    claim = _claim_next(self, *args, **kwargs)
    microseconds = (time.perf_counter_ns() - started) // 1000
    pid = os.getpid()  # the supervisor forks the workers: one file per worker process
    if pid not in _files:
        path = os.path.join(os.environ["QUEUECTL_CLAIM_TIMINGS"], f"claims-{pid}.txt")
        _files[pid] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(_files[pid], f"{microseconds} {int(claim is not None)}\n".encode())
    return claim


store_base.Store.claim_next = timed_claim_next

if __name__ == "__main__":
    from queuectl_worker.main import main

    sys.exit(main())
