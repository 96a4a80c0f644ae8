"""The store's operator features: cancel, pause, logs, purge and retention (mixed into Store)."""

import json

from .errors import InvalidInput, JobNotFound, RunNotFound, WrongState
from .queries import PAUSED
from .store_records import _record
from .timeutil import now_ms, to_iso

FINISHED_STATES = ("completed", "dead", "cancelled")  # what purge and retention may delete
RETENTION_STATES = ("completed", "cancelled")  # what the `retention` setting deletes (dead jobs wait for people)
CANCELLABLE_STATES = ("pending", "failed", "processing")
_LAST_SEQ = 2**62  # above every seq: the end of the last window


class OperatorMixin:
    """Cancel, pause/resume, run output, waiting, purge and retention."""

    def cancel(self, job_id, now=None):
        """Cancel a job: (record, True) when a pending or failed job is now cancelled; (record, False) when
        it is processing: its worker stops the run's process tree at its next heartbeat and records it
        cancelled. WrongState when it has ended already."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            cursor = connection.execute(self.q.cancel_waiting, {"id": job_id, "now": now,
                                                                "error": "cancelled by request"})
            row = cursor.fetchone()
            if row is not None:
                record = _record(cursor, row)
                seq = record.pop("seq")
                self._settle_dependents(connection, seq, job_id, "cancelled", now)
                return record, True
            cursor = connection.execute(self.q.request_cancel, {"id": job_id})
            row = cursor.fetchone()
            if row is not None:
                return _record(cursor, row), False
            found = connection.execute(self.q.state_of, {"id": job_id}).fetchone()
        if found is None:
            raise JobNotFound(job_id)
        raise WrongState(f"job '{job_id}' is {found[0]}: only pending, failed or processing jobs can be cancelled")

    def pause(self, now=None):
        """Stop every worker from claiming (running jobs finish); True if the queue was running before."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            was_paused = connection.execute(self.q.paused, {}).fetchone() is not None
            if not was_paused:
                connection.execute(self.q.set_setting, {"name": PAUSED, "value": json.dumps(now)})
        return not was_paused

    def resume(self):
        """Let workers claim again; True if the queue was paused."""
        with self._transaction() as connection:
            resumed = connection.execute(self.q.resume, {}).rowcount > 0
            self._wake(connection)
        return resumed

    def paused_since(self):
        """When the queue was paused (ISO time), or None while it runs."""
        row = self._read(self.q.paused).fetchone()
        return None if row is None else to_iso(json.loads(row[0]))

    def run_output(self, job_id, attempt=None):
        """The output of one run of a job (its latest when `attempt` is None) and where it stands:
        {'state', 'runs', 'attempt', 'started_at', 'finished_at', 'output', 'output_offset'}; 'attempt' is
        None when the job has not run yet. `output_offset` counts the bytes before the kept tail."""
        cursor = self._read(self.q.run_output, {"id": job_id, "attempt": attempt})
        row = cursor.fetchone()
        if row is None:
            raise JobNotFound(job_id)
        state, runs, number, started_at, finished_at, output, offset = row
        if attempt is not None and number is None:
            raise RunNotFound(f"job '{job_id}' has no run {attempt}"
                              f" ({'it has not run yet' if not runs else f'its runs are 1 to {runs}'})")
        return {"state": state, "runs": runs, "attempt": number, "started_at": to_iso(started_at),
                "finished_at": to_iso(finished_at), "output": output or "", "output_offset": offset or 0}

    def states_of(self, job_ids):
        """{id: state} of the given jobs; JobNotFound for the first unknown id."""
        states = {}
        for job_id in job_ids:
            row = self._read(self.q.state_of, {"id": job_id}).fetchone()
            if row is None:
                raise JobNotFound(job_id)
            states[job_id] = row[0]
        return states

    def count_finished(self, states, older_than_seconds=0, now=None):
        """How many jobs in `states` (of FINISHED_STATES) last changed more than `older_than_seconds` ago."""
        now = now_ms() if now is None else now
        before = now - int(older_than_seconds * 1000)
        return sum(self._read(self.q.count_finished, {"state": state, "before": before}).fetchone()[0]
                   for state in _finished(states))

    def purge(self, states, older_than_seconds=0, now=None, window=1000):
        """Delete the jobs in `states` (of FINISHED_STATES) that last changed more than `older_than_seconds`
        ago, with their history; one transaction per `window` jobs of a state (workers keep claiming in
        between). Returns how many."""
        now = now_ms() if now is None else now
        before = now - int(older_than_seconds * 1000)
        deleted = 0
        for state in _finished(states):
            after = 0
            while True:
                upto = self._window_end(state, after, window)
                with self._transaction() as connection:
                    deleted += connection.execute(self.q.delete_finished_in, {
                        "state": state, "after": after, "upto": upto or _LAST_SEQ, "before": before}).rowcount
                if upto is None:
                    break
                after = upto
        return deleted

    def apply_retention(self, settings, now=None, window=500):
        """Delete the completed and cancelled jobs older than the `retention` setting (0: keep them) among the
        next `window` jobs of each state, sweeping on from call to call (back to the start after the end):
        what workers call with their heartbeat, so an old job goes within one sweep. A read first, so that
        the common case (nothing old enough) takes no write lock. Returns how many were deleted."""
        seconds = settings.get("retention") or 0
        if seconds <= 0:
            return 0
        now = now_ms() if now is None else now
        before = now - int(seconds * 1000)
        cursors = self.__dict__.setdefault("_retention_cursors", {})
        deleted = 0
        for state in RETENTION_STATES:
            after = cursors.get(state, 0)
            upto = self._window_end(state, after, window)
            bounds = {"state": state, "after": after, "upto": upto or _LAST_SEQ, "before": before}
            if self._read(self.q.any_finished_in, bounds).fetchone():
                with self._transaction() as connection:
                    deleted += connection.execute(self.q.delete_finished_in, bounds).rowcount
            cursors[state] = upto or 0
        return deleted

    def _window_end(self, state, after, window):
        """The seq of the `window`-th job of `state` after seq `after` (None: fewer are left)."""
        row = self._read(self.q.window_end, {"state": state, "after": after, "skip": window - 1}).fetchone()
        return None if row is None else row[0]


def _finished(states):
    """`states` checked: only finished jobs may be deleted."""
    states = list(dict.fromkeys(states))
    wrong = [state for state in states if state not in FINISHED_STATES]
    if wrong or not states:
        raise InvalidInput(f"only finished jobs can be purged: state must be one of {', '.join(FINISHED_STATES)},"
                           f" got {wrong[0] if wrong else 'none'!r}")
    return states
