"""Operators changing jobs and the queue: cancel, pause and resume, retries from the dead letter queue (mixed into
Store). Each takes `actor=` and then records itself in the audit log, in its own transaction (see audit.py)."""

import json

from ..errors import JobNotFound, WrongState
from ..lifecycle import dependents_state
from ..timeutil import now_ms, to_iso
from .records import _record
from .sql import PAUSED


class ControlMixin:
    """cancel, pause/resume, retry_dead and retry_all_dead."""

    def cancel(self, job_id, now=None, actor=None):
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
                self._audit(connection, actor, "cancel", job_id, {"running": False}, now)
                return record, True
            cursor = connection.execute(self.q.request_cancel, {"id": job_id})
            row = cursor.fetchone()
            if row is not None:
                self._audit(connection, actor, "cancel", job_id, {"running": True}, now)
                return _record(cursor, row), False
            found = connection.execute(self.q.state_of, {"id": job_id}).fetchone()
        if found is None:
            raise JobNotFound(job_id)
        raise WrongState(f"job '{job_id}' is {found[0]}: only pending, failed or processing jobs can be cancelled")

    def pause(self, queue=None, now=None, actor=None):
        """Stop every worker from claiming (running jobs finish), or from claiming jobs of `queue` only; True if it
        was running before."""
        now = now_ms() if now is None else now
        if queue is not None:
            return self._pause_queue(queue, now, actor)
        with self._transaction() as connection:
            was_paused = connection.execute(self.q.paused, {}).fetchone() is not None
            if not was_paused:
                connection.execute(self.q.set_setting, {"name": PAUSED, "value": json.dumps(now)})
            self._audit(connection, actor, "pause", "queue", {"changed": not was_paused}, now)
        return not was_paused

    def resume(self, queue=None, now=None, actor=None):
        """Let workers claim again (from `queue` only, when given: the global pause stays); True if it was
        paused."""
        now = now_ms() if now is None else now
        if queue is not None:
            return self._resume_queue(queue, now, actor)
        with self._transaction() as connection:
            resumed = connection.execute(self.q.resume, {}).rowcount > 0
            self._wake(connection)
            self._audit(connection, actor, "resume", "queue", {"changed": resumed}, now)
        return resumed

    def paused_since(self, queue=None):
        """When the queue (or `queue`) was paused (ISO time), or None while it runs."""
        if queue is not None:
            return self.queue_info(queue)["paused_since"]
        row = self._read(self.q.paused).fetchone()
        return None if row is None else to_iso(json.loads(row[0]))

    def retry_dead(self, job_id, now=None, actor=None):
        """Move a dead job back to pending with attempts 0 and return its record."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            blocker = connection.execute(self.q.ended_dependency, {"id": job_id}).fetchone()
            if blocker is not None:
                dependency, state = blocker
                if state == "dead":
                    raise WrongState(f"job '{job_id}' waits for '{dependency}', which is dead: retry '{dependency}'"
                                     " first (or every dead job with `dlq retry --all`)")
                raise WrongState(f"job '{job_id}' waits for '{dependency}', which was cancelled and can never"
                                 " complete: enqueue the job again without that dependency")
            try:
                cursor = connection.execute(self.q.retry_dead, {"now": now, "id": job_id})
                row = cursor.fetchone()
            except self._integrity_error:  # jobs_unique: another unfinished job holds its unique_key
                raise WrongState(f"job '{job_id}' has a unique_key that an unfinished job holds: it can be retried"
                                 " once that job has finished") from None
            if row is not None:
                self._wake(connection)
                self._audit(connection, actor, "retry", job_id, {}, now)
                return _record(cursor, row)
            found = connection.execute(self.q.state_of, {"id": job_id}).fetchone()
        if found is None:
            raise JobNotFound(job_id)
        raise WrongState(f"job '{job_id}' is {found[0]}, not dead: only dead jobs can be retried")

    def retry_all_dead(self, now=None, actor=None):
        """Move every dead job back to pending with attempts 0 (as retry_dead does); return how many."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            self._wake(connection)
            retried = connection.execute(self.q.retry_all_dead, {"now": now}).rowcount
            # Jobs with a unique_key one by one, newest first: one whose key an unfinished job holds stays dead.
            for (seq,) in connection.execute(self.q.dead_with_unique_key, {}).fetchall():
                retried += connection.execute(self.q.retry_dead_unique, {"now": now, "seq": seq}).rowcount
            # Jobs waiting for a cancelled one can never run: dead again, naming it (and their dependents).
            while doomed := connection.execute(self.q.doomed_dependents, {}).fetchall():
                seq, job_id, dependency, state = doomed[0]
                self._doom(connection, seq, now, dependency, state)
                retried -= 1 + self._settle_dependents(connection, seq, job_id, dependents_state(state), now)
            self._audit(connection, actor, "retry-all", "dlq", {"count": retried}, now)
            return retried
