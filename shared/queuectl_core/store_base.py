"""The queue's operations, the same on every backend.

A backend (sqlite_store, postgres_store) supplies connections, transactions, its SQL statements
(`self.q`, a namespace of the portable queries plus its own) and the few things dialects do differently.
"""

import json
import os

from . import settings as settings_module
from .errors import BadDependency, DuplicateJob, InvalidInput, JobNotFound, WrongState
from .store_operator import CANCELLABLE_STATES, FINISHED_STATES, RETENTION_STATES, OperatorMixin
from .store_records import (
    Claim,
    Heartbeat,
    _dependency_error,
    _new_job_ids,
    _new_record,
    _record,
    _to_record,
    new_job_id,
)
from .store_registry import RegistryMixin
from .store_reports import ReportsMixin
from .timeutil import now_ms

# The columns of a bulk enqueue's rows, in their order (created_at and updated_at are the batch's `now`).
BULK_COLUMNS = ("id", "command", "max_retries", "priority", "run_at", "timeout", "depends_on", "retry_on",
                "no_retry_on")
STATES = ("pending", "processing", "completed", "failed", "dead", "cancelled")
__all__ = ["CANCELLABLE_STATES", "FINISHED_STATES", "RETENTION_STATES", "STATES", "Claim", "Heartbeat", "Store",
           "new_job_id", "_new_job_ids", "_new_record", "_record", "_to_record"]


class Store(OperatorMixin, RegistryMixin, ReportsMixin):
    """A queue in a database shared by every process (CLI, workers, API) that names it."""

    # What a database failure (disk full, I/O error, lock wait exhausted, lost connection) raises:
    # callers that must survive one, like the worker loop, catch this without knowing the backend.
    Error = Exception
    IntegrityError = Exception  # a duplicate job id
    q = None  # the backend's statements

    # Sort keys of search_jobs and their columns; `seq` (enqueue order) breaks ties so pages never overlap.
    JOB_SORTS = {
        "created_at": "seq", "updated_at": "updated_at", "run_at": "run_at", "priority": "priority",
        "attempts": "attempts", "state": "state", "id": "id", "command": "command",
    }
    # Upper bounds (seconds) of the run duration histogram that /metrics exports.
    RUN_DURATION_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600)

    # ---- what a backend provides ----------------------------------------------------

    def _transaction(self):
        """A context manager for one write transaction, yielding something with execute(sql, params)."""
        raise NotImplementedError

    def _read(self, statement, params=None):
        """Run a read outside any write transaction; returns a cursor."""
        raise NotImplementedError

    def _insert_jobs(self, connection, rows, now, progress):
        """Insert many job rows (tuples of BULK_COLUMNS) created at `now` inside the open transaction."""
        raise NotImplementedError

    def _stage_jobs(self, rows, progress):
        """Before the write transaction, put `rows` where _insert_staged_jobs copies them from in one statement;
        True when done, False to have _insert_jobs insert them inside the transaction instead."""
        return False

    def _insert_staged_jobs(self, connection, now):
        """Inside the open transaction: insert the rows _stage_jobs staged, in their order, created at `now`."""
        raise NotImplementedError

    def _ids_present(self, ids):
        """Which of `ids` the jobs table holds."""
        raise NotImplementedError

    def _execute_many(self, connection, statement, rows):
        """Run `statement` once per params dict of `rows` inside the open transaction."""
        raise NotImplementedError

    def _after_copy(self, connection):
        """Bring derived state (sequences, counters) in line after rows were copied in with their keys."""

    def change_watcher(self):
        """An object with fileno(), drain() and works, readable when the queue may have changed."""
        raise NotImplementedError

    def line_up_writers(self):
        """Have this store's write transactions wait in line with other workers' where the backend's own wait is
        coarse (SQLite); a no-op where it is not."""

    def close(self):
        """Release the connection."""
        raise NotImplementedError

    def check_writable(self):
        """Raise DatabaseUnusable when the database can be read but never written (a read-only file); a passing
        trouble such as a full disk is not reported here: workers wait for it like for any database error."""

    # ---- enqueue -------------------------------------------------------------------

    def enqueue(self, spec, now=None):
        """Store one checked JobSpec as a pending job and return its record."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            row = self._job_row(spec, now, self._default_max_retries(connection))
            try:
                connection.execute(self.q.insert_job, row)
            except self.IntegrityError:
                raise DuplicateJob(row["id"]) from None
            self._count_new_jobs(connection, 1)
            if spec.after:
                self._add_dependencies(connection, [(None, row["id"], spec.after)], {}, now)
                cursor = connection.execute(self.q.get_job, {"id": row["id"]})
                record = _record(cursor, cursor.fetchone())
                record.pop("seq")
                return record
        return _new_record(row)

    def enqueue_many(self, numbered_specs, now=None, progress=None):
        """Store (line, JobSpec) pairs in one transaction, all or nothing; return their ids.

        `progress`, if given, is called with the number of jobs stored by each chunk.
        """
        now = now_ms() if now is None else now
        seen = {}
        for line, spec in numbered_specs:
            if spec.id is not None:
                if spec.id in seen:
                    raise InvalidInput(f"line {line}: id '{spec.id}' repeats line {seen[spec.id]}")
                seen[spec.id] = line
        # The rows are built, and staged where the backend can, before the write lock is taken: a bulk enqueue of
        # 1M jobs held SQLite's lock so long (~40 s) that other writers gave up with "database is locked".
        rows = self._bulk_rows(numbered_specs, now, self._default_max_retries(None))
        staged = self._stage_jobs(rows, progress)
        try:
            with self._transaction() as connection:
                if staged:
                    self._insert_staged_jobs(connection, now)
                else:
                    self._insert_jobs(connection, rows, now, progress)
                self._count_new_jobs(connection, len(rows))
                waiting = [(line, row[0], spec.after)
                           for (line, spec), row in zip(numbered_specs, rows, strict=True) if spec.after]
                if waiting:
                    lines = {row[0]: line for (line, _), row in zip(numbered_specs, rows, strict=True)}
                    self._add_dependencies(connection, waiting, lines, now)
        except self.IntegrityError:
            # Rolled back already; now find the first line whose id the database holds.
            raise self._first_duplicate(rows, numbered_specs) from None
        return [row[0] for row in rows]

    @classmethod
    def _bulk_rows(cls, numbered_specs, now, default_max_retries):
        """The rows of a bulk enqueue: tuples of BULK_COLUMNS (cheaper to build and to bind than dicts)."""
        fresh_ids = _new_job_ids(sum(1 for _, spec in numbered_specs if spec.id is None))
        values = cls._job_values
        return [values(spec, now, default_max_retries, spec.id or next(fresh_ids)) for _, spec in numbered_specs]

    def _count_new_jobs(self, connection, count):
        if self.q.count_new_jobs:
            connection.execute(self.q.count_new_jobs, {"n": count})
        self._wake(connection)

    def _add_dependencies(self, connection, waiting, lines, now):
        """Record the edges of new jobs: (line, job id, ids after which it runs) each; `lines` maps the
        ids of this batch to their line. An unknown id is refused; a job can wait only for an earlier
        line (so no cycle can form); a completed dependency needs no edge; one that ended dead or
        cancelled makes the new job dead at once, as it would have if it had ended later."""
        for line, job_id, after in waiting:
            where = f"line {line}: " if line is not None else ""
            job_seq = connection.execute(self.q.seq_of, {"id": job_id}).fetchone()[0]
            ended = None
            for dependency in after:
                if dependency == job_id:
                    raise BadDependency(f"{where}after: job '{job_id}' cannot wait for itself")
                if line is not None and lines.get(dependency, 0) >= line:
                    raise InvalidInput(f"{where}after: job '{dependency}' comes on line {lines[dependency]};"
                                       " a job can only wait for jobs enqueued before it")
                found = connection.execute(self.q.dependency, {"id": dependency}).fetchone()
                if found is None:
                    raise BadDependency(f"{where}after: no job with id '{dependency}'")
                dependency_seq, state = found
                if state == "completed":
                    continue
                connection.execute(self.q.add_dependency, {"job": job_seq, "dep": dependency_seq})
                if state in ("dead", "cancelled") and ended is None:
                    ended = (dependency, state)
            if ended:
                connection.execute(self.q.fail_job, {"seq": job_seq, "now": now,
                                                     "error": _dependency_error(*ended)})

    def _settle_dependents(self, connection, seq, job_id, state, now):
        """After job `seq` reached `state`: a dead or cancelled one makes every job waiting for it dead, naming
        it (and so on down the chain). Returns how many jobs that made dead. (A completed job frees its
        dependents' edges by trigger: job_deps_done.)"""
        if state not in ("dead", "cancelled"):
            return 0
        ended = [(seq, job_id, state)]
        failed = 0
        while ended:
            seq, job_id, state = ended.pop()
            rows = connection.execute(self.q.fail_dependents, {
                "seq": seq, "now": now, "error": _dependency_error(job_id, state)}).fetchall()
            ended.extend((dependent_seq, dependent_id, "dead") for dependent_seq, dependent_id in rows)
            failed += len(rows)
        return failed

    def _wake(self, connection):
        """Tell idle workers that jobs became ready (where the backend needs telling)."""
        if self.q.wake:
            connection.execute(self.q.wake, {})

    def _first_duplicate(self, rows, numbered_specs):
        for start in range(0, len(rows), 500):
            ids = [row[0] for row in rows[start: start + 500]]
            found = self._ids_present(ids)
            for index, job_id in enumerate(ids):
                if job_id in found:
                    return DuplicateJob(job_id, numbered_specs[start + index][0])
        return DuplicateJob("?")

    def _default_max_retries(self, connection):
        """The max_retries setting, read in `connection`'s transaction (None: outside any transaction)."""
        if connection is None:
            row = self._read(self.q.default_max_retries).fetchone()
        else:
            row = connection.execute(self.q.default_max_retries, {}).fetchone()
        return json.loads(row[0]) if row else settings_module.SETTINGS["max_retries"].default

    @classmethod
    def _job_row(cls, spec, now, default_max_retries, job_id=None):
        """The parameters of q.insert_job for `spec`."""
        row = dict(zip(BULK_COLUMNS, cls._job_values(spec, now, default_max_retries, job_id), strict=True))
        row["now"] = now
        return row

    @staticmethod
    def _job_values(spec, now, default_max_retries, job_id=None):
        """The BULK_COLUMNS values of `spec` as a tuple."""
        return (
            job_id or spec.id or new_job_id(), spec.command,
            default_max_retries if spec.max_retries is None else spec.max_retries, spec.priority,
            spec.run_at_ms if spec.run_at_ms is not None else now + (spec.delay_ms or 0), spec.timeout,
            json.dumps(list(spec.after)) if spec.after else None,
            None if spec.retry_on is None else json.dumps(list(spec.retry_on)),
            None if spec.no_retry_on is None else json.dumps(list(spec.no_retry_on)),
        )

    # ---- claiming, leases and results ----------------------------------------------

    def claim_next(self, worker_id, lease_seconds, now=None):
        """Take the next due job for `worker_id` with a lease; None when nothing is due."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            return self._claim(connection, worker_id, lease_seconds, now)

    def _claim(self, connection, worker_id, lease_seconds, now):
        params = {
            "worker": worker_id,
            "token": os.urandom(8).hex(),
            "expires": now + int(lease_seconds * 1000),
            "now": now,
        }
        cursor = connection.execute(self.q.claim, params)
        row = cursor.fetchone()
        if row is None:
            return None
        columns = [d[0] for d in cursor.description]
        seq, attempt, token = row[0], row[1], row[2]
        connection.execute(self.q.open_run, {"seq": seq, "attempt": attempt, "now": now, "worker": worker_id})
        job = _to_record(dict(zip(columns[3:], row[3:], strict=False)))
        return Claim(seq=seq, attempt=attempt, token=token, job=job)

    def finish_run(self, claim, outcome, output, transition, now=None, output_offset=0):
        """Record how a claimed run ended; False (and nothing written) if the lease was lost.

        `output_offset` is how many bytes of the run's output came before the kept tail `output`."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            return self._finish(connection, claim, outcome, output, transition, now, output_offset)

    def finish_run_and_claim_next(self, claim, outcome, output, transition, worker_id, lease_seconds, now=None,
                                  output_offset=0):
        """finish_run, then claim_next for the same worker, in one transaction: a busy worker commits once per
        job instead of twice. Returns (recorded, the next Claim or None)."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            recorded = self._finish(connection, claim, outcome, output, transition, now, output_offset)
            return recorded, self._claim(connection, worker_id, lease_seconds, now)

    def _finish(self, connection, claim, outcome, output, transition, now, output_offset):
        updated = connection.execute(self.q.finish_job, {
            "state": transition.state, "attempts": transition.attempts, "run_at": transition.run_at_ms,
            "error": transition.last_error, "exit_code": transition.exit_code, "now": now,
            "seq": claim.seq, "token": claim.token,
        }).rowcount
        if updated:
            connection.execute(self.q.finish_run, {
                "now": now, "exit_code": outcome.exit_code, "error": outcome.error, "output": output,
                "offset": output_offset, "seq": claim.seq, "attempt": claim.attempt,
            })
            state = transition.state
            if state in ("pending", "failed"):  # a cancel asked meanwhile turns these into cancelled
                state = connection.execute(self.q.state_at, {"seq": claim.seq}).fetchone()[0]
            self._settle_dependents(connection, claim.seq, claim.id, state, now)
        return bool(updated)

    def flush_output(self, claim, output, output_offset):
        """Store the output tail of a run still going (for `logs --follow`); True when a cancel of the
        job was asked meanwhile (one small transaction, at most about once a second per running job)."""
        with self._transaction() as connection:
            connection.execute(self.q.flush_output, {"output": output, "offset": output_offset,
                                                     "seq": claim.seq, "attempt": claim.attempt})
            row = connection.execute(self.q.cancel_flag, {"seq": claim.seq, "token": claim.token}).fetchone()
        return bool(row and row[0])

    def heartbeat(self, worker_id, lease_seconds, claim=None, stats=None, now=None):
        """Mark the worker alive, renew its job's lease, and read its stop flag and the settings."""
        now = now_ms() if now is None else now
        lease_ms = int(lease_seconds * 1000)
        lease_held = True
        cancel_requested = False
        with self._transaction() as connection:
            row = connection.execute(self.q.beat, {
                "now": now, "stats": json.dumps(stats) if stats else None, "worker": worker_id,
            }).fetchone()
            if claim is not None:
                lease = connection.execute(self.q.renew_lease, {
                    "expires": now + lease_ms, "seq": claim.seq, "token": claim.token,
                }).fetchone()
                lease_held = lease is not None
                cancel_requested = bool(lease and lease[0])
            # Forget workers that stopped heartbeating long ago (their jobs are reclaimed by lease).
            connection.execute(self.q.forget_workers, {"before": now - 2 * lease_ms})
            current = self._settings(connection)
        self._apply_settings(current)
        return Heartbeat(stop_requested=bool(row and row[0]), lease_held=lease_held, settings=current,
                         cancel_requested=cancel_requested)

    def _apply_settings(self, settings):
        """Make the connection follow settings that act on it (SQLite's durability), as read by a heartbeat."""

    def reclaim_expired(self, settings, now=None, rng=None):
        """Hand back jobs whose lease expired (their worker was lost); return their ids.

        The lost run counts as a failed attempt, so a job that kills its worker every time
        ends in the dead letter queue instead of looping forever.
        """
        now = now_ms() if now is None else now
        if self._read(self.q.any_expired, {"now": now}).fetchone() is None:
            return []  # the common case, answered without a write transaction
        # Imported here: only workers hand jobs back, and one-shot CLI commands start faster without it.
        from .transitions import CANCELLED, LOST, Outcome, decide

        reclaimed = []
        with self._transaction() as connection:
            rows = connection.execute(self.q.expired, {"now": now}).fetchall()
            for seq, job_id, attempts, max_retries, run_count, worker_id, cancel_requested in rows:
                error = f"worker lost: {worker_id} stopped renewing its lease"
                # A cancel asked before the worker was lost is honoured: the job ends cancelled.
                outcome = Outcome(CANCELLED if cancel_requested else LOST, None, error)
                transition = decide(attempts, max_retries, outcome, settings, now, rng)
                connection.execute(self.q.hand_back, {
                    "state": transition.state, "attempts": transition.attempts, "run_at": transition.run_at_ms,
                    "error": error, "now": now, "seq": seq,
                })
                connection.execute(self.q.close_lost_run, {"now": now, "error": error, "seq": seq,
                                                           "attempt": run_count})
                self._settle_dependents(connection, seq, job_id, transition.state, now)
                reclaimed.append(job_id)
            self._wake(connection)
        return reclaimed

    def has_unfinished_jobs(self):
        """True while any job is pending, processing or failed (waiting for a retry)."""
        return self._read(self.q.any_unfinished).fetchone() is not None

    # ---- reading ---------------------------------------------------------------------

    def get_job(self, job_id, history=False):
        """One job's record, with its runs under 'history' when asked; JobNotFound otherwise."""
        cursor = self._read(self.q.get_job, {"id": job_id})
        row = cursor.fetchone()
        if row is None:
            raise JobNotFound(job_id)
        record = _record(cursor, row)
        seq = record.pop("seq")
        if history:
            cursor = self._read(self.q.history, {"seq": seq})
            record["history"] = [_record(cursor, r) for r in cursor.fetchall()]
        return record

    def list_jobs(self, state=None, limit=50, offset=0):
        """Job records, newest first, optionally of one state."""
        statement = self.q.list_jobs_in_state if state else self.q.list_jobs
        cursor = self._read(statement, {"state": state, "limit": limit, "offset": offset})
        return [_record(cursor, row) for row in cursor.fetchall()]

    def counts(self):
        """The number of jobs in each state (every state present, zeros included)."""
        result = dict.fromkeys(STATES, 0)
        for state, count in self._read(self.q.counts):
            result[state] = count
        return result

    def status(self, now=None):
        """The object `status --json` prints: job counts and the live workers."""
        return {"jobs": self.counts(), "workers": self.live_workers(now), "paused": self.paused_since() is not None}

    # ---- the dead letter queue -------------------------------------------------------

    def retry_dead(self, job_id, now=None):
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
            cursor = connection.execute(self.q.retry_dead, {"now": now, "id": job_id})
            row = cursor.fetchone()
            if row is not None:
                self._wake(connection)
                return _record(cursor, row)
            found = connection.execute(self.q.state_of, {"id": job_id}).fetchone()
        if found is None:
            raise JobNotFound(job_id)
        raise WrongState(f"job '{job_id}' is {found[0]}, not dead: only dead jobs can be retried")

    def retry_all_dead(self, now=None):
        """Move every dead job back to pending with attempts 0 (as retry_dead does); return how many."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            self._wake(connection)
            retried = connection.execute(self.q.retry_all_dead, {"now": now}).rowcount
            # Jobs waiting for a cancelled one can never run: dead again, naming it (and their dependents).
            while doomed := connection.execute(self.q.doomed_dependents, {}).fetchall():
                seq, job_id, dependency, state = doomed[0]
                connection.execute(self.q.fail_job, {"seq": seq, "now": now,
                                                     "error": _dependency_error(dependency, state)})
                retried -= 1 + self._settle_dependents(connection, seq, job_id, "dead", now)
            return retried
