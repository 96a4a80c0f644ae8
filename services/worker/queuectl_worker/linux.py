"""The Linux controls the worker relies on: prctl(2) for its processes, fallocate(2) for job output."""

import ctypes
import os

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_FALLOC_FL_KEEP_SIZE = 1
_FALLOC_FL_PUNCH_HOLE = 2

try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _prctl = _libc.prctl
    _fallocate = _libc.fallocate
except (OSError, AttributeError):  # not Linux: these controls become no-ops
    _prctl = _fallocate = None


def die_with_parent(signal_number, parent_pid):
    """Have the kernel send `signal_number` to this process when its parent dies.

    Called in a freshly forked child; if the parent is already gone, exit at once.
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal_number, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def available():
    """True where prctl(2) can be called (Linux)."""
    return _prctl is not None


def punch_hole(fd, offset, length):
    """Free the storage of `length` bytes from `offset` of the file `fd`, keeping its size (fallocate(2)
    FALLOC_FL_PUNCH_HOLE): reads there give zeros. Best effort: a file system without it keeps the bytes."""
    if _fallocate is not None and length > 0:
        _fallocate(fd, _FALLOC_FL_KEEP_SIZE | _FALLOC_FL_PUNCH_HOLE, ctypes.c_int64(offset), ctypes.c_int64(length))


def become_subreaper():
    """Adopt orphaned descendants (instead of init), so that they can be found and ended."""
    if _prctl is not None:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
