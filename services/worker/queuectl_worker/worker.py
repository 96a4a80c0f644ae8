"""One worker process: heartbeat, hand back expired leases, claim, run, record; repeat."""

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

from .lease_guard import LeaseGuard
from .runner import JobProcess
from .stats import collect_stats

log = logging.getLogger("queuectl.worker")

# Idle polling when no change notification is available: quick right after work, backing
# off so that an idle worker costs next to no CPU.
POLL_MIN_SECONDS = 0.005
POLL_MAX_SECONDS = 0.2
# With change notifications a worker still looks now and then, for jobs whose run_at arrives.
NOTIFIED_POLL_SECONDS = 0.25
HEARTBEAT_MAX_SECONDS = 2.0
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


class Worker:
    """Claims and runs jobs until asked to stop (signal or `worker stop`) or, in burst mode, idle."""

    def __init__(self, db_location=None, timeout=None, burst=False, stop_grace=None, job_dir=None, queues=None):
        self.store = open_store(db_location)
        self.job_dir = job_dir  # where jobs start (None: this process's directory)
        self.queues = list(dict.fromkeys(queues)) if queues else None  # claim only from these (None: every queue)
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
        self._next_heartbeat = 0.0
        self._schedule_due = None  # when a schedule is next due (ms), as the last firing found
        self._claimed_at = 0.0  # when the last claim call started: the lease is counted from then
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

    def run(self):
        """The main loop; returns the process's exit code."""
        idle_wait = POLL_MIN_SECONDS
        error_wait = ERROR_WAIT_MIN_SECONDS
        registered = False
        try:
            while not self.stopping:
                try:
                    if not registered:
                        # In the loop: a worker that starts while the database cannot be written (a full disk)
                        # waits for it like for any database error, instead of crashing into a restart loop.
                        self.store.register_worker(self.id, self.host, os.getpid())
                        registered = True
                        log.info("worker %s started (pid %d, database %s)", self.id, os.getpid(),
                                 self.store.location)
                    idle_wait = self._step(idle_wait)
                    error_wait = ERROR_WAIT_MIN_SECONDS
                except self.store.Error as error:
                    # Infrastructure trouble (disk full, I/O error) is logged; the loop goes on.
                    log.error("worker %s: database error: %s; trying again in %.1fs", self.id, error, error_wait)
                    wait_readable([self._signal_read], error_wait)
                    error_wait = min(error_wait * 2, ERROR_WAIT_MAX_SECONDS)
        finally:
            try:
                if registered:
                    self.store.unregister_worker(self.id)
            except self.store.Error as error:
                log.error("worker %s: could not unregister: %s", self.id, error)
            log.info("worker %s stopped", self.id)
        return 0

    def _step(self, idle_wait):
        """One turn of the loop: heartbeat when due, else claim and run a job, else wait."""
        if time.monotonic() >= self._next_heartbeat:
            self._heartbeat()
            self.store.reclaim_expired(self.settings)
            deleted = self.store.apply_retention(self.settings)
            if deleted:
                log.info("worker %s: deleted %d jobs older than the retention setting", self.id, deleted)
            return idle_wait
        if self._schedule_due is not None and now_ms() >= self._schedule_due:
            self._fire_schedules()  # a slot is due before the next heartbeat: fire it now, not up to 2 s late
        self.watcher.drain()  # before the claim, so no later change goes unnoticed
        self._claimed_at = time.monotonic()
        claim = self.store.claim_next(self.id, self.lease_seconds, queues=self.queues)
        if claim is not None:
            while claim is not None:  # each run's result is recorded together with the next claim
                claim = self._run_claim(claim)
            return POLL_MIN_SECONDS
        if self.burst and not self.store.has_unfinished_jobs(self.queues):
            log.info("worker %s: no job left, exiting (burst)", self.id)
            self.stop_requested = True
            return idle_wait
        return self._idle(idle_wait)

    def _idle(self, idle_wait):
        if self.watcher.works:
            # Wake for a change of the queue itself (or a signal), not for any event the watcher reports: with
            # SQLite, inotify also sees other files of the directory, and every idle worker woken for nothing
            # would take the write lock for a claim that finds nothing. While jobs wait, one may come due without a
            # notification (its run_at reached, a dependency or a limit freed): look again every
            # NOTIFIED_POLL_SECONDS. With none waiting, only a write can bring one, and every write that makes a job
            # wait notifies: sleep until the heartbeat (100 idle workers polling cost a PostgreSQL server 530
            # transactions/s and 12% of a core).
            poll = NOTIFIED_POLL_SECONDS if self.store.has_waiting_jobs() else HEARTBEAT_MAX_SECONDS
            deadline = time.monotonic() + min(poll, self._until_heartbeat(), self._until_schedule_due())
            while True:
                ready = wait_readable([self.watcher.fileno(), self._signal_read], deadline - time.monotonic())
                if not ready or self._signal_read in ready or self.watcher.drain():
                    return idle_wait
                if time.monotonic() >= deadline:
                    return idle_wait
        wait_readable([self._signal_read], min(idle_wait, self._until_heartbeat()))
        return min(idle_wait * 2, POLL_MAX_SECONDS)

    def _grace_left(self):
        """Seconds the running job may still take after a stop signal (None: no limit applies)."""
        if self.signals_received and self._signalled_at is None:
            self._signalled_at = time.monotonic()
        if self._signalled_at is None or self.stop_grace is None:
            return None
        return max(0.0, self._signalled_at + self.stop_grace - time.monotonic())

    def _until_schedule_due(self):
        """Seconds until a schedule's next slot is due, as the last firing found (no limit without one)."""
        if self._schedule_due is None:
            return HEARTBEAT_MAX_SECONDS
        return max(0.0, (self._schedule_due - now_ms()) / 1000)

    def _until_heartbeat(self):
        return max(0.0, self._next_heartbeat - time.monotonic())

    def _heartbeat(self, claim=None, job=None):
        beat = self.store.heartbeat(self.id, self.lease_seconds, claim, collect_stats(job))
        self.settings = beat.settings
        if beat.rejoined:
            log.warning("worker %s: its registration had been removed by another worker (no heartbeat got through"
                        " for 2 x lease_timeout); registered again", self.id)
        self._fire_schedules(during_run=claim is not None)
        if beat.stop_requested and not self.stop_requested:
            log.info("worker %s: stop requested, finishing the current job first", self.id)
            self.stop_requested = True
        self._next_heartbeat = time.monotonic() + min(HEARTBEAT_MAX_SECONDS, self.lease_seconds / 3)
        return beat

    def _fire_schedules(self, during_run=False):
        """Enqueue the jobs of the schedules' due slots (the store makes each slot fire once, however many workers
        race), and note when the next one is due, so that an idle worker looks again right then. During a run a
        database error is only logged: it must not pass for a failed lease renewal."""
        try:
            firing = self.store.fire_due_schedules(settings=self.settings)
        except self.store.Error as error:
            if not during_run:
                raise
            log.error("worker %s: could not fire the due schedules: %s", self.id, error)
            return
        self._schedule_due = firing.next_due
        for job_id in firing.job_ids:
            log.info("worker %s: a schedule enqueued job %s", self.id, job_id)

    def _run_claim(self, claim):
        """Run a claimed job to its end and record the outcome (fenced by the claim's token); return the next
        claim taken in the same transaction, or None."""
        timeout = claim.job["timeout"] or self.default_timeout
        environment = {
            **(claim.job.get("env") or {}),  # the job's own variables; queuectl's below win
            "QUEUECTL_JOB_ID": claim.id, "QUEUECTL_ATTEMPT": str(claim.attempt), "QUEUECTL_WORKER_ID": self.id,
        }
        try:
            job = JobProcess(claim.job["command"], environment, cwd=claim.job.get("cwd") or self.job_dir,
                             stdin=claim.job.get("stdin"))
        except OSError as error:  # its directory is missing (the job's cwd, or a job directory that vanished)
            log.warning("job %s could not start: %s", claim.id, error)
            return self._record(claim, Outcome(FAILED, None, f"could not start the job: {error}"), "")
        deadline = job.started + timeout if timeout else None
        renewed = self._claimed_at  # the lease was last renewed (at the claim)
        self.lease_guard.arm(job.pid, renewed, self.lease_seconds)
        next_flush = job.started + OUTPUT_FLUSH_SECONDS
        flushed_size = 0
        outcome = None
        try:
            while outcome is None:
                cancel_requested = False
                limits = [self._until_heartbeat(), next_flush - time.monotonic()]
                if deadline is not None:
                    limits.append(deadline - time.monotonic())
                if self._grace_left() is not None:
                    limits.append(self._grace_left())
                if job.wait(min(limits), [self._signal_read]):
                    outcome = _exit_outcome(job.exit_status)
                    job.end_leftovers()
                    if self.lease_guard.disarm():
                        log.warning("worker %s: no renewal of job %s's lease got through for %gs; stopped its run"
                                    " before the lease ran out", self.id, claim.id, self.lease_seconds)
                        outcome = Outcome(LOST, None, f"worker lost: {self.id} could not renew its lease; it stopped"
                                          " the run before the lease ran out")
                elif self.signals_received > 1 or self._grace_left() == 0:
                    job.kill_tree()
                    outcome = Outcome(INTERRUPTED, None, f"interrupted: worker {self.id} was stopped"
                                      " before the run finished; the job was handed back")
                elif deadline is not None and time.monotonic() >= deadline:
                    job.kill_tree()
                    outcome = Outcome(TIMEOUT, None, f"timeout: killed after {timeout:g}s")
                elif self._until_heartbeat() == 0:
                    attempt_started = time.monotonic()
                    beat = self._renew(claim, job, renewed)
                    if beat is None:
                        continue  # the database failed: the run goes on, the renewal is tried again
                    renewed = attempt_started  # the database counts the new lease from the call's start
                    if beat.lease_held:
                        self.lease_guard.renewed(renewed, self.lease_seconds)
                    if not beat.lease_held:
                        # Another worker took the job over: stop our copy so it never runs twice at once.
                        job.kill_tree()
                        log.warning("worker %s: lost the lease of job %s; stopped its run", self.id, claim.id)
                        return None
                    cancel_requested = beat.cancel_requested
                elif time.monotonic() >= next_flush:
                    next_flush = time.monotonic() + OUTPUT_FLUSH_SECONDS
                    size = job.output_size()
                    if size != flushed_size:
                        flushed_size = size
                        cancel_requested = self._flush_output(claim, job)
                if cancel_requested and outcome is None:
                    job.kill_tree()
                    outcome = Outcome(CANCELLED, None, "cancelled by request while running: its process tree"
                                      " was stopped")
                _drain(self._signal_read)
            return self._record(claim, outcome, *job.output_snapshot())
        finally:
            self.lease_guard.disarm()
            if job.exit_status is None:
                job.kill_tree()  # leaving early (an error): the run must not go on unsupervised
            job.close()

    def _renew(self, claim, job, renewed):
        """Heartbeat during a run. A database error does not abandon the run (it used to: the job went on running,
        unsupervised, while its lease expired and another worker ran it again): it is logged and None returned;
        once the lease has gone unrenewed for lease_timeout, another worker may take the job over, so the run is
        stopped first and the error raised again."""
        try:
            return self._heartbeat(claim, job)
        except self.store.Error as error:
            self._next_heartbeat = time.monotonic() + min(HEARTBEAT_MAX_SECONDS, self.lease_seconds / 3)
            if time.monotonic() - renewed < self.lease_seconds:
                log.error("worker %s: could not renew the lease of job %s: %s; trying again", self.id, claim.id,
                          error)
                return None
            job.kill_tree()
            log.error("worker %s: could not renew the lease of job %s for %.0fs (%s); stopped its run, which another"
                      " worker will run again", self.id, claim.id, time.monotonic() - renewed, error)
            raise

    def _flush_output(self, claim, job):
        """Store the running job's output tail; True when the job was cancelled meanwhile. Best effort:
        a database error is logged and the run goes on (the next flush or the result catches up)."""
        try:
            return self.store.flush_output(claim, *job.output_snapshot())
        except self.store.Error as error:
            log.warning("worker %s: could not store the output of job %s so far: %s", self.id, claim.id, error)
            return False

    def _record(self, claim, outcome, output, output_offset=0):
        """Store the outcome, and claim the next job in the same transaction unless the worker is stopping or its
        heartbeat is due (the loop's turn: leases of lost workers are handed back there); return that claim or
        None. A database error is retried until the database answers (a result that comes back after the lease
        ran out is refused there, fenced by the claim's token, if another worker took the job over; else it
        counts: the job does not run again for nothing). Only a stopping worker gives up, once the lease is over."""
        take_next = not self.stopping and time.monotonic() < self._next_heartbeat
        if take_next:
            self.watcher.drain()  # before the claim, so no later change goes unnoticed
        error_wait = ERROR_WAIT_MIN_SECONDS
        give_up = time.monotonic() + self.lease_seconds
        next_claim = None
        while True:
            now = now_ms()
            self._claimed_at = time.monotonic()
            try:
                if take_next:
                    transition, next_claim = self.store.finish_run_and_claim_next(
                        claim, outcome, output, self.id, self.lease_seconds, now, output_offset, self.queues)
                else:
                    transition = self.store.finish_run(claim, outcome, output, now, output_offset)
                break
            except InvalidInput as error:
                # The database refused a value of this run (its output): record the run without it rather than
                # try again forever while the lease runs out and the job runs twice.
                if output.startswith(UNSTORABLE_OUTPUT):
                    raise
                log.error("worker %s: could not store the output of job %s: %s", self.id, claim.id, error)
                output, output_offset = f"{UNSTORABLE_OUTPUT}: {error}]", 0
            except self.store.Error as error:
                if self.stopping and time.monotonic() + error_wait > give_up:
                    raise
                log.error("worker %s: could not record job %s: %s; trying again", self.id, claim.id, error)
                time.sleep(error_wait)
                error_wait = min(error_wait * 2, ERROR_WAIT_MAX_SECONDS)
        if transition is None:
            log.warning("worker %s: job %s was handed to another worker; result dropped", self.id, claim.id)
        else:
            log.info("job %s attempt %d: %s -> %s", claim.id, claim.attempt,
                     outcome.error or "exit 0", transition.state)
        return next_claim


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
