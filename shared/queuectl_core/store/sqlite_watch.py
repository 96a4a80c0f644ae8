"""The SQLite backend's change watcher: inotify on the database's directory.

On Linux it wakes a waiting worker as soon as any process on this host (containers sharing the volume included)
writes the database or its WAL. Where inotify is missing, the wait is a plain sleep and callers fall back to polling.
"""

import ctypes
import os
import struct
import time

from ..waiting import wait_readable

_IN_MODIFY = 0x00000002
_IN_CREATE = 0x00000100
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_EVENT_HEADER = struct.Struct("iIII")


class ChangeWatcher:
    """Wakes `wait()` when a file of the database at `path` changes."""

    def __init__(self, path):
        self._prefix = os.path.basename(path).encode()
        self._fd = _inotify_watch(os.path.dirname(path) or ".")

    @property
    def works(self):
        """True when changes wake the wait; False when it can only sleep."""
        return self._fd is not None

    def fileno(self):
        """The descriptor that becomes readable on a change (None when changes cannot be seen)."""
        return self._fd

    def wait(self, timeout):
        """Block up to `timeout` seconds; return True if the database changed meanwhile."""
        if self._fd is None:
            time.sleep(timeout)
            return False
        return bool(wait_readable([self._fd], timeout)) and self.drain()

    def drain(self):
        """Consume pending notifications; True if one concerned the database's files."""
        if self._fd is None:
            return False
        changed = False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return changed
            offset = 0
            while offset < len(data):
                _wd, _mask, _cookie, length = _EVENT_HEADER.unpack_from(data, offset)
                name = data[offset + 16: offset + 16 + length]
                changed = changed or name.startswith(self._prefix)
                offset += 16 + length

    def close(self):
        """Release the inotify descriptor."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _inotify_watch(directory):
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the running process's own libc
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return None
        # Not IN_CLOSE_WRITE: every process that merely read the database (an API request, `queuectl status`)
        # closes files it opened read-write; a commit or a checkpoint always writes, which IN_MODIFY sees.
        mask = _IN_MODIFY | _IN_CREATE
        if libc.inotify_add_watch(fd, os.fsencode(directory), mask) < 0:
            os.close(fd)
            return None
        return fd
    except (OSError, AttributeError):
        return None
