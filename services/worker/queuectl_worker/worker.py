"""One worker process: up to `concurrency` jobs at once, supervised by one event loop over their pidfds and output
pipes, on one database connection: heartbeat (every lease renewed by one statement), hand back expired leases,
claim for the free slots and record the ended runs together, repeat."""

import logging
import os
import secrets
import signal
import socket
import time

from queuectl_core.errors import InvalidInput
from queuectl_core.lifecycle import CANCELLED, COMPLETED, FAILED, INTERRUPTED, LOST, TIMEOUT, Outcome
from queuectl_core.store import open_store
from queuectl_core.timeutil import now_ms
from queuectl_core.waiting import wait_readable

from .heartbeat import HeartbeatMixin
from .lease_guard import LeaseGuard
from .runner import ENDING_STEP_SECONDS, NO_PIDFD_STEP_SECONDS
from .slot import Run

log = logging.getLogger("queuectl.worker")

# Idle polling when no change notification is available: quick right after work, backing
# off so that an idle worker costs next to no CPU.
POLL_MIN_SECONDS = 0.005
POLL_MAX_SECONDS = 0.2
# With change notifications a worker still looks now and then, for jobs whose run_at arrives.
NOTIFIED_POLL_SECONDS = 0.25
QUIET_POLL_SECONDS = 10.0  # with notifications and no job waiting at all
# A running job's new output reaches the database this often (only when there is new output), for
# `queuectl logs --follow` and the dashboard; each flush also reads whether the job was cancelled.
OUTPUT_FLUSH_SECONDS = 0.5
ERROR_WAIT_MIN_SECONDS = 0.2
ERROR_WAIT_MAX_SECONDS = 5.0
UNSTORABLE_OUTPUT = "[queuectl: the output of this run could not be stored"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)  # SIGUSR1: the supervisor died


def host_name():
    """This worker's host identity: QUEUECTL_HOST, else the hostname (in a container: the container's)."""
    return os.environ.get("QUEUECTL_HOST") or socket.gethostname()


def make_worker_id(host, pid):
    """An id unique across hosts and containers that names the host (container) and pid."""
    return f"{host}-{pid}-{secrets.token_hex(2)}"


class Worker(HeartbeatMixin):
    """Claims and runs jobs, up to `concurrency` at once, until asked to stop (signal or `worker stop`) or, in
    burst mode, idle."""

    def __init__(self, db_location=None, timeout=None, burst=False, stop_grace=None, job_dir=None, queues=None,
                 concurrency=1):
        self.store = open_store(db_location)
        self.job_dir = job_dir  # where jobs start (None: this process's directory)
        self.queues = list(dict.fromkeys(queues)) if queues else None  # claim only from these (None: every queue)
        self.concurrency = concurrency
        self.store.line_up_writers()
        self.default_timeout = timeout
        self.stop_grace = stop_grace  # after a stop signal, seconds a running job may still take
        self._signalled_at = None
        self.burst = burst
        self.host = host_name()
        self.id = make_worker_id(self.host, os.getpid())
        self.settings = self.store.get_settings()
        self.watcher = self.store.change_watcher()
        self.signals_received = 0
        self.stop_requested = False
        self.runs = []  # the jobs running now, one per busy slot
        self.ended = []  # (claim, outcome, output, output_offset) of runs that ended and are not recorded yet
        self._next_heartbeat = 0.0
        self._next_flush = 0.0
        self._schedule_due = None  # when a schedule is next due (ms), as the last firing found
        self._leases_expired = True  # as the last heartbeat found: some lease expired (reclaim_expired has work)
        self._claim_due = True  # look for due jobs at the next turn (a slot is free and one may be due)
        self._next_poll = 0.0  # while no notification comes: when to look again anyway
        self._idle_wait = POLL_MIN_SECONDS
        self._record_at = 0.0  # after a failed record: when to try again
        self._record_error_wait = ERROR_WAIT_MIN_SECONDS
        self._record_failing_since = None
        self.lease_guard = LeaseGuard()
        self._signal_read, signal_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        os.set_blocking(signal_write, False)
        signal.set_wakeup_fd(signal_write)  # signals wake any wait below at once
        for number in STOP_SIGNALS:
            signal.signal(number, self._on_signal)

    def _on_signal(self, number, frame):
        # Handlers only count; the loop decides what to do (first: finish and exit, second: kill).
        self.signals_received += 1

    @property
    def stopping(self):
        return self.stop_requested or self.signals_received > 0

    @property
    def lease_seconds(self):
        return self.settings["lease_timeout"]

    @property
    def free_slots(self):
        """Slots this worker may fill now (none once it is stopping). The slots of ended runs count as free: their
        results are recorded in the transaction that claims."""
        return 0 if self.stopping else self.concurrency - len(self.runs)

    def run(self):
        """The main loop; returns the process's exit code."""
        error_wait = ERROR_WAIT_MIN_SECONDS
        registered = False
        try:
            while not (self.stopping and not self.runs and not self.ended):
                try:
                    if not registered:
                        # In the loop: a worker that starts while the database cannot be written (a full disk)
                        # waits for it like for any database error, instead of crashing into a restart loop.
                        self.store.register_worker(self.id, self.host, os.getpid(), concurrency=self.concurrency)
                        registered = True
                        log.info("worker %s started (pid %d, %d slot%s, database %s)", self.id, os.getpid(),
                                 self.concurrency, "s" if self.concurrency != 1 else "", self.store.location)
                    self._turn()
                    error_wait = ERROR_WAIT_MIN_SECONDS
                except self.store.Error as error:
                    # Infrastructure trouble (disk full, I/O error) is logged; the loop, and the running jobs, go on.
                    log.error("worker %s: database error: %s; trying again in %.1fs", self.id, error, error_wait)
                    self._supervise(error_wait)
                    error_wait = min(error_wait * 2, ERROR_WAIT_MAX_SECONDS)
        finally:
            self._end_every_run()
            try:
                if registered:
                    self.store.unregister_worker(self.id)
            except self.store.Error as error:
                log.error("worker %s: could not unregister: %s", self.id, error)
            log.info("worker %s stopped", self.id)
        return 0

    def _end_every_run(self):
        """Leaving early (an error): no run goes on unsupervised. Every tree gets TERM at once, then KILL after the
        grace, all in parallel."""
        ending = [run for run in self.runs if run.job.exit_status is None or run.ending]
        for run in ending:
            run.job.begin_ending()
        while any(not run.job.ending_done() for run in ending):
            time.sleep(ENDING_STEP_SECONDS)
        for run in self.runs:
            run.job.close()

    def _turn(self):
        """One turn of the loop: heartbeat when due, end the runs that must end, flush output, record the ended
        runs and claim for the free slots, then wait for the next event."""
        if time.monotonic() >= self._next_heartbeat:
            self._heartbeat()
            self._maintain()
        if self._schedule_due is not None and now_ms() >= self._schedule_due:
            self._fire_schedules(during_run=bool(self.runs))  # due before the next heartbeat: fire it now
        self._end_runs_that_must_end()
        if self.runs and time.monotonic() >= self._next_flush:
            self._flush_outputs()
        if time.monotonic() >= self._next_poll:
            self._claim_due = True  # no notification came: look anyway
        if (self.ended or (self.free_slots and self._claim_due)) and time.monotonic() >= self._record_at:
            self._record_and_claim()
        if self.stopping and not self.runs and not self.ended:
            return
        self._supervise(self._wait_seconds())

    # ---- claims and results ------------------------------------------------------------------

    def _record_and_claim(self):
        """Record the ended runs and claim up to the free slots in one transaction, then start the claimed jobs."""
        free = self.free_slots
        if free:
            self.watcher.drain()  # before the claim, so no later change goes unnoticed
        results, claimed_at = list(self.ended), time.monotonic()
        try:
            transitions, claims = self.store.finish_runs(results, self.id, self.lease_seconds, free,
                                                         queues=self.queues)
        except InvalidInput:
            # The database refused a value of one of these runs (its output): record them one by one, that one
            # without it, rather than try again forever while the lease runs out and the job runs twice; claim at
            # the next turn.
            transitions, claims = [self._record_alone(result) for result in results], []
            free = 0
        except self.store.Error as error:
            self._record_failed(error)
            return
        self.ended = []
        self._record_at, self._record_failing_since = 0.0, None
        self._record_error_wait = ERROR_WAIT_MIN_SECONDS
        for (claim, outcome, _, _), transition in zip(results, transitions, strict=True):
            if transition is None:
                log.warning("worker %s: job %s was handed to another worker; result dropped", self.id, claim.id)
            else:
                log.info("job %s attempt %d: %s -> %s", claim.id, claim.attempt, outcome.error or "exit 0",
                         transition.state)
        for claim in claims:
            self._start(claim, claimed_at)
        if len(claims) < free:
            self._found_nothing_more(bool(claims))

    def _record_alone(self, result):
        claim, outcome, output, offset = result
        try:
            return self.store.finish_runs([result])[0][0]
        except InvalidInput as error:
            if output.startswith(UNSTORABLE_OUTPUT):
                raise
            log.error("worker %s: could not store the output of job %s: %s", self.id, claim.id, error)
            return self._record_alone((claim, outcome, f"{UNSTORABLE_OUTPUT}: {error}]", 0))

    def _record_failed(self, error):
        """A database error while recording: the results wait and are tried again (a result that comes back after
        the lease ran out is refused there, fenced by the claim's token, if another worker took the job over; else
        it counts: the job does not run again for nothing). Only a stopping worker gives up, once the lease is
        over."""
        if not self.ended:
            raise error  # only a claim failed: the loop's turn waits and tries again
        now = time.monotonic()
        if self._record_failing_since is None:
            self._record_failing_since = now
        if self.stopping and now + self._record_error_wait > self._record_failing_since + self.lease_seconds:
            log.error("worker %s: gave up recording %s after %.0fs: %s", self.id,
                      ", ".join(claim.id for claim, *_ in self.ended), now - self._record_failing_since, error)
            self.ended = []  # their leases are over: another worker runs them again
            raise error
        log.error("worker %s: could not record %d run%s (%s): %s; trying again", self.id, len(self.ended),
                  "s" if len(self.ended) != 1 else "", ", ".join(claim.id for claim, *_ in self.ended), error)
        self._record_at = now + self._record_error_wait
        self._record_error_wait = min(self._record_error_wait * 2, ERROR_WAIT_MAX_SECONDS)

    def _found_nothing_more(self, claimed_some):
        """A claim came back with fewer jobs than free slots: look again when a change is notified, else after a
        while (in burst mode, exit once nothing is left)."""
        self._claim_due = False
        if claimed_some:
            self._idle_wait = POLL_MIN_SECONDS
        if self.burst and not self.runs and not self.ended and not self.store.has_unfinished_jobs(self.queues):
            log.info("worker %s: no job left, exiting (burst)", self.id)
            self.stop_requested = True
            return
        if self.watcher.works:
            # Wake for a change of the queue itself (or a signal), not for any event the watcher reports: with
            # SQLite, inotify also sees other files of the directory, and every idle worker woken for nothing
            # would take the write lock for a claim that finds nothing. While jobs wait, one may come due without a
            # notification (its run_at reached, a dependency or a limit freed): look again every
            # NOTIFIED_POLL_SECONDS. With none waiting, only a write can bring one, and every write that makes a job
            # wait notifies: look only now and then, in case a notification was lost (100 idle workers polling cost
            # a PostgreSQL server 530 transactions/s and 12% of a core; looking at each heartbeat still 307).
            # In burst mode the end of the last running job, which notifies nobody, is what it waits for.
            waiting = self.burst or self.store.has_waiting_jobs()
            poll = NOTIFIED_POLL_SECONDS if waiting else QUIET_POLL_SECONDS
        else:
            poll, self._idle_wait = self._idle_wait, min(self._idle_wait * 2, POLL_MAX_SECONDS)
        self._next_poll = time.monotonic() + poll

    def _start(self, claim, claimed_at):
        """Start a claimed job in a free slot (a job that cannot start fails that run at once)."""
        environment = {
            **(claim.job.get("env") or {}),  # the job's own variables; queuectl's below win
            "QUEUECTL_JOB_ID": claim.id, "QUEUECTL_ATTEMPT": str(claim.attempt), "QUEUECTL_WORKER_ID": self.id,
        }
        try:
            run = Run.start(claim, environment, claim.job.get("cwd") or self.job_dir, claimed_at,
                            claim.job["timeout"] or self.default_timeout)
        except OSError as error:  # its directory is missing (the job's cwd, or a job directory that vanished)
            log.warning("job %s could not start: %s", claim.id, error)
            self.ended.append((claim, Outcome(FAILED, None, f"could not start the job: {error}"), "", 0))
            return
        self.lease_guard.arm(run.job.pid, claimed_at, self.lease_seconds)
        if not self.runs:
            self._next_flush = run.job.started + OUTPUT_FLUSH_SECONDS
        self.runs.append(run)

    # ---- supervising the running jobs ---------------------------------------------------------

    def _supervise(self, timeout):
        """Wait up to `timeout` seconds for an event: a job's output or exit, a signal, a change of the queue;
        take in what came."""
        fds = [self._signal_read]
        watching = self.watcher.works and self.free_slots and not self._claim_due
        if watching and self.watcher.drain():
            # A change came in meanwhile (on PostgreSQL, during one of this worker's own statements: its one
            # connection also listens, and the notification was taken in then): look at once.
            self._claim_due, watching, timeout = True, False, 0.0
        if watching:
            fds.append(self.watcher.fileno())
        for run in self.runs:
            fds += run.job.fds()
            if not run.job.has_pidfd:
                timeout = min(timeout, NO_PIDFD_STEP_SECONDS)
        ready = set(wait_readable(fds, timeout))
        if self._signal_read in ready:
            _drain(self._signal_read)
        if watching and self.watcher.fileno() in ready and self.watcher.drain():
            self._claim_due = True
        for run in list(self.runs):
            if not run.job.has_pidfd or ready.intersection(run.job.fds()):
                if run.job.read_output():
                    self._exited(run)

    def _exited(self, run):
        """The run's shell exited: the run ends, unless its tree is still being ended."""
        if run.ending:
            if run.job.ending_done():
                self._close(run)
            return
        run.outcome = _exit_outcome(run.job.exit_status)
        run.job.end_leftovers()
        self._close(run)

    def _close(self, run):
        """The run is over: its result waits to be recorded (not an abandoned one's)."""
        if self.lease_guard.disarm(run.job.pid) and not run.abandoned:
            log.warning("worker %s: no renewal of job %s's lease got through for %gs; stopped its run before the"
                        " lease ran out", self.id, run.claim.id, self.lease_seconds)
            run.outcome = Outcome(LOST, None, f"worker lost: {self.id} could not renew its lease; it stopped the run"
                                  " before the lease ran out")
        self.runs.remove(run)
        if not run.abandoned:
            self.ended.append((run.claim, run.outcome, *run.job.output_snapshot()))
        run.job.close()
        self._claim_due = True  # a slot is free

    def _end_runs_that_must_end(self):
        """Start ending the runs past their timeout, and every run once a second stop signal came or the stop's
        grace is over; close those whose tree is gone."""
        now = time.monotonic()
        interrupt = self.signals_received > 1 or self._grace_left() == 0
        for run in list(self.runs):
            if run.ending:
                if run.job.ending_done():
                    self._close(run)
            elif interrupt:
                run.end(Outcome(INTERRUPTED, None, f"interrupted: worker {self.id} was stopped before the run"
                                " finished; the job was handed back"))
            elif run.past_deadline(now):
                run.end(Outcome(TIMEOUT, None, f"timeout: killed after {run.timeout:g}s"))

    def _wait_seconds(self):
        """How long the loop may wait for an event before something of its own is due."""
        now = time.monotonic()
        limits = [self._next_heartbeat - now, self._until_schedule_due()]
        if self.ended or (self.free_slots and self._claim_due):
            limits.append(self._record_at - now)  # at once, unless the last record failed
        elif self.free_slots:
            limits.append(self._next_poll - now)
        if self.runs:
            limits.append(self._next_flush - now)
            grace = self._grace_left()
            if grace is not None:
                limits.append(grace)
        for run in self.runs:
            if run.ending:
                limits.append(min(run.job.kill_at - now, ENDING_STEP_SECONDS))
            elif run.deadline is not None:
                limits.append(run.deadline - now)
        return max(0.0, min(limits))

    def _flush_outputs(self):
        """Store the new output of the running jobs in one transaction (for `logs --follow`), and end those
        cancelled meanwhile. Best effort: a database error is logged and the runs go on (the next flush or the
        result catches up)."""
        self._next_flush = time.monotonic() + OUTPUT_FLUSH_SECONDS
        tails = []
        for run in self.runs:
            size = run.job.output_size()
            if size != run.flushed_size and not run.ending:
                run.flushed_size = size
                tails.append((run.claim, *run.job.output_snapshot()))
        if not tails:
            return
        try:
            cancelled = self.store.flush_outputs(tails)
        except self.store.Error as error:
            log.warning("worker %s: could not store the output of %d running job%s so far: %s", self.id,
                        len(tails), "s" if len(tails) != 1 else "", error)
            return
        self._end_cancelled(cancelled)

    def _end_cancelled(self, seqs):
        for run in self.runs:
            if run.claim.seq in seqs and not run.ending:
                run.end(Outcome(CANCELLED, None, "cancelled by request while running: its process tree was stopped"))

    def _grace_left(self):
        """Seconds the running jobs may still take after a stop signal (None: no limit applies)."""
        if self.signals_received and self._signalled_at is None:
            self._signalled_at = time.monotonic()
        if self._signalled_at is None or self.stop_grace is None:
            return None
        return max(0.0, self._signalled_at + self.stop_grace - time.monotonic())

def _exit_outcome(status):
    if status == 0:
        return Outcome(COMPLETED, 0, None)
    if status < 0:
        name = signal.Signals(-status).name if -status in signal.valid_signals() else str(-status)
        return Outcome(FAILED, None, f"killed by signal {name}")
    return Outcome(FAILED, status, f"exit code {status}")


def _drain(fd):
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
