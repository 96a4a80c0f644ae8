"""The RQ peer's task: run a shell command; return its start and finish times."""

import subprocess
import time


def run_command(command):
    started = time.time()
    subprocess.run(["/bin/sh", "-c", command])
    return started, time.time()
