"""The supervisor: runs N worker processes, relays signals, restarts crashed workers, and
ends the processes of a job whose worker died."""

import logging
import os
import signal
import time
import traceback

import psutil
from queuectl_core.waiting import wait_readable

from . import linux

log = logging.getLogger("queuectl.supervisor")

RELAYED_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SWEEP_SECONDS = 3.0  # after a worker dies, orphans of its job are looked for this long
RESTART_DELAY_MAX = 30.0


class Supervisor:
    """Forks `count` workers made by `make_worker()` and keeps them running until told to stop."""

    def __init__(self, count, make_worker):
        self.count = count
        self.make_worker = make_worker
        self.workers = {}  # pid -> start time (monotonic)
        self.stopping = False
        self.crashes_in_a_row = 0
        self.restart_at = None
        self.sweep_until = 0.0

    def run(self):
        """Run until every worker has exited; returns the exit code for `worker start`."""
        # Orphans of a dead worker's job are re-parented to us instead of init, so we can end them.
        linux.become_subreaper()
        signal_read, signal_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._pipe = (signal_read, signal_write)
        signal.set_wakeup_fd(signal_write)
        for number in (*RELAYED_SIGNALS, signal.SIGCHLD):
            signal.signal(number, lambda *_: None)  # the wakeup fd carries the signal's number
        for _ in range(self.count):
            self._spawn()
        while self.workers or (self.restart_at is not None and not self.stopping):
            ready = wait_readable([signal_read], self._timeout())
            if ready:
                self._handle_signals(os.read(signal_read, 512))
            self._reap()
            if self.restart_at is not None and time.monotonic() >= self.restart_at and not self.stopping:
                self.restart_at = None
                while len(self.workers) < self.count:
                    self._spawn()
            if time.monotonic() < self.sweep_until:
                self._end_orphans()
        # Every worker is gone: ignore further stop signals. Python resets its own handlers to the default action
        # while the interpreter shuts down, so one more Ctrl-C or SIGTERM then would turn this clean stop into 143.
        for number in RELAYED_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        return 0

    def _timeout(self):
        deadlines = []
        if self.restart_at is not None:
            deadlines.append(self.restart_at)
        if time.monotonic() < self.sweep_until:
            deadlines.append(time.monotonic() + 0.2)
        if not deadlines:
            return 5.0
        return max(0.0, min(deadlines) - time.monotonic())

    def _handle_signals(self, numbers):
        for number in numbers:
            if number in RELAYED_SIGNALS:
                if not self.stopping:
                    log.info("supervisor: %s received, asking workers to finish their jobs and exit"
                             " (send it again to stop at once)", signal.Signals(number).name)
                self.stopping = True
                # Each received signal is relayed once: the second one makes workers kill their jobs.
                for pid in self.workers:
                    _send(pid, signal.SIGTERM)

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            started = self.workers.pop(pid, None)
            if started is None:
                continue  # an adopted orphan that ended
            code = os.waitstatus_to_exitcode(status)
            if code == 0:
                continue  # stopped as asked (signal, `worker stop`, burst): not restarted
            self.sweep_until = time.monotonic() + SWEEP_SECONDS
            if self.stopping:
                continue
            ran_for = time.monotonic() - started
            self.crashes_in_a_row = 0 if ran_for > 60 else self.crashes_in_a_row + 1
            delay = min(RESTART_DELAY_MAX, 0.5 * 2 ** max(0, self.crashes_in_a_row - 1))
            log.error("supervisor: worker pid %d died (%s) after %.1fs; restarting in %.1fs",
                      pid, _describe(code), ran_for, delay)
            self.restart_at = time.monotonic() + delay

    def _end_orphans(self):
        """Kill adopted processes that are not our workers: what a dead worker's job left."""
        try:
            children = psutil.Process().children()
        except psutil.Error:
            return
        for child in children:
            if child.pid in self.workers:
                continue
            try:
                tree = [child, *child.children(recursive=True)]
            except psutil.Error:
                tree = [child]
            log.warning("supervisor: ending pid %d, left behind by a worker that died", child.pid)
            for process in tree:
                try:
                    process.kill()
                except psutil.Error:
                    pass

    def _spawn(self):
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            self._become_worker(parent)
        self.workers[pid] = time.monotonic()

    def _become_worker(self, parent):
        code = 1
        try:
            # Our own process group: a terminal's Ctrl-C reaches the supervisor only, which
            # relays it once, so one Ctrl-C never counts as two signals.
            os.setpgid(0, 0)
            signal.set_wakeup_fd(-1)
            for fd in self._pipe:
                os.close(fd)
            for number in (*RELAYED_SIGNALS, signal.SIGCHLD):
                signal.signal(number, signal.SIG_DFL)
            # If the supervisor dies, finish the current job and exit, as on SIGTERM.
            linux.die_with_parent(signal.SIGUSR1, parent)
            code = self.make_worker().run()
        except KeyboardInterrupt:
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)


def _send(pid, number):
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def _describe(code):
    if code < 0:
        return f"signal {signal.Signals(-code).name}" if -code in signal.valid_signals() else f"signal {-code}"
    return f"exit code {code}"
