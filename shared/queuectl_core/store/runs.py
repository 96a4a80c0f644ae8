"""Claims, leases and results: a run from its claim to its record (mixed into Store).

The store decides what a run's end does to its job: it hands the outcome, with the job's own bookkeeping, to the
pure state machine (lifecycle.decide) and writes the transition it returns, fenced by the claim's lease token.
"""

import json
import os

from ..lifecycle import HOOKS, decide, lost_outcome
from ..timeutil import now_ms
from .records import Claim, Heartbeat
from .sql import LEASE_COLUMNS, RENEW_LEASES


class RunsMixin:
    """claim_next, finish_run (and both at once), heartbeats with lease renewal, output flushes, and the hand-back
    of jobs whose worker was lost."""

    _rng = None
    _split_flow_claims = False  # PostgreSQL: see finish_run_and_claim_next

    def claim_next(self, worker_id, lease_seconds, now=None, queues=None):
        """Take the next due job for `worker_id` with a lease (from `queues` only, when given); None when nothing
        is due."""
        claims = self.claim_many(worker_id, lease_seconds, 1, now, queues)
        return claims[0] if claims else None

    def _claim(self, connection, worker_id, lease_seconds, now, queues=None):
        params = {
            "worker": worker_id,
            "token": os.urandom(8).hex(),
            "expires": now + int(lease_seconds * 1000),
            "now": now,
        }
        if queues is None and not self._flow:
            # The plain claim: one statement, unchanged by flow control, which it leaves to the flow claim (its
            # LIMIT is 0 while FLOW_ON); only when it finds nothing does the store look whether that is why.
            cursor = connection.execute(self.q.claim, params)
            row = cursor.fetchone()
            if row is not None:
                return self._opened(connection, cursor, row, worker_id, now)
            if not connection.execute(self.q.flow_on, {}).fetchone()[0]:
                return None
            self._flow = True
        return self._flow_claim(connection, params, worker_id, now, queues)

    def finish_run(self, claim, outcome, output, now=None, output_offset=0):
        """Record how a claimed run ended (an Outcome) and move its job to the state the rules give; return that
        Transition, or None (and nothing written) if the lease was lost meanwhile.

        `output_offset` is how many bytes of the run's output came before the kept tail `output`."""
        return self.finish_runs([(claim, outcome, output, output_offset)], now=now)[0][0]

    def finish_run_and_claim_next(self, claim, outcome, output, worker_id, lease_seconds, now=None, output_offset=0,
                                  queues=None):
        """finish_run, then claim_next for the same worker, in one transaction: a busy worker commits once per
        job instead of twice. Returns (the Transition or None, the next Claim or None)."""
        transitions, claims = self.finish_runs([(claim, outcome, output, output_offset)], worker_id, lease_seconds,
                                               1, now, queues)
        return transitions[0], (claims[0] if claims else None)

    def _finish(self, connection, claim, outcome, output, now, output_offset):
        # The common case takes one statement: the transition for a job nobody asked to cancel, written only if
        # that is still so. When it is not, the job is read again under the lock: a lost lease records nothing,
        # a cancel asked meanwhile is decided with.
        transition = self._decide(claim.job, outcome, now, cancel_requested=False)
        if not self._write_finish(connection, claim, transition, now, cancel_requested=0):
            if connection.execute(self.q.cancel_flag, {"seq": claim.seq, "token": claim.token}).fetchone() is None:
                return None
            transition = self._decide(claim.job, outcome, now, cancel_requested=True)
            self._write_finish(connection, claim, transition, now, cancel_requested=1)
        connection.execute(self.q.finish_run, {
            "now": now, "exit_code": outcome.exit_code, "error": outcome.error, "output": output,
            "offset": output_offset, "seq": claim.seq, "attempt": claim.attempt,
        })
        self._settle_dependents(connection, claim.seq, claim.id, transition.state, now)
        if transition.state == "pending":  # handed back at once (a stopped worker): idle workers may be asleep
            self._wake(connection)
        if transition.state in HOOKS and claim.job.get(HOOKS[transition.state]):  # in this same transaction
            self._enqueue_hook(connection, claim.id, transition.state, transition.exit_code, claim.job, now)
        return transition

    def _write_finish(self, connection, claim, transition, now, cancel_requested):
        return connection.execute(self.q.finish_job, {
            "state": transition.state, "attempts": transition.attempts, "run_at": transition.run_at_ms,
            "error": transition.last_error, "exit_code": transition.exit_code, "now": now,
            "seq": claim.seq, "token": claim.token, "cancel_requested": cancel_requested,
        }).rowcount

    def _decide(self, job, outcome, now, cancel_requested, settings=None):
        """The state machine's transition for `job` (a claim's record) after `outcome`."""
        if self._rng is None:
            import random  # only stores that record runs draw jitter: one-shot commands start faster without it

            self._rng = random.Random()
        return decide(job["attempts"], job["max_retries"], outcome, settings or self._decision_settings(), now,
                      self._rng, job.get("retry_on"), job.get("no_retry_on"), cancel_requested)

    def _decision_settings(self):
        """The settings the rules use (backoff), as last read by this store: every heartbeat reads them again."""
        return self.__dict__.get("_known_settings") or self.get_settings()

    def flush_output(self, claim, output, output_offset):
        """Store the output tail of a run still going (for `logs --follow`); True when a cancel of the
        job was asked meanwhile (one small transaction, at most about once a second per running job)."""
        return claim.seq in self.flush_outputs([(claim, output, output_offset)])

    def flush_outputs(self, tails):
        """Store the output tails of runs still going, each a (claim, output, output_offset), in one transaction;
        return the seqs of those whose job was asked to cancel meanwhile."""
        cancelled = set()
        with self._transaction() as connection:
            for claim, output, offset in tails:
                connection.execute(self.q.flush_output, {"output": output, "offset": offset,
                                                         "seq": claim.seq, "attempt": claim.attempt})
                row = connection.execute(self.q.cancel_flag, {"seq": claim.seq, "token": claim.token}).fetchone()
                if row and row[0]:
                    cancelled.add(claim.seq)
        return cancelled

    def heartbeat(self, worker_id, lease_seconds, claims=None, stats=None, now=None):
        """Mark the worker alive, renew the leases of its running jobs (`claims`: a Claim or a list of them) in one
        statement, and read its stop flag, the settings, and which of those jobs were lost or asked to cancel."""
        now = now_ms() if now is None else now
        claims = [] if claims is None else [claims] if isinstance(claims, Claim) else list(claims)
        params = {"now": now, "stats": json.dumps(stats) if stats else None, "worker": worker_id,
                  # workers that stopped heartbeating long ago are forgotten (their jobs are reclaimed by lease)
                  "before": now - 2 * int(lease_seconds * 1000), "expires": now + int(lease_seconds * 1000)}
        beat = self._beat_alone if self.q.heartbeat is not None else self._beat
        stop, alive, setting_rows, held, cancelled, expired, next_due = beat(params, claims)
        current = self._settings_of(setting_rows)
        rejoined = not alive and worker_id in self._registered()
        if rejoined:
            # Its row was forgotten (another worker's heartbeat after an outage of 2 x lease_timeout): without
            # it the worker went on claiming, but `worker list`, /metrics, `worker stop` and --health lost it.
            host, pid, started, concurrency = self._registered()[worker_id]
            with self._transaction() as connection:
                connection.execute(self.q.rejoin_worker, {**params, "host": host, "pid": pid, "started": started,
                                                          "concurrency": concurrency})
        self._apply_settings(current)
        lost = frozenset(claim.seq for claim in claims) - held
        return Heartbeat(stop_requested=bool(stop), lease_held=not lost, settings=current,
                         cancel_requested=bool(cancelled), rejoined=rejoined, lost=lost, cancelled=frozenset(cancelled),
                         leases_expired=expired, next_schedule_due=next_due)

    def _beat(self, params, claims):
        """A heartbeat's writes and reads in one transaction: (stop flag, whether the worker's row was there, the
        settings' rows, the seqs of the leases renewed, of those asked to cancel, whether any lease expired, when
        the next schedule is due)."""
        held, cancelled = set(), set()
        with self._transaction() as connection:
            row = connection.execute(self.q.beat, params).fetchone()
            if claims:
                renewal = self._batch("renew_leases", LEASE_COLUMNS, _leases(claims), RENEW_LEASES, params)
                for seq, cancel_requested in connection.execute(*renewal):
                    held.add(seq)
                    if cancel_requested:
                        cancelled.add(seq)
            connection.execute(self.q.forget_workers, params)
            setting_rows = connection.execute(self.q.settings, {}).fetchall()
            # The turn's other questions, in this same transaction (an idle worker's turn is then one).
            expired = connection.execute(self.q.any_expired, params).fetchone() is not None
            next_due = connection.execute(self.q.next_schedule_due, {}).fetchone()[0]
        return row and row[0], row is not None, setting_rows, held, cancelled, expired, next_due

    def _beat_alone(self, params, claims):
        """_beat as one statement (SQL.heartbeat, PostgreSQL): one round trip."""
        if claims:
            statement, params = self._batch("heartbeat", LEASE_COLUMNS, _leases(claims), self.q.heartbeat[0], params)
        else:
            statement = self.q.heartbeat[1]
        stop, alive, setting_rows, held, cancelled, expired, next_due = self._alone(statement, params).fetchone()
        return stop, alive, setting_rows or [], set(held or ()), set(cancelled or ()), expired, next_due

    def _apply_settings(self, settings):
        """Make the connection follow settings that act on it (SQLite's durability), as read by a heartbeat."""

    def reclaim_expired(self, settings=None, now=None):
        """Hand back jobs whose lease expired (their worker was lost); return their ids.

        The lost run counts as a failed attempt, so a job that kills its worker every time
        ends in the dead letter queue instead of looping forever.
        """
        now = now_ms() if now is None else now
        if self._read(self.q.any_expired, {"now": now}).fetchone() is None:
            return []  # the common case, answered without a write transaction
        reclaimed = []
        with self._transaction() as connection:
            rows = connection.execute(self.q.expired, {"now": now}).fetchall()
            for seq, job_id, attempts, max_retries, run_count, worker_id, cancel_requested, token, on_dead in rows:
                outcome = lost_outcome(worker_id)
                job = {"attempts": attempts, "max_retries": max_retries}
                transition = self._decide(job, outcome, now, bool(cancel_requested), settings)
                if not connection.execute(self.q.hand_back, {
                    "state": transition.state, "attempts": transition.attempts, "run_at": transition.run_at_ms,
                    "error": outcome.error, "now": now, "seq": seq, "token": token,
                }).rowcount:
                    continue  # handed back (and maybe claimed again) since it was read: nothing of it is ours
                connection.execute(self.q.close_lost_run, {"now": now, "error": outcome.error, "seq": seq,
                                                           "attempt": run_count})
                self._settle_dependents(connection, seq, job_id, transition.state, now)
                self._enqueue_hook(connection, job_id, transition.state, None, {"on_dead": on_dead}, now)
                reclaimed.append(job_id)
            self._wake(connection)
        return reclaimed


def _leases(claims):
    """The rows of LEASE_COLUMNS for `claims`."""
    return [(claim.seq, claim.token) for claim in claims]
