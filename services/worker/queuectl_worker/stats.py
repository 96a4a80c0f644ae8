"""CPU and memory of a worker and its running job, written with each heartbeat.

The API cannot see processes in other containers, so the worker measures them itself.
"""

import os

import psutil

_processes = {}  # pid -> psutil.Process, kept so that cpu_percent() measures since the last call


def _process(pid):
    process = _processes.get(pid)
    if process is None or not process.is_running():
        process = _processes[pid] = psutil.Process(pid)
    return process


def _measure(processes):
    cpu = memory = 0.0
    for process in processes:
        try:
            with process.oneshot():
                cpu += process.cpu_percent(interval=None)
                memory += process.memory_info().rss
        except psutil.Error:
            pass
    return {"cpu_percent": round(cpu, 1), "memory_bytes": int(memory)}


def collect_stats(jobs=()):
    """{'worker': {...}, 'job': {...} or None}: CPU percent and resident memory of the worker, and of the process
    trees of its running `jobs` (JobProcesses) together."""
    try:
        stats = {"worker": _measure([_process(os.getpid())]), "job": None}
        if jobs:
            tree = []
            for job in jobs:
                try:
                    root = _process(job.pid)
                    tree += [root] + [_process(child.pid) for child in root.children(recursive=True)]
                except psutil.Error:  # that job ended meanwhile
                    pass
            stats["job"] = _measure(tree)
    except psutil.Error:
        return None
    # Forget processes that ended, so the cache does not grow with every job.
    for pid in [pid for pid, p in _processes.items() if not p.is_running()]:
        del _processes[pid]
    return stats
