"""The machine's limit: `/bin/sh -c true` spawned back to back from N Python processes at once."""

import os
import subprocess
import time

from common import HERE, PYTHON


def spawn_rate(processes=2, seconds=2.0, mode="plain"):
    """Spawns per second, all processes together (see spawner.py for the modes)."""
    start_at = time.time() + 0.3  # every spawner starts its clock at the same moment
    children = [
        subprocess.Popen([PYTHON, os.path.join(HERE, "spawner.py"), str(seconds), mode, str(start_at)],
                         stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    count, elapsed = 0, 0.0
    for child in children:
        out, _ = child.communicate(timeout=seconds + 30)
        if child.returncode != 0:
            raise RuntimeError(f"spawner exited {child.returncode}")
        spawned, took = out.split()
        count += int(spawned)
        elapsed = max(elapsed, float(took))
    return count / elapsed
