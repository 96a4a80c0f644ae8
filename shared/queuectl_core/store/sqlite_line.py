"""The SQLite workers' line: write transactions wait for each other on flock(2) instead of SQLite's busy sleeps.

SQLite's own wait (its busy handler) sleeps 1, 2, 5, 10... ms between tries while a worker holds the write lock for
~0.1 ms: two busy workers slept away 5-9% of their time with the lock long free (measured), and no-op jobs went ~5%
faster with the line, where the kernel wakes the next writer the moment the lock is released.

The line must never cost more than it saves: a wait in it is bounded (a worker frozen while holding it, SIGSTOP or
`docker pause`, or another program holding it, stalls the others at most LINE_WAIT_SECONDS, after which they go
without the line for LINE_PAUSE_SECONDS and SQLite's own bounded wait takes over), a stop signal ends the wait
as soon as that bound, and only those who may write the database may open the line's file (flock needs no write
access, so a file readable by others would let any reader hold every worker up).
"""

import fcntl
import logging
import os
import signal
import threading
import time

LINE_WAIT_SECONDS = 1.0
LINE_PAUSE_SECONDS = 60.0

log = logging.getLogger("queuectl.store")


class _WaitedTooLong(Exception):
    pass


def _give_up(number, frame):
    raise _WaitedTooLong


def line_mode(database_mode):
    """The line file's permissions: read and write for exactly the classes (owner, group, others) that may write
    the database, nothing for the others."""
    mode = 0
    for write_bit, read_write in ((0o200, 0o600), (0o020, 0o060), (0o002, 0o006)):
        if database_mode & write_bit:
            mode |= read_write
    return mode


class WritersLine:
    """flock(2) on PATH-lock, taken around each write transaction of a worker's store."""

    def __init__(self, path):
        """Open PATH-lock beside the database at `path`; `fd` is None when it cannot be opened (nothing changes)."""
        self._paused_until = 0.0
        try:
            mode = line_mode(os.stat(path).st_mode)
            self.fd = os.open(path + "-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
        except OSError:
            self.fd = None

    def enter(self):
        """Wait for the line (bounded); True when this process holds it and must call leave()."""
        if self.fd is None or time.monotonic() < self._paused_until:
            return False
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        if threading.current_thread() is not threading.main_thread():
            return False  # signals (the bound below) reach only the main thread: go without the line
        previous = signal.signal(signal.SIGALRM, _give_up)
        signal.setitimer(signal.ITIMER_REAL, LINE_WAIT_SECONDS)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            return True
        except _WaitedTooLong:
            self._paused_until = time.monotonic() + LINE_PAUSE_SECONDS
            log.warning("the writers' line (%s) was held for over %.0fs: going without it for %.0fs",
                        os.readlink(f"/proc/self/fd/{self.fd}"), LINE_WAIT_SECONDS, LINE_PAUSE_SECONDS)
            return False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def leave(self):
        """Let the next writer in."""
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self):
        """Close the line's file."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
