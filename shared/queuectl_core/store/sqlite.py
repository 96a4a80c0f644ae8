"""The SQLite backend: one file shared by every process on one host (containers sharing a volume too)."""

import sqlite3
from operator import itemgetter
from types import SimpleNamespace

from ..errors import DatabaseUnusable
from ..location import database_location
from . import sqlite_schema as schema
from .base import Store
from .enqueue import BULK_COLUMNS, BULK_DEFAULTS
from .sql import (
    DUE_SCHEDULES,
    FLOW_ON,
    IS_PAUSED,
    JOB_COLUMNS,
    NOT_WAITING,
    PORTABLE,
    STATE_LIST,
    WAITING,
    oldest_waiting_levels,
)
from .sqlite_line import WritersLine

# The claim is ONE statement under the write lock: no other worker can take the same job,
# and the jobs_ready index serves both the filter and the order (no temp B-tree). Jobs still waiting
# for a dependency are skipped; while paused, or while flow control may hold a job back (FLOW_ON: the store then
# claims through the flow claim, flow.py), the LIMIT is 0, which SQLite checks before scanning (a WHERE term would
# be tested on every candidate: 15 ms per claim at 200k waiting jobs).
FLOW_ON_HERE = FLOW_ON.format(keyed="INDEXED BY jobs_keyed")
CLAIM = f"""
    UPDATE jobs SET state = 'processing', worker_id = :worker, lease_token = :token,
        lease_expires_at = :expires, updated_at = :now, run_count = run_count + 1
    WHERE seq = (
        SELECT seq FROM jobs INDEXED BY jobs_ready  -- without statistics the planner may pick another
        WHERE state IN ({WAITING}) AND run_at <= :now AND {NOT_WAITING}
        ORDER BY priority DESC, run_at, seq LIMIT CASE WHEN {IS_PAUSED} OR {FLOW_ON_HERE} THEN 0 ELSE 1 END)
    RETURNING seq, run_count, lease_token, {JOB_COLUMNS}
"""

# The same for up to :limit jobs at once (a worker's free slots).
CLAIM_BATCH = CLAIM.replace("WHERE seq = (", "WHERE seq IN (").replace("ELSE 1 END)", "ELSE :limit END)")

# Bulk enqueue of at least this many jobs stages them in a temporary table first (see SqliteStore._stage_jobs).
STAGE_MIN_JOBS = 5_000
BULK_REQUIRED = ("id", "command", "max_retries", "priority", "run_at")  # the BULK_COLUMNS every job has a value for
BULK_CACHE_KIB = 64 * 1024  # SQLite's page cache while a staged bulk enqueue is copied in (default: 2 MiB)

SQL = SimpleNamespace(
    **PORTABLE,
    claim=CLAIM,
    claim_batch=CLAIM_BATCH,
    arrays=False,  # several rows at once as a VALUES list (BatchesMixin._batch)
    heartbeat=None,  # as turn: a heartbeat is a transaction of several statements (RunsMixin._beat)
    turn=None,  # no data-modifying WITH: a worker's turn is a transaction of several statements (batches.py)
    oldest_waiting_levels=oldest_waiting_levels("INDEXED BY jobs_ready"),
    # Kept by triggers and by count_new_jobs in the enqueue transactions (migration 2).
    counts="SELECT state, sum(n) FROM job_counts GROUP BY state",
    queue_counts="SELECT queue, state, n FROM job_counts",
    count_new_jobs="UPDATE job_counts SET n = n + :n WHERE queue = :queue AND state = 'pending'",
    # The counter rows of a queue, before its first job is counted (the triggers update rows, never add them).
    add_queue_counts=("INSERT OR IGNORE INTO job_counts (queue, state, n) VALUES "
                      + ", ".join(f"(:queue, '{state}', 0)" for state in STATE_LIST)),
    flow_on=f"SELECT {FLOW_ON_HERE}",
    lock_queues=None,  # BEGIN IMMEDIATE holds the only write lock already
    queue_row_locked=PORTABLE["queue_row"],
    tag_match="instr(tags, :tag_json) > 0",
    # The flow claim's dialect (flow.py): the index each scan must use, no row locks (the write lock is the
    # database's), and a condition tested once per statement put in the LIMIT, which SQLite checks before scanning.
    flow_dialect="sqlite",
    ready_index="INDEXED BY jobs_ready",
    queue_index="INDEXED BY jobs_queue_ready",
    # A dependency's state, read under the write lock that BEGIN IMMEDIATE holds already.
    dependency="SELECT seq, state FROM jobs WHERE id = :id",
    wake=None,  # writers need not say anything: inotify sees the database's files change
    like="LIKE",  # ignores ASCII case in SQLite
    dialect=lambda statement: statement,
    due_schedules=DUE_SCHEDULES,  # BEGIN IMMEDIATE holds the write lock: no other worker fires meanwhile
)


class SqliteStore(Store):
    """A queue in one SQLite file; safe to use from many processes at once."""

    q = SQL
    _driver_error = sqlite3.Error
    _integrity_error = sqlite3.IntegrityError

    def __init__(self, location=None, wait_seconds=None):
        self.path = self.location = database_location(location)
        self.connection = schema.connect(self.path, wait_seconds or schema.BUSY_TIMEOUT_SECONDS)
        self._writers_line = None  # a WritersLine once line_up_writers() was called
        self._transaction_context = _Transaction(self)
        self._apply_durability()

    def close(self):
        """Close the connection."""
        self.connection.close()
        if self._writers_line is not None:
            self._writers_line.close()
            self._writers_line = None

    def line_up_writers(self):
        """Have write transactions wait in line on flock(2) (see sqlite_line): workers only; a command or a request
        keeps SQLite's own wait and its 30 s limit."""
        self._writers_line = WritersLine(self.path)

    def check_writable(self):
        """Commit a write that changes nothing visible; a read-only file fails it (with SQLITE_READONLY) only at
        the commit: opening and BEGIN IMMEDIATE succeed."""
        try:
            with self._transaction() as connection:
                connection.execute("INSERT INTO settings (name, value) VALUES ('queuectl-write-probe', '0')")
                connection.execute("DELETE FROM settings WHERE name = 'queuectl-write-probe'")
        except self.Error as error:
            cause = error.__cause__
            if getattr(cause, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_READONLY:
                raise DatabaseUnusable(
                    f"database {self.path} is read-only: {cause}{schema.unwritable_hint(self.path)}") from None

    def _apply_durability(self):
        try:
            self._apply_settings(self.get_settings())
        except self.Error as error:  # e.g. another program's database that merely has a version
            self.connection.close()
            raise DatabaseUnusable(f"database {self.path} is unusable: {error.__cause__}") from None

    def _apply_settings(self, settings):
        # Also called with each heartbeat's settings: a running worker used to keep the durability it started
        # with, so `config set durability full` did not reach the processes doing most of the commits.
        durability = settings["durability"]
        if durability != getattr(self, "_durability", "normal"):
            self.connection.execute("PRAGMA synchronous=FULL" if durability == "full" else "PRAGMA synchronous=NORMAL")
        self._durability = durability

    def _transaction(self):
        return self._transaction_context

    def _read(self, statement, params=None):
        try:
            return self.connection.execute(statement, params or {})
        except sqlite3.Error as error:
            translated = self._translation_of(error)
            if translated:
                raise translated from error
            raise

    def _insert_jobs(self, connection, rows, now, progress):
        statement = (f"INSERT INTO jobs ({', '.join(BULK_COLUMNS)}, created_at, updated_at, state)"
                     f" VALUES ({', '.join('?' * len(BULK_COLUMNS))}, ?, ?, 'pending')")
        for start in range(0, len(rows), 10_000):
            chunk = rows[start: start + 10_000]
            connection.executemany(statement, [row + (now, now) for row in chunk])
            if progress:
                progress(len(chunk))

    def _stage_jobs(self, rows, progress):
        # Large batches go through a temporary table of this connection, which needs no lock on the database:
        # the write lock is then held for one INSERT ... SELECT (measured on 2 busy cores: 300k jobs held it 3.5 s
        # instead of 11 s). Small batches are quicker inserted directly.
        if len(rows) < STAGE_MIN_JOBS:
            return False
        # Only the columns some row has a value for are staged (the others stay NULL, their default): binding
        # the four usually-NULL ones took a third of the staging time.
        kept = [index for index, column in enumerate(BULK_COLUMNS) if column in BULK_REQUIRED
                or list(map(itemgetter(index), rows)).count(BULK_DEFAULTS.get(column)) < len(rows)]
        columns = ", ".join(BULK_COLUMNS[index] for index in kept)
        self._insert_staged = (
            f"INSERT INTO jobs (state, created_at, updated_at, {columns})"
            f" SELECT 'pending', :now, :now, {columns} FROM temp.queuectl_staged ORDER BY rowid"
        )  # ORDER BY rowid: the lines' order is the enqueue order (seq)
        stage = f"INSERT INTO temp.queuectl_staged VALUES ({', '.join('?' * len(kept))})"
        pick = None if len(kept) == len(BULK_COLUMNS) else itemgetter(*kept)
        self.connection.execute("BEGIN")  # temp tables only: no lock on the database itself
        try:
            self.connection.execute("DROP TABLE IF EXISTS temp.queuectl_staged")
            self.connection.execute(f"CREATE TEMP TABLE queuectl_staged ({columns})")
            for start in range(0, len(rows), 10_000):
                chunk = rows[start: start + 10_000]
                self.connection.executemany(stage, chunk if pick is None else map(pick, chunk))
                if progress:
                    progress(len(chunk))
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")
        return True

    def _insert_staged_jobs(self, connection, now):
        # A larger page cache for the copy, which holds the write lock: the jobs.id index takes the new random ids
        # all over its pages (100k jobs: 0.13 s instead of 0.16 s, measured).
        cache_size = connection.execute("PRAGMA cache_size").fetchone()[0]
        connection.execute(f"PRAGMA cache_size = {-BULK_CACHE_KIB}")
        try:
            connection.execute(self._insert_staged, {"now": now})
        finally:
            connection.execute(f"PRAGMA cache_size = {int(cache_size)}")
            self.connection.execute("DELETE FROM temp.queuectl_staged")

    def _unstage_keys(self, connection, keys):
        for start in range(0, len(keys), 500):
            chunk = keys[start: start + 500]
            self.connection.execute(
                f"DELETE FROM temp.queuectl_staged WHERE unique_key IN ({', '.join('?' * len(chunk))})", chunk)

    def _execute_many(self, connection, statement, rows):
        connection.executemany(statement, rows)

    def _after_copy(self, connection):
        connection.execute("DELETE FROM job_counts")
        connection.execute("INSERT INTO job_counts (queue, state, n) SELECT queue, state, count(*) FROM jobs"
                           " GROUP BY queue, state")
        for (queue,) in connection.execute("SELECT DISTINCT queue FROM job_counts").fetchall() + [("default",)]:
            connection.execute(self.q.add_queue_counts, {"queue": queue})

    def _ids_present(self, ids):
        marks = ",".join("?" * len(ids))
        return {row[0] for row in self.connection.execute(f"SELECT id FROM jobs WHERE id IN ({marks})", ids)}

    def change_watcher(self):
        """inotify on the database's directory (a plain sleep where inotify is missing)."""
        from .sqlite_watch import ChangeWatcher  # ctypes: only workers wait, one-shot CLI commands need not load it

        return ChangeWatcher(self.path)


class _Transaction:
    """A write transaction of a SqliteStore: BEGIN IMMEDIATE takes the write lock up front (in the writers' line when
    the store stands in one), COMMIT on success, ROLLBACK on an error or a failed COMMIT; the driver's errors leave as
    the store's own. A class, not generators: a busy worker opens two per job, and each generator context manager
    cost ~1.5 us (measured). Not reentrant: a store's transactions never nest."""

    __slots__ = ("_store", "_line")

    def __init__(self, store):
        self._store = store
        self._line = None

    def __enter__(self):
        store = self._store
        line = store._writers_line
        self._line = line if line is not None and line.enter() else None
        try:
            store.connection.execute("BEGIN IMMEDIATE")
        except BaseException as error:
            self._leave_line()
            self._raise_translated(error)
        return store.connection

    def __exit__(self, kind, error, traceback):
        connection = self._store.connection
        raised_inside = error is not None
        try:
            if not raised_inside:
                try:
                    connection.execute("COMMIT")
                    return False
                except BaseException as failed:
                    error = failed
            if connection.in_transaction:  # a failed COMMIT (disk full, I/O error) leaves the transaction open
                connection.execute("ROLLBACK")
        finally:
            self._leave_line()
        translated = self._store._translation_of(error)
        if translated:
            raise translated from error
        if raised_inside:
            return False  # the body's own error goes on as it is
        raise error

    def _leave_line(self):
        if self._line is not None:
            self._line.leave()
            self._line = None

    def _raise_translated(self, error):
        translated = self._store._translation_of(error)
        if translated:
            raise translated from error
        raise error
