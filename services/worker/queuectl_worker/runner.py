"""Running one job's shell command: its process group, its output tail, ending its process tree."""

import functools
import os
import signal
import time

import psutil
from queuectl_core.secret_env import without_secrets
from queuectl_core.waiting import wait_readable

from . import launch

OUTPUT_TAIL_BYTES = 64 * 1024  # kept per run; a job printing 20 MB costs 64 KiB in the database
# Read per call at most (then the loop goes on): a job that writes without pause cannot starve the worker's heartbeat.
READ_CHUNK_BYTES = 64 * 1024
READS_PER_DRAIN = 64
KILL_GRACE_SECONDS = 2.0  # between SIGTERM and SIGKILL when a job's tree is ended
NO_PIDFD_STEP_SECONDS = 0.01
ENDING_STEP_SECONDS = 0.05  # while a tree ends, how often the descendants still alive are looked for


class JobProcess:
    """A job's `/bin/sh -c COMMAND`, leading its own process group, its output read from a pipe.

    The output goes through a pipe the worker reads while it waits, keeping only the last OUTPUT_TAIL_BYTES: its
    memory stays the same however much a job prints and however fast (an in-memory file grew by what the job
    wrote between two trims: `head -c 300000000 /dev/zero` took the worker to ~300 MiB). A job that writes faster
    than the worker reads waits for it (the pipe is full), as it would for a terminal."""

    def __init__(self, command, extra_env, cwd=None, stdin=None):
        """Start the shell: `extra_env` over the worker's environment less its secrets, in the directory `cwd`
        (None: the worker's own), `stdin` (text) on its standard input. OSError when it cannot be started
        (JobStartFailed when `cwd` cannot be entered): nothing is left behind then."""
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        self.started = time.monotonic()
        stdin_fd = None if stdin is None else _input_file(stdin)
        try:
            # If this worker dies, even by SIGKILL, the kernel kills the job's shell (PR_SET_PDEATHSIG).
            self.process = launch.start_shell(command, write_end, _job_environment(), extra_env, cwd=cwd,
                                              stdin_fd=stdin_fd)
        except BaseException as error:
            os.close(read_end)
            if cwd is not None and isinstance(error, (FileNotFoundError, NotADirectoryError, PermissionError)):
                gone = "does not exist" if isinstance(error, FileNotFoundError) else "cannot be entered"
                raise JobStartFailed(f"working directory {cwd} {gone} ({error.strerror})") from None
            raise
        finally:
            os.close(write_end)  # the job holds its own copies: end of file once it and its children are gone
            if stdin_fd is not None:
                os.close(stdin_fd)
        os.set_blocking(read_end, False)
        self._output = read_end
        self._output_open = True  # until end of file
        self._tail = bytearray()
        self._size = 0  # bytes read so far
        self.pid = self.process.pid
        self.kill_at = None  # once its tree is being ended (begin_ending): when what is left gets SIGKILL
        self._tree = []
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            self._pidfd = None

    @property
    def exit_status(self):
        """The shell's return code (negative: killed by that signal), or None while it runs."""
        return self.process.poll()

    def wait(self, timeout, other_fds=()):
        """Wait up to `timeout` seconds for the shell to exit or one of `other_fds` to be readable, reading the
        job's output meanwhile. True when the shell has exited."""
        deadline = time.monotonic() + max(timeout, 0)
        while True:
            fds = [*other_fds]
            if self._output_open:
                fds.append(self._output)
            if self._pidfd is not None:
                fds.append(self._pidfd)
                left = deadline - time.monotonic()
            else:  # no pidfd: poll the child in short steps
                left = min(NO_PIDFD_STEP_SECONDS, deadline - time.monotonic())
            ready = wait_readable(fds, left)
            if self._output in ready:
                self._read_output()
            if self.process.poll() is not None:
                self._read_output()
                return True
            if any(fd in ready for fd in other_fds) or time.monotonic() >= deadline:
                return False

    def fds(self):
        """The descriptors to wait on for this job: its output while open, and its pidfd (none: poll it)."""
        fds = [self._output] if self._output_open else []
        if self._pidfd is not None and self.process.returncode is None:  # once reaped it stays readable
            fds.append(self._pidfd)
        return fds

    @property
    def has_pidfd(self):
        return self._pidfd is not None

    def read_output(self):
        """Take in what the job wrote since the last read (a loop that waits on fds() calls it when they are
        ready); True once the shell has exited."""
        self._read_output()
        return self.exit_status is not None

    def end_leftovers(self):
        """After the shell exited: terminate what it left running in its process group."""
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass

    def kill_tree(self, grace=KILL_GRACE_SECONDS):
        """End the whole process tree, waiting for it: TERM to the group and every descendant, a grace, then
        KILL (see begin_ending)."""
        self.begin_ending(grace)
        while not self.ending_done():
            self.wait(min(ENDING_STEP_SECONDS, max(0.0, self.kill_at - time.monotonic())))

    def begin_ending(self, grace=KILL_GRACE_SECONDS):
        """Start ending the whole process tree without waiting: TERM to the group and every descendant now; what is
        left at `kill_at` (`grace` seconds on) is killed by ending_done(). Descendants are found by walking the
        children (psutil), so one that called setsid and left the process group is ended too."""
        if self.kill_at is not None:
            return
        try:
            self._tree = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            self._tree = []
        _signal_all(self.pid, self._tree, signal.SIGTERM)
        self.kill_at = time.monotonic() + grace

    def ending_done(self):
        """After begin_ending: True once the shell and every process it was sent TERM to are gone; at `kill_at`,
        KILL what is left (and reap the shell) first."""
        if time.monotonic() >= self.kill_at:
            _signal_all(self.pid, [process for process in self._tree if process.is_running()], signal.SIGKILL)
            self._read_output()
            self.process.wait()
            return True
        return self.exit_status is not None and not any(_alive(process) for process in self._tree)

    def output_tail(self, limit=OUTPUT_TAIL_BYTES):
        """The last `limit` bytes of combined stdout and stderr, as text."""
        return self.output_snapshot(limit)[0]

    def output_size(self):
        """Bytes of output so far (reading what is waiting in the pipe first)."""
        self._read_output()
        return self._size

    def output_snapshot(self, limit=OUTPUT_TAIL_BYTES):
        """(text, offset): the last `limit` bytes at most (`limit` <= OUTPUT_TAIL_BYTES), as text, and how many
        bytes came before them.

        The kept part starts on a UTF-8 character boundary, so a reader that follows the output by byte offsets
        (`queuectl logs --follow`) never splits a character. Output is bytes: see output_text()."""
        self._read_output()
        raw = bytes(self._tail[-limit:])
        offset = self._size - len(raw)
        if offset:
            skip = next((i for i, byte in enumerate(raw[:4]) if byte & 0xC0 != 0x80), 0)
            raw, offset = raw[skip:], offset + skip
        text = output_text(raw)
        if offset:
            text = f"[... {offset} earlier bytes not kept ...]\n" + text
        return text, offset

    def close(self):
        """Release the output pipe and the pidfd."""
        os.close(self._output)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def _read_output(self):
        """Read what the pipe holds now (up to READS_PER_DRAIN chunks), keeping only the tail."""
        for _ in range(READS_PER_DRAIN):
            if not self._output_open:
                return
            try:
                chunk = os.read(self._output, READ_CHUNK_BYTES)
            except BlockingIOError:
                return
            if not chunk:
                self._output_open = False  # every writer is gone: never wait on it again (it stays readable)
                return
            self._size += len(chunk)
            if len(chunk) >= OUTPUT_TAIL_BYTES:
                self._tail = bytearray(chunk[-OUTPUT_TAIL_BYTES:])
            else:
                self._tail += chunk
                if len(self._tail) > OUTPUT_TAIL_BYTES:
                    del self._tail[:len(self._tail) - OUTPUT_TAIL_BYTES]


def output_text(raw):
    """A job's output bytes as text that any database stores: invalid UTF-8 escaped (`\\xff`), and NUL, which
    PostgreSQL text cannot hold, written `\\x00`; so every byte survives, readable."""
    return raw.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")


class JobStartFailed(OSError):
    """The job could not be started for a reason of its own (its directory): that run fails, the worker goes on."""


def _input_file(text):
    """A descriptor of an anonymous in-memory file holding `text` (a job's `stdin`, <= 1 MiB), read from its start.
    A file, not a pipe: the job reads it at its own pace and the worker never blocks writing it, however large."""
    descriptor = os.memfd_create("queuectl-job-input", os.MFD_CLOEXEC)
    view = memoryview(text.encode("utf-8"))
    while view:
        view = view[os.write(descriptor, view):]
    os.lseek(descriptor, 0, os.SEEK_SET)
    return descriptor


@functools.cache
def _job_environment():
    """The worker's environment without the service's secrets, as (name, value) pairs (read once: the worker does
    not change it)."""
    return tuple(without_secrets(os.environ).items())


def _alive(process):
    """True while `process` runs (a zombie, waiting for its parent to reap it, counts as gone)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


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
