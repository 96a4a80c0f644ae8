"""Starting a job's shell: its own session, PR_SET_PDEATHSIG, output into a file, as fast as possible.

Three ways, the first that works on this machine is used (see `method()`):
- "vfork": the worker's C extension (_spawn.c): vfork + prctl + execve, as cheap as a bare
  subprocess spawn (measured here: ~1,700/s against Popen's ~1,500/s from one process);
- "setpriv": subprocess (vfork) of setpriv(1), which sets PR_SET_PDEATHSIG and execs the shell: a
  second exec, about half as fast. Where the extension was not built (no C compiler);
- "preexec": subprocess with a Python preexec_fn doing the prctl: fork instead of vfork, slowest.
"""

import functools
import os
import shutil
import signal
import subprocess
import time

from . import linux

try:
    from . import _spawn
except ImportError:  # built without a C compiler
    _spawn = None


@functools.cache
def method():
    """The way job shells are started here: "vfork", "setpriv" or "preexec"."""
    if _spawn is not None:
        return "vfork"
    return "setpriv" if _setpriv_prefix() else "preexec"


def start_shell(command, stdout_fd, base_env=(), extra_env=None, cwd=None, stdin_fd=None):
    """`/bin/sh -c command`, stdin /dev/null (or `stdin_fd`), stdout and stderr on `stdout_fd`, leading a new
    session, killed by the kernel (SIGKILL) when this process dies, started in the directory `cwd` (None: this
    process's own). Its environment: `base_env`, a tuple of (name, value) pairs (the same one each time: its encoding
    is kept), then the dict `extra_env`. Returns a Child or a Popen: both have pid, poll() and wait(timeout=None).
    OSError when the shell cannot be started (a missing `cwd`: FileNotFoundError), with no child left behind."""
    argv = ["/bin/sh", "-c", command]
    extra_env = extra_env or {}
    how = method()
    if how == "vfork":
        env = _encoded_environment(base_env, tuple(extra_env)) + [
            os.fsencode(key) + b"=" + os.fsencode(value) for key, value in extra_env.items()]
        directory = None if cwd is None else os.fsencode(cwd)
        return Child(_spawn.spawn([os.fsencode(arg) for arg in argv], env,
                                  _dev_null() if stdin_fd is None else stdin_fd, stdout_fd, stdout_fd, directory))
    parent_pid = os.getpid()
    return subprocess.Popen(
        [*(_setpriv_prefix() if how == "setpriv" else ()), *argv],
        stdin=subprocess.DEVNULL if stdin_fd is None else stdin_fd, stdout=stdout_fd, stderr=subprocess.STDOUT,
        env={**dict(base_env), **extra_env}, start_new_session=True, cwd=cwd,
        preexec_fn=(lambda: linux.die_with_parent(signal.SIGKILL, parent_pid)) if how == "preexec" else None,
    )


class Child:
    """A child process started by _spawn, reaped here (the subset of Popen the runner uses)."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        """The return code (negative: killed by that signal), or None while the child runs."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout=None):
        """Wait for the child to exit; subprocess.TimeoutExpired after `timeout` seconds."""
        if timeout is None:
            if self.returncode is None:
                self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            return self.returncode
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(["/bin/sh"], timeout)
            time.sleep(min(left, 0.01))
        return self.returncode


@functools.lru_cache(maxsize=4)
def _encoded_environment(base_env, replaced):
    """base_env without the names in `replaced`, encoded for execve: once, not ~15 µs for every job."""
    return [os.fsencode(key) + b"=" + os.fsencode(value) for key, value in base_env if key not in replaced]


@functools.cache
def _dev_null():
    return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)


@functools.cache
def _setpriv_prefix():
    """argv that makes the command after it get SIGKILL when its parent dies (setpriv, util-linux >= 2.33
    sets PR_SET_PDEATHSIG, then execs the command), or () when it is missing or does not work. If the
    worker dies in the microseconds before setpriv's prctl, the supervisor, which adopts orphans
    (subreaper), ends the shell instead of the kernel."""
    setpriv = shutil.which("setpriv")
    if not linux.available() or setpriv is None:
        return ()
    prefix = (setpriv, "--pdeathsig", "KILL", "--")
    try:
        works = subprocess.run([*prefix, "true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        works = False
    return prefix if works else ()
