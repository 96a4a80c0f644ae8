"""The Linux controls the worker relies on: prctl(2) for its processes."""

import ctypes
import os

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36

try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _prctl = _libc.prctl
except (OSError, AttributeError):  # not Linux: these controls become no-ops
    _prctl = None


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


def become_subreaper():
    """Adopt orphaned descendants (instead of init), so that they can be found and ended."""
    if _prctl is not None:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
