"""A worker's heartbeat turn (mixed into Worker): mark it alive, renew every running job's lease in one statement,
hand back the jobs of lost workers, apply retention, fire the schedules that are due."""

import logging
import time

from queuectl_core.lifecycle import LOST, Outcome
from queuectl_core.timeutil import now_ms

from .stats import collect_stats

log = logging.getLogger("queuectl.worker")

HEARTBEAT_MAX_SECONDS = 2.0


class HeartbeatMixin:
    """The heartbeat's turn of the worker's loop."""

    def _heartbeat(self):
        """Mark this worker alive and renew the lease of every running job in one statement. A database error
        does not abandon the runs: it is logged and the renewal tried again; a run whose lease goes unrenewed for
        lease_timeout is stopped by the lease guard before another worker may take its job over."""
        self._next_heartbeat = time.monotonic() + min(HEARTBEAT_MAX_SECONDS, self.lease_seconds / 3)
        held = [run for run in self.runs if not run.abandoned]
        attempt_started = time.monotonic()
        try:
            beat = self.store.heartbeat(self.id, self.lease_seconds, [run.claim for run in held],
                                        collect_stats([run.job for run in self.runs]))
        except self.store.Error as error:
            if not self.runs:
                raise
            log.error("worker %s: could not renew the leases of its %d running job%s: %s; trying again", self.id,
                      len(held), "s" if len(held) != 1 else "", error)
            self._leases_expired = True  # not known: look
            return
        self._leases_expired = beat.leases_expired
        self.settings = beat.settings
        if beat.rejoined:
            log.warning("worker %s: its registration had been removed by another worker (no heartbeat got through"
                        " for 2 x lease_timeout); registered again", self.id)
        renewed = [run for run in held if run.claim.seq not in beat.lost]
        for run in renewed:
            run.renewed = attempt_started  # the database counts the new lease from the call's start
        self.lease_guard.renewed(attempt_started, self.lease_seconds, [run.job.pid for run in renewed])
        for run in held:
            if run.claim.seq in beat.lost:
                # Another worker took the job over: stop our copy so it never runs twice at once.
                log.warning("worker %s: lost the lease of job %s; stopped its run", self.id, run.claim.id)
                run.end(Outcome(LOST, None, "lease lost"), abandoned=True)
        self._end_cancelled(beat.cancelled)
        if beat.stop_requested and not self.stop_requested:
            log.info("worker %s: stop requested, finishing the running jobs first", self.id)
            self.stop_requested = True
        next_due = beat.next_schedule_due  # as this heartbeat read it: nothing to fire before then
        if next_due is None or next_due > now_ms():
            self._schedule_due = next_due
        else:
            self._fire_schedules(during_run=bool(self.runs))

    def _maintain(self):
        """The heartbeat's chores: hand back the jobs of lost workers, apply retention. While jobs run, a database
        error is only logged (the next heartbeat tries again)."""
        try:
            if self._leases_expired:  # as the heartbeat found (the common case: no lease expired, nothing to read)
                self.store.reclaim_expired(self.settings)
            deleted = self.store.apply_retention(self.settings)
        except self.store.Error as error:
            if not self.runs:
                raise
            log.error("worker %s: could not hand back expired leases or apply retention: %s", self.id, error)
            return
        if deleted:
            log.info("worker %s: deleted %d jobs older than the retention setting", self.id, deleted)

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
        if firing.job_ids:
            self._claim_due = True
        for job_id in firing.job_ids:
            log.info("worker %s: a schedule enqueued job %s", self.id, job_id)

    def _until_schedule_due(self):
        """Seconds until a schedule's next slot is due, as the last firing found (no limit without one)."""
        if self._schedule_due is None:
            return HEARTBEAT_MAX_SECONDS
        return max(0.0, (self._schedule_due - now_ms()) / 1000)
