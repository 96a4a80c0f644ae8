"""Claims and results several at once, for workers with several slots (mixed into Store).

A worker with K slots claims up to its free slots and records the runs that ended together at once. On the plain
path (no flow control, no queue given) the statements are set-based whatever the batch's size. On PostgreSQL the
whole turn is one statement, its own transaction (SQL.turn): the results end their jobs (each fenced by its own
lease token, as finish_run is) and their runs, and the claims are made with their runs opened. SQLite, which has
no data-modifying WITH, does the same in one transaction of four statements. A result that was not taken (its
lease lost, or a cancel asked meanwhile) goes the one-job way, which decides again with the cancel flag or records
nothing; results that need more written (hooks, dependents to fail, a hand-back) take the transaction path."""

import os

from ..errors import DatabaseError
from ..lifecycle import HOOKS, dependents_state
from ..timeutil import now_ms
from .flow import claim_of
from .sql import FINISH_JOBS, FINISH_RUNS, OPEN_RUNS, RESULT_COLUMNS, RUN_OPENED_COLUMNS


class BatchesMixin:
    """claim_many and finish_runs."""

    _batch_statements = None
    _turn_columns = None
    _unanswered_tokens = ()  # (worker, lease token) of each turn that raised since the last answered one

    def claim_many(self, worker_id, lease_seconds, count, now=None, queues=None):
        """Take up to `count` due jobs for `worker_id` in one transaction (a worker's free slots); a list of Claims
        in claim order, empty when nothing is due."""
        now = now_ms() if now is None else now
        if self.q.turn is not None and queues is None and not self._flow:
            return self._turn([], [], worker_id, lease_seconds, count, now)[1]
        with self._transaction() as connection:
            return self._claim_up_to(connection, worker_id, lease_seconds, now, queues, count)

    def finish_runs(self, results, worker_id=None, lease_seconds=None, claim_count=0, now=None, queues=None):
        """Record several ended runs, each a (claim, outcome, output, output_offset) as finish_run takes them, and
        claim up to `claim_count` due jobs for `worker_id`, in one transaction: a worker whose runs end close
        together commits once for all. Returns (the Transitions, each None if that lease was lost; the Claims)."""
        now = now_ms() if now is None else now
        if self.q.turn is not None and queues is None and not self._flow:
            decided = [self._decide(claim.job, outcome, now, cancel_requested=False)
                       for claim, outcome, _, _ in results]
            if all(_ends_alone(claim, transition) for (claim, _, _, _), transition in zip(results, decided)):
                return self._turn(results, decided, worker_id, lease_seconds, claim_count, now)
        if claim_count and self._split_flow_claims and (self._flow or queues):
            # PostgreSQL under flow control: the finish gives back slots (row locks on queues and key_slots rows)
            # that another worker's claim may hold the other way round; two transactions never wait on each other.
            transitions = self.finish_runs(results, now=now)[0] if results else []
            return transitions, self.claim_many(worker_id, lease_seconds, claim_count, None, queues)
        with self._transaction() as connection:
            transitions = self._finish_all(connection, results, now)
            claims = self._claim_up_to(connection, worker_id, lease_seconds, now, queues, claim_count)
        return transitions, claims

    def _turn(self, results, decided, worker_id, lease_seconds, claim_count, now):
        """finish_runs in one statement (SQL.turn): `results` whose `decided` transitions need nothing more
        written, and up to `claim_count` plain claims. A result the statement did not take goes the one-job way
        after it; claims the flow path must make follow the same way as in _claim_up_to."""
        expires = now + int((lease_seconds or 0) * 1000)
        unanswered = bool(self._unanswered_tokens)
        recovered = self._recover_claims(worker_id, expires)
        claim_count = max(claim_count - len(recovered), 0)
        params = {"now": now, "worker": worker_id, "token": os.urandom(8).hex(), "limit": claim_count,
                  "expires": expires}
        if results:
            statement, params = self._batch("turn", RESULT_COLUMNS, _result_rows(results, decided), self.q.turn[0],
                                            params)
        else:
            statement = self.q.turn[1]
        try:
            cursor = self._alone(statement, params)
        except DatabaseError:
            # The statement may have committed with its reply lost on the way back: the jobs it claimed are
            # leased to a token only this store knows, and the next turn takes them up (_recover_claims). The
            # jobs recovered for this turn are leased to an earlier one: kept too.
            if claim_count or recovered:
                self._unanswered_tokens = [*self._unanswered_tokens, (worker_id, params["token"])]
            raise
        self._unanswered_tokens = []
        rows = cursor.fetchall()
        taken, freed, flow_held = set(rows[0][0] or ()), rows[0][1], rows[0][2]
        if self._turn_columns is None:  # the same for every turn (reading cursor.description costs per column)
            self._turn_columns = [d[0] for d in cursor.description][3:]
        columns = self._turn_columns
        claimed = _in_claim_order([row[3:] for row in rows if row[3] is not None], columns)
        claims = recovered + [claim_of(columns, row) for row in claimed]
        transitions = [transition if claim.seq in taken else None
                       for (claim, _, _, _), transition in zip(results, decided)]
        if len(taken) < len(results):  # a lease lost, or a cancel asked meanwhile: decided again the one-job way
            with self._transaction() as connection:
                for index, (claim, outcome, output, offset) in enumerate(results):
                    if claim.seq not in taken:
                        transitions[index] = self._finish(connection, claim, outcome, output, now, offset)
                    if transitions[index] is None and unanswered and self._recorded(connection, claim, outcome):
                        transitions[index] = decided[index]  # the turn whose reply was lost recorded it
        if len(claims) < claim_count + len(recovered):
            wanted = claim_count + len(recovered) - len(claims)
            if freed:  # the dependents this turn freed are due now
                claims += self.claim_many(worker_id, lease_seconds, wanted, now)
            elif flow_held:
                self._flow = True  # flow control holds jobs back: the flow claim takes the rest one by one
                claims += self.claim_many(worker_id, lease_seconds, wanted, now)
        return transitions, claims

    def _recorded(self, connection, claim, outcome):
        """Whether `claim`'s run ended with `outcome` already (a hand-back ends it as "worker lost")."""
        row = connection.execute(self.q.run_outcome, {"seq": claim.seq, "attempt": claim.attempt}).fetchone()
        return row is not None and (row[0], row[1]) == (outcome.exit_code, outcome.error)

    def _recover_claims(self, worker_id, expires):
        """The Claims of this worker's turns whose replies were lost, if they committed (jobs still processing
        under their lease tokens), their leases renewed to `expires`."""
        tokens = [token for worker, token in self._unanswered_tokens if worker == worker_id]
        if not tokens:
            return []
        cursor = self._alone(self.q.recover_claims, {"worker": worker_id, "tokens": tokens, "expires": expires})
        columns = [d[0] for d in cursor.description]
        return [claim_of(columns, row) for row in cursor.fetchall()]

    # ---- claims --------------------------------------------------------------------------------

    def _claim_up_to(self, connection, worker_id, lease_seconds, now, queues, count):
        claims = []
        if count > 1 and queues is None and not self._flow:
            claims = self._claim_set(connection, worker_id, lease_seconds, now, count)
            # Fewer than asked: nothing more is due, unless flow control holds jobs back (the set claim takes
            # nothing then, as the plain claim does): the flow claim takes them one by one below.
            if len(claims) == count or not connection.execute(self.q.flow_on, {}).fetchone()[0]:
                return claims
            self._flow = True
        while len(claims) < count:
            claim = self._claim(connection, worker_id, lease_seconds, now, queues)
            if claim is None:
                break
            claims.append(claim)
        return claims

    def _claim_set(self, connection, worker_id, lease_seconds, now, count):
        """Up to `count` due jobs on the plain path in one statement, their runs opened in one more."""
        cursor = connection.execute(self.q.claim_batch, {
            "worker": worker_id, "token": os.urandom(8).hex(), "expires": now + int(lease_seconds * 1000),
            "now": now, "limit": count,
        })
        rows = cursor.fetchall()
        if not rows:
            return []
        rows = _in_claim_order(rows, [d[0] for d in cursor.description])
        connection.execute(*self._batch("open_runs", RUN_OPENED_COLUMNS, [row[:2] for row in rows], OPEN_RUNS,
                                        {"now": now, "worker": worker_id}))
        return [self._opened(connection, cursor, row, worker_id, now, open_run=False) for row in rows]

    # ---- results -------------------------------------------------------------------------------

    def _finish_all(self, connection, results, now):
        """The Transitions of `results`, written: set-based for two or more, the one-job way for the rest."""
        if len(results) < 2:
            return [self._finish(connection, claim, outcome, output, now, offset)
                    for claim, outcome, output, offset in results]
        decided = [self._decide(claim.job, outcome, now, cancel_requested=False) for claim, outcome, _, _ in results]
        rows = _result_rows(results, decided)
        taken = {row[0] for row in connection.execute(
            *self._batch("finish_jobs", RESULT_COLUMNS, rows, FINISH_JOBS + " RETURNING seq", {"now": now}))}
        if taken:
            connection.execute(*self._batch(
                "finish_runs", RESULT_COLUMNS, [row for row in rows if row[0] in taken],
                FINISH_RUNS + " WHERE runs.job_seq = v_seq AND runs.attempt = v_attempt", {"now": now}))
        transitions = []
        for result, transition in zip(results, decided):
            claim, outcome, output, offset = result
            if claim.seq not in taken:  # its lease was lost, or a cancel came: decided again the one-job way
                transitions.append(self._finish(connection, claim, outcome, output, now, offset))
                continue
            self._settle_dependents(connection, claim.seq, claim.id, transition.state, now)
            if transition.state in HOOKS and claim.job.get(HOOKS[transition.state]):
                self._enqueue_hook(connection, claim.id, transition.state, transition.exit_code, claim.job, now)
            transitions.append(transition)
        if any(transition and transition.state == "pending" for transition in transitions):
            self._wake(connection)  # handed back at once (a stopped worker): idle workers may be asleep
        return transitions

    def _batch(self, name, columns, rows, body, params):
        """(statement, parameters) of `body` after `WITH v(v_column, ...) AS (...)` whose rows are `rows`
        (tuples in the order of `columns`, (name, SQL type) pairs), with `params` for the rest of `body`.

        PostgreSQL gets one array per column (unnest): one statement whatever the count of rows, short enough
        for psycopg to cache its parsing (a VALUES list of ten results was parsed again at each call, half the
        client's time per job) and prepared once. SQLite gets a VALUES list of typed parameters, made once per
        name and count."""
        if self._batch_statements is None:
            self._batch_statements = {}
        params = dict(params)
        arrays = self.q.arrays
        key = (name, None if arrays else len(rows))
        statement = self._batch_statements.get(key)
        if statement is None:
            names = ", ".join(f"v_{column}" for column, _ in columns)
            if arrays:
                source = "SELECT * FROM unnest(" + ", ".join(
                    f"CAST(:v_{column} AS {kind}[])" for column, kind in columns) + ")"
            else:
                source = "VALUES " + ", ".join(
                    "(" + ", ".join(f"CAST(:{column}{index} AS {kind})" for column, kind in columns) + ")"
                    for index in range(len(rows)))
            statement = self.q.dialect(f"WITH v({names}) AS ({source}) {body}")
            self._batch_statements[key] = statement
        if arrays:
            for position, (column, _) in enumerate(columns):
                params[f"v_{column}"] = [row[position] for row in rows]
        else:
            for index, row in enumerate(rows):
                params.update({f"{column}{index}": value for (column, _), value in zip(columns, row)})
        return statement, params


def _in_claim_order(rows, columns):
    """Claimed rows (seq first, then `columns`' names) in claim order: priority, then run_at, then enqueue order
    (RETURNING gives no order)."""
    priority, run_at = columns.index("priority"), columns.index("run_at")
    return sorted(rows, key=lambda row: (-row[priority], row[run_at], row[0]))


def _result_rows(results, transitions):
    """The rows of RESULT_COLUMNS for `results` ((claim, outcome, output, offset)) and their `transitions`."""
    return [(claim.seq, claim.token, transition.state, transition.attempts, transition.run_at_ms,
             transition.last_error, transition.exit_code, claim.attempt, outcome.exit_code, outcome.error, output,
             offset) for (claim, outcome, output, offset), transition in zip(results, transitions)]


def _ends_alone(claim, transition):
    """Whether a result needs nothing written beyond its job's and its run's rows: no hook to enqueue, no
    dependents to fail, no idle worker to wake for a job handed back."""
    state = transition.state
    return state != "pending" and dependents_state(state) is None and not (
        state in HOOKS and claim.job.get(HOOKS[state]))
