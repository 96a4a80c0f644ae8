"""Idle pickup: enqueue one job into an idle queue, time until its run starts (the start time the
queue itself records), from the start of the enqueue call and from its return (the job committed);
and the idle worker's CPU use, measured with psutil before any job."""

import random
import time

from common import idle_cpu_percent, median, percentile
from systems import make


def pickup(system, samples=25, settle=2.0, cpu_seconds=3.0):
    """{'median_ms', 'p90_ms', 'idle_cpu_percent', ...} for one worker of `system`."""
    queue = make(system, 1)
    try:
        time.sleep(settle)  # past the warm-up: the worker is idle (polling backed off, or asleep)
        cpu = idle_cpu_percent(queue.worker_pids(), cpu_seconds)
        rng = random.Random(5)
        delays, after_commit, enqueues = [], [], []
        for _ in range(samples):
            time.sleep(rng.uniform(0.05, 0.15))  # idle again between jobs, at varying phases of any polling
            begin = time.time()
            job_id = queue.enqueue_one("true")
            end = time.time()  # the enqueue call returned: its transaction is committed
            enqueues.append((end - begin) * 1000)
            queue.wait_done([job_id], 10)
            started, _ = queue.times([job_id])[job_id]
            if system.startswith("queuectl"):  # its history holds whole milliseconds: truncate both ends alike
                begin, end = int(begin * 1000) / 1000, int(end * 1000) / 1000
            delays.append((started - begin) * 1000)
            after_commit.append((started - end) * 1000)  # may be < 0: the worker can start before the ack
        return {"median_ms": median(delays), "p90_ms": percentile(delays, 0.9), "min_ms": min(delays),
                "max_ms": max(delays), "enqueue_call_ms": median(enqueues),
                "after_commit_median_ms": median(after_commit), "after_commit_p90_ms": percentile(after_commit, 0.9),
                "samples": samples, "idle_cpu_percent": cpu, "idle_cpu_window_seconds": cpu_seconds}
    finally:
        queue.close()
