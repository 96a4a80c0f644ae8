"""The queue's operations, the same on every backend.

A backend (sqlite_store, postgres_store) supplies connections, transactions, its SQL statements
(`self.q`, a namespace of the portable queries plus its own) and the few things dialects do differently.
"""

import json
import os
from dataclasses import dataclass

from . import settings as settings_module
from .errors import (
    BadDependency,
    DatabaseUnusable,
    DuplicateJob,
    InvalidInput,
    JobNotFound,
    RunNotFound,
    WrongState,
)
from .queries import JOB_COLUMNS, PAUSED, RUN_SUCCEEDED
from .timeutil import now_ms, to_iso
from .transitions import CANCELLED, LOST, Outcome, decide

STATES = ("pending", "processing", "completed", "failed", "dead", "cancelled")
FINISHED_STATES = ("completed", "dead", "cancelled")  # what purge and retention may delete
RETENTION_STATES = ("completed", "cancelled")  # what the `retention` setting deletes (dead jobs wait for people)
CANCELLABLE_STATES = ("pending", "failed", "processing")
_TIME_FIELDS = ("run_at", "created_at", "updated_at", "started_at", "finished_at", "heartbeat_at",
                "current_job_started_at")


@dataclass(frozen=True)
class Claim:
    """A job a worker holds: what it needs to run it and to report back (fenced by `token`)."""

    seq: int
    attempt: int  # the run's number since the job was created
    token: str
    job: dict

    @property
    def id(self):
        return self.job["id"]


@dataclass(frozen=True)
class Heartbeat:
    """What a worker learns from its heartbeat."""

    stop_requested: bool
    lease_held: bool
    settings: dict
    cancel_requested: bool = False  # someone ran `queuectl cancel` on the job this worker runs


def new_job_id():
    """A random job id (64 bits, so collisions are negligible even at millions of jobs)."""
    return os.urandom(8).hex()  # what secrets.token_hex(8) does, without importing hmac/hashlib at start


def _new_job_ids(count):
    """`count` random job ids like new_job_id's, from one read of the OS's random source (bulk enqueue)."""
    digits = os.urandom(8 * count).hex()
    return iter([digits[start: start + 16] for start in range(0, 16 * count, 16)])


class Store:
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

    def _insert_jobs(self, connection, rows, progress):
        """Insert many job rows (dicts for q.insert_job) inside the open transaction."""
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
        try:
            with self._transaction() as connection:
                default_retries = self._default_max_retries(connection)
                fresh_ids = _new_job_ids(sum(1 for _, spec in numbered_specs if spec.id is None))
                rows = [self._job_row(spec, now, default_retries, spec.id or next(fresh_ids))
                        for _, spec in numbered_specs]
                self._insert_jobs(connection, rows, progress)
                self._count_new_jobs(connection, len(rows))
                waiting = [(line, row["id"], spec.after)
                           for (line, spec), row in zip(numbered_specs, rows, strict=True) if spec.after]
                if waiting:
                    lines = {row["id"]: line for (line, _), row in zip(numbered_specs, rows, strict=True)}
                    self._add_dependencies(connection, waiting, lines, now)
        except self.IntegrityError:
            # Rolled back already; now find the first line whose id the database holds.
            raise self._first_duplicate(rows, numbered_specs) from None
        return [row["id"] for row in rows]

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
        """After job `seq` reached `state`: a completed job frees its dependents' edges; a dead or
        cancelled one makes every job waiting for it dead, naming it (and so on down the chain).
        Returns how many jobs that made dead."""
        if state == "completed":
            connection.execute(self.q.dependency_completed, {"seq": seq})
            return 0
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
            ids = [row["id"] for row in rows[start: start + 500]]
            found = self._ids_present(ids)
            for index, job_id in enumerate(ids):
                if job_id in found:
                    return DuplicateJob(job_id, numbered_specs[start + index][0])
        return DuplicateJob("?")

    def _default_max_retries(self, connection):
        row = connection.execute(self.q.default_max_retries, {}).fetchone()
        return json.loads(row[0]) if row else settings_module.SETTINGS["max_retries"].default

    @staticmethod
    def _job_row(spec, now, default_max_retries, job_id=None):
        run_at = spec.run_at_ms if spec.run_at_ms is not None else now + (spec.delay_ms or 0)
        return {
            "id": job_id or spec.id or new_job_id(), "command": spec.command,
            "max_retries": default_max_retries if spec.max_retries is None else spec.max_retries,
            "priority": spec.priority, "run_at": run_at, "timeout": spec.timeout, "now": now,
            "depends_on": json.dumps(list(spec.after)) if spec.after else None,
            "retry_on": None if spec.retry_on is None else json.dumps(list(spec.retry_on)),
            "no_retry_on": None if spec.no_retry_on is None else json.dumps(list(spec.no_retry_on)),
        }

    # ---- claiming, leases and results ----------------------------------------------

    def claim_next(self, worker_id, lease_seconds, now=None):
        """Take the next due job for `worker_id` with a lease; None when nothing is due."""
        now = now_ms() if now is None else now
        params = {
            "worker": worker_id,
            "token": os.urandom(8).hex(),
            "expires": now + int(lease_seconds * 1000),
            "now": now,
        }
        with self._transaction() as connection:
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
        return Heartbeat(stop_requested=bool(row and row[0]), lease_held=lease_held, settings=current,
                         cancel_requested=cancel_requested)

    def reclaim_expired(self, settings, now=None, rng=None):
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

    # ---- cancel, pause, logs, wait, purge and retention ----------------------------------

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

    def purge(self, states, older_than_seconds=0, now=None, batch=5000):
        """Delete the jobs in `states` (of FINISHED_STATES) that last changed more than `older_than_seconds`
        ago, with their history, in transactions of `batch` jobs (workers keep claiming in between);
        return how many."""
        now = now_ms() if now is None else now
        before = now - int(older_than_seconds * 1000)
        deleted = 0
        for state in _finished(states):
            while True:
                with self._transaction() as connection:
                    count = connection.execute(self.q.delete_finished, {
                        "state": state, "before": before, "limit": batch}).rowcount
                deleted += count
                if count < batch:
                    break
        return deleted

    def apply_retention(self, settings, now=None, batch=500):
        """Delete up to `batch` completed or cancelled jobs older than the `retention` setting (0: keep
        them); what workers call with their heartbeat. A cheap indexed read first, so that the common
        case (nothing old enough) takes no write lock. Returns how many were deleted."""
        seconds = settings.get("retention") or 0
        if seconds <= 0:
            return 0
        now = now_ms() if now is None else now
        before = now - int(seconds * 1000)
        due = [state for state in RETENTION_STATES
               if self._read(self.q.any_finished, {"state": state, "before": before}).fetchone()]
        deleted = 0
        for state in due:
            with self._transaction() as connection:
                deleted += connection.execute(self.q.delete_finished, {
                    "state": state, "before": before, "limit": batch - deleted}).rowcount
            if deleted >= batch:
                break
        return deleted

    # ---- settings ----------------------------------------------------------------------

    def get_settings(self):
        """Every setting, stored values over defaults."""
        return self._settings(None)

    def _settings(self, connection):
        values = settings_module.defaults()
        rows = connection.execute(self.q.settings, {}) if connection else self._read(self.q.settings)
        for name, value in rows:
            if name in values:
                values[name] = json.loads(value)
        return values

    def set_setting(self, name, value):
        """Check and store one setting; InvalidInput (and nothing stored) when it is bad."""
        return self.set_settings({name: value})[name]

    def set_settings(self, values):
        """Check every (name, value) of `values`, then store them all in one transaction; return the clean ones.

        A bad one raises InvalidInput and nothing is stored."""
        clean = {name: settings_module.check(name, value) for name, value in values.items()}
        with self._transaction() as connection:
            for name, value in clean.items():
                connection.execute(self.q.set_setting, {"name": name, "value": json.dumps(value)})
        return clean

    # ---- the worker registry -------------------------------------------------------------

    def register_worker(self, worker_id, host, pid, now=None):
        """Add a live worker to the registry."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            connection.execute(self.q.register_worker, {"worker": worker_id, "host": host, "pid": pid, "now": now})

    def unregister_worker(self, worker_id):
        """Remove a worker that exits cleanly."""
        with self._transaction() as connection:
            connection.execute(self.q.unregister_worker, {"worker": worker_id})

    def live_workers(self, now=None):
        """Workers that heartbeated within lease_timeout, with their current job."""
        now = now_ms() if now is None else now
        lease_ms = int(self.get_settings()["lease_timeout"] * 1000)
        cursor = self._read(self.q.live_workers, {"since": now - lease_ms})
        workers = []
        for row in cursor.fetchall():
            record = _record(cursor, row)
            record["stop_requested"] = bool(record["stop_requested"])
            record["stats"] = json.loads(record["stats"]) if record["stats"] else None
            workers.append(record)
        return workers

    def request_stop(self, now=None):
        """Ask every worker alive now to finish its job and exit; return how many were asked.

        The flag is per worker, so workers that start later are not affected."""
        now = now_ms() if now is None else now
        lease_ms = int(self.get_settings()["lease_timeout"] * 1000)
        with self._transaction() as connection:
            return connection.execute(self.q.request_stop, {"since": now - lease_ms}).rowcount

    # ---- dashboard and API queries ----------------------------------------------------

    def ping(self):
        """Read the schema once; DatabaseUnusable when the database does not answer."""
        try:
            self._read(self.q.ping).fetchall()
        except self.Error as error:
            raise DatabaseUnusable(f"database {self.location} does not answer: {error}") from None
        return True

    def search_jobs(self, state=None, query=None, sort="created_at", descending=True, limit=50, offset=0):
        """One page of job records and the number of matching jobs in all.

        `query` matches a substring of the id or the command (ignoring ASCII case);
        `sort` is a key of JOB_SORTS; the default order is the contract's: newest first."""
        if sort not in self.JOB_SORTS:
            raise InvalidInput(f"sort must be one of {', '.join(self.JOB_SORTS)}, got {sort!r}")
        clauses, params = [], {"limit": limit, "offset": offset}
        if state:
            clauses.append("state = :state")
            params["state"] = state
        if query:
            params["pattern"] = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            like = self.q.like
            clauses.append(f"(id {like} :pattern ESCAPE '\\' OR command {like} :pattern ESCAPE '\\')")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        direction = "DESC" if descending else "ASC"
        column = self.JOB_SORTS[sort]
        order = f"{column} {direction}" + (f", seq {direction}" if column != "seq" else "")
        total = self._read(self.q.dialect(f"SELECT count(*) FROM jobs {where}"), params).fetchone()[0]
        cursor = self._read(
            self.q.dialect(f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY {order} LIMIT :limit OFFSET :offset"),
            params,
        )
        return [_record(cursor, row) for row in cursor.fetchall()], total

    def throughput(self, minutes=60, now=None):
        """Runs finished per minute over the last `minutes` minutes, oldest first, the current minute last:
        [{'minute': ISO start of the minute, 'succeeded': n, 'failed': n}], every minute present."""
        now = now_ms() if now is None else now
        last = now // 60_000
        first = last - minutes + 1
        cursor = self._read(self.q.throughput, {"first": first * 60_000, "end": (last + 1) * 60_000})
        found = {int(minute): (int(succeeded), total) for minute, succeeded, total in cursor.fetchall()}
        series = []
        for minute in range(first, last + 1):
            succeeded, total = found.get(minute, (0, 0))
            series.append({"minute": to_iso(minute * 60_000), "succeeded": succeeded, "failed": total - succeeded})
        return series

    def metrics_snapshot(self, now=None):
        """What /metrics exports, read at once from the database: job counts, finished runs by outcome,
        run durations (cumulative histogram buckets, count, sum), live workers, oldest waiting job's age."""
        now = now_ms() if now is None else now
        bucket_sums = ", ".join(
            f"sum(CASE WHEN finished_at - started_at <= {int(seconds * 1000)} THEN 1 ELSE 0 END)"
            for seconds in self.RUN_DURATION_BUCKETS
        )
        row = self._read(self.q.dialect(
            f"SELECT count(*), sum({RUN_SUCCEEDED}), coalesce(sum(finished_at - started_at), 0) / 1000.0,"
            f" {bucket_sums} FROM runs WHERE finished_at IS NOT NULL"
        )).fetchone()
        finished, succeeded, duration_sum = row[0], int(row[1] or 0), float(row[2])
        buckets = [(seconds, int(count or 0)) for seconds, count in zip(self.RUN_DURATION_BUCKETS, row[3:],
                                                                          strict=True)]
        oldest = self._read(self.q.oldest_waiting, {"now": now}).fetchone()[0]
        return {
            "jobs": self.counts(),
            "runs": {"succeeded": succeeded, "failed": finished - succeeded},
            "durations": {"buckets": buckets, "count": finished, "sum": duration_sum},
            "workers": self.live_workers(now),
            "oldest_waiting_seconds": 0.0 if oldest is None else max(0.0, (now - oldest) / 1000),
            "paused": self.paused_since() is not None,
        }


def _new_record(row):
    """The record of a job just stored from `row` (q.insert_job's parameters), equal to what reading it
    back gives; a RETURNING clause would cost ~20 us of the ~90 us of an enqueue."""
    return _to_record({
        "id": row["id"], "command": row["command"], "state": "pending", "attempts": 0,
        "max_retries": row["max_retries"], "priority": row["priority"], "run_at": row["run_at"],
        "timeout": None if row["timeout"] is None else float(row["timeout"]),  # the column is a float
        "created_at": row["now"], "updated_at": row["now"], "last_error": None, "exit_code": None,
        "worker_id": None, "depends_on": row["depends_on"], "retry_on": row["retry_on"],
        "no_retry_on": row["no_retry_on"],
    })


def _record(cursor, row):
    return _to_record(dict(zip([d[0] for d in cursor.description], row, strict=False)))


def _to_record(record):
    for field in _TIME_FIELDS:
        if field in record:
            record[field] = to_iso(record[field])
    if "depends_on" in record:  # a job record: its JSON lists as lists, depends_on named as the field 'after'
        after = record.pop("depends_on")
        for field in ("retry_on", "no_retry_on"):
            record[field] = None if record[field] is None else json.loads(record[field])
        record["after"] = json.loads(after) if after else []
    return record


def _finished(states):
    """`states` checked: only finished jobs may be deleted."""
    states = list(dict.fromkeys(states))
    wrong = [state for state in states if state not in FINISHED_STATES]
    if wrong or not states:
        raise InvalidInput(f"only finished jobs can be purged: state must be one of {', '.join(FINISHED_STATES)},"
                           f" got {wrong[0] if wrong else 'none'!r}")
    return states


def _dependency_error(job_id, state):
    """The error of a job that will never run because its dependency `job_id` ended in `state`."""
    return f"dependency '{job_id}' " + ("was cancelled" if state == "cancelled" else f"ended {state}")
