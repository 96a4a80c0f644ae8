"""The SQLite store: every SQL statement of queuectl lives in this module."""

import json
import os
import sqlite3
from dataclasses import dataclass

from . import db
from . import settings as settings_module
from .errors import DatabaseUnusable, DuplicateJob, InvalidInput, JobNotFound, WrongState
from .timeutil import now_ms, to_iso
from .transitions import LOST, Outcome, decide

JOB_COLUMNS = (
    "id, command, state, attempts, max_retries, priority, run_at, timeout,"
    " created_at, updated_at, last_error, exit_code, worker_id"
)
_TIME_FIELDS = ("run_at", "created_at", "updated_at")
_INSERT_JOB = (
    "INSERT INTO jobs (id, command, state, max_retries, priority, run_at, timeout, created_at, updated_at)"
    " VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)"
)
# Every transaction that runs _INSERT_JOB counts its new jobs too (triggers count the other changes).
_COUNT_NEW_JOBS = "UPDATE job_counts SET n = n + ? WHERE state = 'pending'"
# The claim is ONE statement under the write lock: no other worker can take the same job,
# and the jobs_ready index serves both the filter and the order.
_CLAIM = f"""
    UPDATE jobs SET state = 'processing', worker_id = :worker, lease_token = :token,
        lease_expires_at = :expires, updated_at = :now, run_count = run_count + 1
    WHERE seq = (
        SELECT seq FROM jobs INDEXED BY jobs_ready  -- without statistics the planner may pick another
        WHERE state IN ('pending', 'failed') AND run_at <= :now
        ORDER BY priority DESC, run_at, seq LIMIT 1)
    RETURNING seq, run_count, lease_token, {JOB_COLUMNS}
"""


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


def new_job_id():
    """A random job id (64 bits, so collisions are negligible even at millions of jobs)."""
    return os.urandom(8).hex()  # what secrets.token_hex(8) does, without importing hmac/hashlib at start


def _new_job_ids(count):
    """`count` random job ids like new_job_id's, from one read of the OS's random source (bulk enqueue)."""
    digits = os.urandom(8 * count).hex()
    return iter([digits[start: start + 16] for start in range(0, 16 * count, 16)])


class SqliteStore:
    """A queue in one SQLite file; safe to use from many processes at once."""

    # What a database failure (disk full, I/O error, lock wait exhausted) raises: callers that must
    # survive one, like the worker loop, catch this without knowing the backend.
    Error = sqlite3.Error

    def __init__(self, location=None):
        self.path = db.resolve_path(location)
        self.connection = db.connect(self.path)
        self._apply_durability()

    def close(self):
        """Close the connection."""
        self.connection.close()

    def _apply_durability(self):
        try:
            if self.get_settings()["durability"] == "full":
                self.connection.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as error:  # e.g. another program's database that merely has a version
            self.connection.close()
            raise DatabaseUnusable(f"database {self.path} is unusable: {error}") from None

    def _transaction(self):
        return db.transaction(self.connection)

    # ---- enqueue -------------------------------------------------------------------

    def enqueue(self, spec, now=None):
        """Store one checked JobSpec as a pending job and return its record."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            row = self._job_row(spec, now, self._default_max_retries(connection))
            try:
                connection.execute(_INSERT_JOB, row)
            except sqlite3.IntegrityError:
                raise DuplicateJob(row[0]) from None
            connection.execute(_COUNT_NEW_JOBS, (1,))
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
                for start in range(0, len(rows), 10_000):
                    chunk = rows[start: start + 10_000]
                    connection.executemany(_INSERT_JOB, chunk)
                    if progress:
                        progress(len(chunk))
                connection.execute(_COUNT_NEW_JOBS, (len(rows),))
        except sqlite3.IntegrityError:
            # Rolled back already; now find the first line whose id the database holds.
            raise self._first_duplicate(rows, numbered_specs) from None
        return [row[0] for row in rows]

    def _first_duplicate(self, rows, numbered_specs):
        for start in range(0, len(rows), 500):
            ids = [row[0] for row in rows[start: start + 500]]
            marks = ",".join("?" * len(ids))
            found = {r[0] for r in self.connection.execute(f"SELECT id FROM jobs WHERE id IN ({marks})", ids)}
            for index, job_id in enumerate(ids):
                if job_id in found:
                    return DuplicateJob(job_id, numbered_specs[start + index][0])
        return DuplicateJob("?")

    @staticmethod
    def _default_max_retries(connection):
        row = connection.execute("SELECT value FROM settings WHERE name = 'max_retries'").fetchone()
        return json.loads(row[0]) if row else settings_module.SETTINGS["max_retries"].default

    @staticmethod
    def _job_row(spec, now, default_max_retries, job_id=None):
        if spec.run_at_ms is not None:
            run_at = spec.run_at_ms
        else:
            run_at = now + (spec.delay_ms or 0)
        max_retries = default_max_retries if spec.max_retries is None else spec.max_retries
        job_id = job_id or spec.id or new_job_id()
        return (job_id, spec.command, max_retries, spec.priority, run_at, spec.timeout, now, now)

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
            cursor = connection.execute(_CLAIM, params)
            row = cursor.fetchone()
            if row is None:
                return None
            columns = [d[0] for d in cursor.description]
            seq, attempt, token = row[0], row[1], row[2]
            connection.execute(
                "INSERT INTO runs (job_seq, attempt, started_at, worker_id) VALUES (?, ?, ?, ?)",
                (seq, attempt, now, worker_id),
            )
        job = _to_record(dict(zip(columns[3:], row[3:], strict=False)))
        return Claim(seq=seq, attempt=attempt, token=token, job=job)

    def finish_run(self, claim, outcome, output, transition, now=None):
        """Record how a claimed run ended; False (and nothing written) if the lease was lost."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            updated = connection.execute(
                "UPDATE jobs SET state = ?, attempts = ?, run_at = ?, last_error = ?, exit_code = ?,"
                " updated_at = ?, lease_token = NULL, lease_expires_at = NULL"
                " WHERE seq = ? AND lease_token = ? AND state = 'processing'",
                (transition.state, transition.attempts, transition.run_at_ms, transition.last_error,
                 transition.exit_code, now, claim.seq, claim.token),
            ).rowcount
            if updated:
                connection.execute(
                    "UPDATE runs SET finished_at = ?, exit_code = ?, error = ?, output = ?"
                    " WHERE job_seq = ? AND attempt = ?",
                    (now, outcome.exit_code, outcome.error, output, claim.seq, claim.attempt),
                )
        return bool(updated)

    def heartbeat(self, worker_id, lease_seconds, claim=None, stats=None, now=None):
        """Mark the worker alive, renew its job's lease, and read its stop flag and the settings."""
        now = now_ms() if now is None else now
        lease_held = True
        with self._transaction() as connection:
            row = connection.execute(
                "UPDATE workers SET heartbeat_at = ?, stats = ? WHERE id = ? RETURNING stop_requested",
                (now, json.dumps(stats) if stats else None, worker_id),
            ).fetchone()
            if claim is not None:
                lease_held = connection.execute(
                    "UPDATE jobs SET lease_expires_at = ? WHERE seq = ? AND lease_token = ?"
                    " AND state = 'processing'",
                    (now + int(lease_seconds * 1000), claim.seq, claim.token),
                ).rowcount == 1
            # Forget workers that stopped heartbeating long ago (their jobs are reclaimed by lease).
            connection.execute(
                "DELETE FROM workers WHERE heartbeat_at < ?", (now - 2 * int(lease_seconds * 1000),)
            )
            current = self._settings(connection)
        return Heartbeat(stop_requested=bool(row and row[0]), lease_held=lease_held, settings=current)

    def reclaim_expired(self, settings, now=None, rng=None):
        """Hand back jobs whose lease expired (their worker was lost); return their ids.

        The lost run counts as a failed attempt, so a job that kills its worker every time
        ends in the dead letter queue instead of looping forever.
        """
        now = now_ms() if now is None else now
        expired_sql = "SELECT 1 FROM jobs WHERE state = 'processing' AND lease_expires_at < ? LIMIT 1"
        if self.connection.execute(expired_sql, (now,)).fetchone() is None:
            return []  # the common case, answered without taking the write lock
        reclaimed = []
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT seq, id, attempts, max_retries, run_count, worker_id FROM jobs"
                " WHERE state = 'processing' AND lease_expires_at < ?",
                (now,),
            ).fetchall()
            for seq, job_id, attempts, max_retries, run_count, worker_id in rows:
                error = f"worker lost: {worker_id} stopped renewing its lease"
                transition = decide(attempts, max_retries, Outcome(LOST, None, error), settings, now, rng)
                connection.execute(
                    "UPDATE jobs SET state = ?, attempts = ?, run_at = ?, last_error = ?, exit_code = NULL,"
                    " updated_at = ?, lease_token = NULL, lease_expires_at = NULL WHERE seq = ?",
                    (transition.state, transition.attempts, transition.run_at_ms, error, now, seq),
                )
                connection.execute(
                    "UPDATE runs SET finished_at = ?, error = ? WHERE job_seq = ? AND attempt = ?",
                    (now, error, seq, run_count),
                )
                reclaimed.append(job_id)
        return reclaimed

    def has_unfinished_jobs(self):
        """True while any job is pending, processing or failed (waiting for a retry)."""
        row = self.connection.execute(
            "SELECT 1 FROM jobs WHERE state IN ('pending', 'processing', 'failed') LIMIT 1"
        ).fetchone()
        return row is not None

    # ---- reading ---------------------------------------------------------------------

    def get_job(self, job_id, history=False):
        """One job's record, with its runs under 'history' when asked; JobNotFound otherwise."""
        cursor = self.connection.execute(f"SELECT seq, {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        row = cursor.fetchone()
        if row is None:
            raise JobNotFound(job_id)
        record = _record(cursor, row)
        seq = record.pop("seq")
        if history:
            cursor = self.connection.execute(
                "SELECT attempt, started_at, finished_at, exit_code, error, worker_id, output"
                " FROM runs WHERE job_seq = ? ORDER BY attempt",
                (seq,),
            )
            record["history"] = [_record(cursor, r) for r in cursor.fetchall()]
        return record

    def list_jobs(self, state=None, limit=50, offset=0):
        """Job records, newest first, optionally of one state."""
        where, params = ("WHERE state = ?", [state]) if state else ("", [])
        cursor = self.connection.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [_record(cursor, row) for row in cursor.fetchall()]

    def counts(self):
        """The number of jobs in each state (every state present, zeros included)."""
        result = {state: 0 for state in ("pending", "processing", "completed", "failed", "dead")}
        for state, count in self.connection.execute("SELECT state, n FROM job_counts"):  # kept by triggers
            result[state] = count
        return result

    def status(self, now=None):
        """The object `status --json` prints: job counts and the live workers."""
        return {"jobs": self.counts(), "workers": self.live_workers(now)}

    # ---- the dead letter queue -------------------------------------------------------

    def retry_dead(self, job_id, now=None):
        """Move a dead job back to pending with attempts 0 and return its record."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE jobs SET state = 'pending', attempts = 0, run_at = ?, updated_at = ?, worker_id = NULL"
                f" WHERE id = ? AND state = 'dead' RETURNING {JOB_COLUMNS}",
                (now, now, job_id),
            )
            row = cursor.fetchone()
            if row is not None:
                return _record(cursor, row)
            found = connection.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if found is None:
            raise JobNotFound(job_id)
        raise WrongState(f"job '{job_id}' is {found[0]}, not dead: only dead jobs can be retried")

    # ---- settings ----------------------------------------------------------------------

    def get_settings(self):
        """Every setting, stored values over defaults."""
        return self._settings(self.connection)

    @staticmethod
    def _settings(connection):
        values = settings_module.defaults()
        for name, value in connection.execute("SELECT name, value FROM settings"):
            if name in values:
                values[name] = json.loads(value)
        return values

    def set_setting(self, name, value):
        """Check and store one setting; InvalidInput (and nothing stored) when it is bad."""
        clean = settings_module.check(name, value)
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, json.dumps(clean)),
            )
        return clean

    # ---- the worker registry -------------------------------------------------------------

    def register_worker(self, worker_id, host, pid, now=None):
        """Add a live worker to the registry."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO workers (id, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)",
                (worker_id, host, pid, now, now),
            )

    def unregister_worker(self, worker_id):
        """Remove a worker that exits cleanly."""
        with self._transaction() as connection:
            connection.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    def live_workers(self, now=None):
        """Workers that heartbeated within lease_timeout, with their current job."""
        now = now_ms() if now is None else now
        lease_ms = int(self.get_settings()["lease_timeout"] * 1000)
        cursor = self.connection.execute(
            "SELECT w.id, w.host, w.pid, w.started_at, w.heartbeat_at, w.stop_requested, w.stats,"
            " j.id AS current_job, r.started_at AS current_job_started_at"
            " FROM workers w"
            " LEFT JOIN jobs j ON j.state = 'processing' AND j.worker_id = w.id"
            " LEFT JOIN runs r ON r.job_seq = j.seq AND r.attempt = j.run_count"
            " WHERE w.heartbeat_at >= ? ORDER BY w.started_at, w.id",
            (now - lease_ms,),
        )
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
            return connection.execute(
                "UPDATE workers SET stop_requested = 1 WHERE heartbeat_at >= ?", (now - lease_ms,)
            ).rowcount

    # ---- dashboard and API queries ----------------------------------------------------

    # Sort keys of search_jobs and their columns; `seq` (enqueue order) breaks ties so pages never overlap.
    JOB_SORTS = {
        "created_at": "seq", "updated_at": "updated_at", "run_at": "run_at", "priority": "priority",
        "attempts": "attempts", "state": "state", "id": "id", "command": "command",
    }
    # Upper bounds (seconds) of the run duration histogram that /metrics exports.
    RUN_DURATION_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600)
    # A run succeeded when the shell exited 0 and nothing (timeout, lost worker, stop) is recorded against it.
    _RUN_SUCCEEDED = "(exit_code IS 0 AND error IS NULL)"

    def ping(self):
        """Read the schema once; DatabaseUnusable when the database does not answer."""
        try:
            self.connection.execute("SELECT 1 FROM jobs LIMIT 1").fetchall()
        except sqlite3.Error as error:
            raise DatabaseUnusable(f"database {self.path} does not answer: {error}") from None
        return True

    def search_jobs(self, state=None, query=None, sort="created_at", descending=True, limit=50, offset=0):
        """One page of job records and the number of matching jobs in all.

        `query` matches a substring of the id or the command (case-insensitive for ASCII);
        `sort` is a key of JOB_SORTS; the default order is the contract's: newest first."""
        if sort not in self.JOB_SORTS:
            raise InvalidInput(f"sort must be one of {', '.join(self.JOB_SORTS)}, got {sort!r}")
        clauses, params = [], []
        if state:
            clauses.append("state = ?")
            params.append(state)
        if query:
            pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            clauses.append("(id LIKE ? ESCAPE '\\' OR command LIKE ? ESCAPE '\\')")
            params += [pattern, pattern]
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        direction = "DESC" if descending else "ASC"
        column = self.JOB_SORTS[sort]
        order = f"{column} {direction}" + (f", seq {direction}" if column != "seq" else "")
        total = self.connection.execute(f"SELECT count(*) FROM jobs {where}", params).fetchone()[0]
        cursor = self.connection.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY {order} LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [_record(cursor, row) for row in cursor.fetchall()], total

    def retry_all_dead(self, now=None):
        """Move every dead job back to pending with attempts 0 (as retry_dead does); return how many."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            return connection.execute(
                "UPDATE jobs SET state = 'pending', attempts = 0, run_at = ?, updated_at = ?, worker_id = NULL"
                " WHERE state = 'dead'",
                (now, now),
            ).rowcount

    def set_settings(self, values):
        """Check every (name, value) of `values`, then store them all in one transaction; return the clean ones.

        A bad one raises InvalidInput and nothing is stored."""
        clean = {name: settings_module.check(name, value) for name, value in values.items()}
        with self._transaction() as connection:
            connection.executemany(
                "INSERT INTO settings (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [(name, json.dumps(value)) for name, value in clean.items()],
            )
        return clean

    def throughput(self, minutes=60, now=None):
        """Runs finished per minute over the last `minutes` minutes, oldest first, the current minute last:
        [{'minute': ISO start of the minute, 'succeeded': n, 'failed': n}], every minute present."""
        now = now_ms() if now is None else now
        last = now // 60_000
        first = last - minutes + 1
        cursor = self.connection.execute(
            f"SELECT finished_at / 60000 AS minute, sum({self._RUN_SUCCEEDED}), count(*) FROM runs"
            " WHERE finished_at >= ? AND finished_at < ? GROUP BY minute",
            (first * 60_000, (last + 1) * 60_000),
        )
        found = {minute: (succeeded, total) for minute, succeeded, total in cursor.fetchall()}
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
            f"sum(finished_at - started_at <= {int(seconds * 1000)})" for seconds in self.RUN_DURATION_BUCKETS
        )
        row = self.connection.execute(
            f"SELECT count(*), sum({self._RUN_SUCCEEDED}), total(finished_at - started_at) / 1000.0, {bucket_sums}"
            " FROM runs WHERE finished_at IS NOT NULL"
        ).fetchone()
        finished, succeeded, duration_sum = row[0], row[1] or 0, row[2]
        buckets = [(seconds, count or 0) for seconds, count in zip(self.RUN_DURATION_BUCKETS, row[3:], strict=True)]
        oldest = self.connection.execute(
            "SELECT min(run_at) FROM jobs WHERE state IN ('pending', 'failed') AND run_at <= ?", (now,)
        ).fetchone()[0]
        return {
            "jobs": self.counts(),
            "runs": {"succeeded": succeeded, "failed": finished - succeeded},
            "durations": {"buckets": buckets, "count": finished, "sum": duration_sum},
            "workers": self.live_workers(now),
            "oldest_waiting_seconds": 0.0 if oldest is None else max(0.0, (now - oldest) / 1000),
        }


def open_store(location=None):
    """Open the queue named by `location` (a path or sqlite:/// URL), QUEUECTL_DB or the default."""
    return SqliteStore(location)


def _new_record(row):
    """The record of a job just stored from `row` (_INSERT_JOB's parameters), equal to what reading it
    back gives; a RETURNING clause would cost ~20 us of the ~90 us of an enqueue."""
    job_id, command, max_retries, priority, run_at, timeout, created_at, updated_at = row
    return _to_record({
        "id": job_id, "command": command, "state": "pending", "attempts": 0, "max_retries": max_retries,
        "priority": priority, "run_at": run_at,
        "timeout": None if timeout is None else float(timeout),  # the column is REAL
        "created_at": created_at, "updated_at": updated_at, "last_error": None, "exit_code": None,
        "worker_id": None,
    })


def _record(cursor, row):
    return _to_record(dict(zip([d[0] for d in cursor.description], row, strict=False)))


def _to_record(record):
    for field in (*_TIME_FIELDS, "started_at", "finished_at", "heartbeat_at", "current_job_started_at"):
        if field in record:
            record[field] = to_iso(record[field])
    return record

