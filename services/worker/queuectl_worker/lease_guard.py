"""A job never outlives its worker's lease: a thread that kills a running job when its lease runs out.

The worker renews its lease from its loop, and a renewal over a cut network blocks that loop for up to the
connection's timeouts (a third of lease_timeout, and libpq's 2 s connect timeout after that). Checked only between
calls, the lease ran out before the run was stopped: `make multihost` saw a partitioned worker's job go on 1-2 s
past its lease, while another host could already run it. The guard measures the lease from the start of the last
renewal that got through (the database's expiry is counted from then too), and kills the job's process tree at
that time less a margin, whatever the loop is doing.
"""

import os
import signal
import threading
import time

import psutil

# The run is stopped this share of lease_timeout before the lease ends: room for clocks of other hosts that run a
# little ahead, and for the kill itself.
MARGIN_SHARE = 0.1


class LeaseGuard:
    """One thread per worker, guarding each running job (by its process group leader) until the lease's end."""

    def __init__(self):
        self._lock = threading.Condition()
        self._deadlines = {}  # pid of a job's shell -> when its lease ends, less the margin
        self._fired = set()  # pids killed because their lease ran out, until disarmed
        # What the thread sleeps toward: only an earlier deadline needs to wake it (a later one, or a run gone, it
        # finds when it wakes), so a busy worker does not wake it twice per job.
        self._sleeping_until = float("inf")
        self._thread = threading.Thread(target=self._watch, name="lease-guard", daemon=True)
        self._thread.start()

    def arm(self, pid, renewed_at, lease_seconds):
        """Guard the job whose process group leader is `pid`, its lease renewed at `renewed_at` (monotonic: the
        start of the renewal call, or of the claim)."""
        with self._lock:
            self._fired.discard(pid)
            self._deadlines[pid] = deadline = _deadline(renewed_at, lease_seconds)
            if deadline < self._sleeping_until:
                self._lock.notify()

    def renewed(self, renewed_at, lease_seconds, pids=None):
        """The leases of the jobs `pids` (None: every guarded job) were renewed by a call that started at
        `renewed_at`."""
        with self._lock:
            for pid in self._deadlines if pids is None else pids:
                if pid in self._deadlines:
                    self._deadlines[pid] = _deadline(renewed_at, lease_seconds)

    def disarm(self, pid=None):
        """The run of `pid` (None: every guarded one) ended or is being recorded: nothing to guard. Returns whether
        the guard had killed it (any of them)."""
        with self._lock:
            pids = list(self._deadlines) + list(self._fired) if pid is None else [pid]
            fired = False
            for each in pids:
                self._deadlines.pop(each, None)
                if each in self._fired:
                    self._fired.discard(each)
                    fired = True
            return fired

    def fired(self, pid):
        """True when the guard killed the job of `pid` (its lease ran out)."""
        with self._lock:
            return pid in self._fired

    def _watch(self):
        with self._lock:
            while True:
                if not self._deadlines:
                    self._sleeping_until = float("inf")
                    self._lock.wait()
                    continue
                pid, deadline = min(self._deadlines.items(), key=lambda item: item[1])
                left = deadline - time.monotonic()
                if left > 0:
                    self._sleeping_until = deadline
                    self._lock.wait(left)
                    continue
                _kill_tree(pid)
                self._fired.add(pid)
                del self._deadlines[pid]


def _deadline(renewed_at, lease_seconds):
    return renewed_at + lease_seconds * (1 - MARGIN_SHARE)


def _kill_tree(pid):
    """SIGKILL the job's process group and every descendant (one that left the group with setsid too): no grace,
    the lease is over. The shell is not reaped here: its pid stays taken until the worker's loop waits for it."""
    try:
        tree = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        tree = []
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for process in tree:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
