"""A job never outlives its worker's lease: a thread that kills the running job when the lease runs out.

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
    """One thread per worker; armed for each run with the job's process group and the lease's end."""

    def __init__(self):
        self._lock = threading.Condition()
        self._pid = None
        self._deadline = None
        self.fired = False  # the last armed run was killed because its lease ran out
        self._thread = threading.Thread(target=self._watch, name="lease-guard", daemon=True)
        self._thread.start()

    def arm(self, pid, renewed_at, lease_seconds):
        """Guard the job whose process group leader is `pid`, its lease renewed at `renewed_at` (monotonic: the
        start of the renewal call)."""
        with self._lock:
            self._pid, self.fired = pid, False
            self._deadline = _deadline(renewed_at, lease_seconds)
            self._lock.notify()

    def renewed(self, renewed_at, lease_seconds):
        """The lease was renewed by a call that started at `renewed_at`."""
        with self._lock:
            if self._pid is not None:
                self._deadline = _deadline(renewed_at, lease_seconds)
                self._lock.notify()

    def disarm(self):
        """The run ended (or is being recorded): nothing to guard. Returns whether the guard had killed it."""
        with self._lock:
            self._pid = self._deadline = None
            self._lock.notify()
            return self.fired

    def _watch(self):
        with self._lock:
            while True:
                if self._deadline is None:
                    self._lock.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._lock.wait(left)
                    continue
                _kill_tree(self._pid)
                self.fired = True
                self._pid = self._deadline = None


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
