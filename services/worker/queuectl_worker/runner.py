"""Running one job's shell command: its process group, its output tail, ending its process tree."""

import functools
import os
import signal
import subprocess
import tempfile
import time

import psutil
from queuectl_core.waiting import wait_readable

from . import launch, linux

OUTPUT_TAIL_BYTES = 64 * 1024  # kept per run; a job printing 20 MB costs 64 KiB in the database
# A running job's output lives in memory; past this size the worker frees all but the tail (checked with each
# output flush), so a job printing gigabytes costs memory only for what it prints between two checks.
OUTPUT_TRIM_BYTES = 4 * 1024 * 1024
PAGE = 4096
KILL_GRACE_SECONDS = 2.0  # between SIGTERM and SIGKILL when a job's tree is ended
_HIDDEN_VARIABLES = ("QUEUECTL_API_TOKEN",)  # secrets of the service that jobs have no business reading


class JobProcess:
    """A job's `/bin/sh -c COMMAND`, leading its own process group, output into an anonymous file."""

    def __init__(self, command, extra_env, cwd=None, stdin=None):
        """Start the job: `extra_env` over the worker's environment less its secrets, in `cwd` (None: the worker's
        directory), `stdin` (text) on its standard input. OSError when it cannot start (JobStartFailed for a
        missing `cwd`): no process is left behind."""
        if cwd is not None and not os.path.isdir(cwd):
            raise JobStartFailed(f"working directory {cwd} does not exist or is not a directory (the job's cwd)")
        self._output = _output_file()
        self.started = time.monotonic()
        stdin_fd = None if stdin is None else _input_file(stdin)
        try:
            # If this worker dies, even by SIGKILL, the kernel kills the job's shell (PR_SET_PDEATHSIG).
            self.process = launch.start_shell(command, self._output, _job_environment(), extra_env, cwd, stdin_fd)
        except OSError as error:
            os.close(self._output)
            if cwd is not None and isinstance(error, (FileNotFoundError, NotADirectoryError, PermissionError)):
                raise JobStartFailed(f"working directory {cwd} cannot be entered: {error.strerror}") from None
            raise
        finally:
            if stdin_fd is not None:
                os.close(stdin_fd)  # the job holds its own copy
        self.pid = self.process.pid
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            self._pidfd = None

    @property
    def exit_status(self):
        """The shell's return code (negative: killed by that signal), or None while it runs."""
        return self.process.poll()

    def wait(self, timeout, other_fds=()):
        """Wait up to `timeout` seconds for the shell to exit or one of `other_fds` to be readable."""
        if self._pidfd is not None:
            wait_readable([self._pidfd, *other_fds], timeout)
        else:  # no pidfd: poll in short steps
            deadline = time.monotonic() + max(timeout, 0)
            while self.process.poll() is None and time.monotonic() < deadline:
                ready = wait_readable(list(other_fds), min(0.01, deadline - time.monotonic()))
                if ready:
                    break
        return self.process.poll() is not None

    def end_leftovers(self):
        """After the shell exited: terminate what it left running in its process group."""
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass

    def kill_tree(self, grace=KILL_GRACE_SECONDS):
        """End the whole process tree: TERM to the group and every descendant, a grace, then KILL.

        Descendants are found by walking the children (psutil), so one that called setsid
        and left the process group is ended too.
        """
        try:
            tree = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            tree = []
        _signal_all(self.pid, tree, signal.SIGTERM)
        deadline = time.monotonic() + grace
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        _, alive = psutil.wait_procs(tree, timeout=max(0.0, deadline - time.monotonic()))
        _signal_all(self.pid, alive, signal.SIGKILL)
        self.process.wait()

    def output_tail(self, limit=OUTPUT_TAIL_BYTES):
        """The last `limit` bytes of combined stdout and stderr, as text."""
        return self.output_snapshot(limit)[0]

    def output_size(self):
        """Bytes of output so far (one fstat: cheap enough to ask often)."""
        return os.fstat(self._output).st_size

    def trim_output(self):
        """Free the memory of all but the output's tail (a hole punched before it; offsets stay valid)."""
        size = self.output_size()
        if size > OUTPUT_TRIM_BYTES:
            linux.punch_hole(self._output, 0, (size - OUTPUT_TAIL_BYTES) // PAGE * PAGE)

    def output_snapshot(self, limit=OUTPUT_TAIL_BYTES):
        """(text, offset): the last `limit` bytes at most, as text, and how many bytes came before them.

        The kept part starts on a UTF-8 character boundary, so a reader that follows the output by
        byte offsets (`queuectl logs --follow`) never splits a character."""
        # pread, not seek + read: the file offset is shared with the job's stdout, which writes at it.
        size = self.output_size()
        offset = max(0, size - limit)
        raw = os.pread(self._output, size - offset, offset)
        if offset:
            skip = next((i for i, byte in enumerate(raw[:4]) if byte & 0xC0 != 0x80), 0)
            raw, offset = raw[skip:], offset + skip
        text = raw.decode("utf-8", errors="replace")
        if offset:
            text = f"[... {offset} earlier bytes not kept ...]\n" + text
        return text, offset

    def close(self):
        """Release the output file and the pidfd."""
        os.close(self._output)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


class JobStartFailed(OSError):
    """The job could not be started for a reason of its own (its `cwd`): that run fails, the worker goes on."""


def _input_file(text):
    """A descriptor of an anonymous file holding `text` (a job's `stdin`, <= 1 MiB), read from its start. A file,
    not a pipe: the job reads it at its own pace and the worker never blocks writing it, however large."""
    descriptor = _output_file()
    data = text.encode("utf-8")
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view):]
    os.lseek(descriptor, 0, os.SEEK_SET)
    return descriptor


def _output_file():
    """A descriptor of an anonymous file for a job's output: in memory (memfd_create, ~5 µs) where possible; a
    temp file on ext4 costs 20-200 µs of CPU to create and free, a fifth of a no-op job's whole overhead."""
    try:
        return os.memfd_create("queuectl-job-output", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        output = tempfile.TemporaryFile(prefix="queuectl-job-")
        descriptor = os.dup(output.fileno())  # close-on-exec, like every descriptor Python opens
        output.close()  # the descriptor keeps the (unlinked) file
        return descriptor


@functools.cache
def _job_environment():
    """The worker's environment without its secrets, as (name, value) pairs (read once: the worker does not
    change it)."""
    return tuple((k, v) for k, v in os.environ.items() if k not in _HIDDEN_VARIABLES)


def _signal_all(group_leader, processes, signal_number):
    try:
        os.killpg(group_leader, signal_number)
    except (ProcessLookupError, PermissionError):
        pass
    for process in processes:
        try:
            process.send_signal(signal_number)
        except psutil.Error:
            pass
