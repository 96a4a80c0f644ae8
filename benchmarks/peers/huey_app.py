"""The Huey peer: one SqliteHuey in QUEUECTL_BENCH_HUEY_DB, one task that runs a shell command.

The consumer imports `peers.huey_app.huey`; the task returns its start and finish times so the
benchmark reads them back from the result store (no polling inside the measured window).
"""

import os
import subprocess
import time

from huey import SqliteHuey

huey = SqliteHuey(filename=os.environ.get("QUEUECTL_BENCH_HUEY_DB", "/tmp/queuectl-bench-huey.db"))


@huey.task()
def run_command(command):
    started = time.time()
    subprocess.run(["/bin/sh", "-c", command])
    return started, time.time()
