"""The PostgreSQL backend: workers on many hosts against one database server.

Imported only for a postgresql:// URL, so the rest of queuectl needs no psycopg. The claim uses
FOR UPDATE SKIP LOCKED; enqueues NOTIFY the channel that idle workers LISTEN on.
"""

from contextlib import contextmanager
from types import SimpleNamespace

import psycopg

from ..errors import DatabaseError, DatabaseUnusable
from . import postgres_bounds as bounded
from .base import Store
from .enqueue import BULK_COLUMNS
from .postgres_schema import CHANNEL, migrate
from .sql import (
    DUE_SCHEDULES,
    FINISH_JOBS,
    FINISH_RUNS,
    FLOW_ON,
    IS_PAUSED,
    JOB_COLUMNS,
    NOT_WAITING,
    PORTABLE,
    RENEW_LEASES,
    WAITING,
    oldest_waiting_levels,
    to_pyformat,
)

# SKIP LOCKED: concurrent claimers pass over a row another transaction is taking instead of waiting.
_CLAIM = f"""
    UPDATE jobs SET state = 'processing', worker_id = :worker, lease_token = :token,
        lease_expires_at = :expires, updated_at = :now, run_count = run_count + 1
    WHERE seq = (
        SELECT seq FROM jobs WHERE state IN ({WAITING}) AND run_at <= :now AND {NOT_WAITING}
            AND NOT {IS_PAUSED} AND NOT {FLOW_ON.format(keyed="")}  -- uncorrelated: one-time filters
        ORDER BY priority DESC, run_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING seq, run_count, lease_token, {JOB_COLUMNS}
"""
CLAIM = to_pyformat(_CLAIM)

# The same for up to :limit jobs at once (a worker's free slots): ARRAY() runs the locking scan once.
_CLAIM_BATCH = _CLAIM.replace("WHERE seq = (", "WHERE seq = ANY(ARRAY(").replace(
    "LIMIT 1 FOR UPDATE SKIP LOCKED)", "LIMIT :limit FOR UPDATE SKIP LOCKED))")
CLAIM_BATCH = to_pyformat(_CLAIM_BATCH)

# A worker's whole turn as one statement, which is its own transaction (batches.py): the results it brings (the
# rows of `v`: sql.RESULT_COLUMNS) end their jobs, each fenced by its own lease token, and their runs; up to
# :limit due jobs are claimed and their runs opened. One round trip instead of six. Every part reads the
# statement's one snapshot: the claim never takes a job this statement ends, nor the dependents it frees (the
# second column says whether it freed any: the worker claims again). The first column lists the seqs of the
# results taken; the third says, when fewer than :limit were claimed, whether flow control may hold jobs back
# (the plain claim takes none then: sql.FLOW_ON); the others are a claim's, NULL when none was (always a row).
TURN_ENDS = f""",
    ended AS ({FINISH_JOBS}
        RETURNING jobs.seq, v_state = 'completed' AND EXISTS (SELECT FROM job_deps WHERE dep_seq = jobs.seq) AS freed),
    closed AS ({FINISH_RUNS} JOIN ended ON ended.seq = v_seq WHERE runs.job_seq = v_seq AND runs.attempt = v_attempt)"""
TURN_CLAIMS = f"""
    claimed AS ({_CLAIM_BATCH}),
    opened AS (INSERT INTO runs (job_seq, attempt, started_at, worker_id) SELECT seq, run_count, :now, :worker
               FROM claimed)"""
_FLOW_HELD = f"CASE WHEN (SELECT count(*) FROM claimed) < :limit THEN {FLOW_ON.format(keyed='')} ELSE false END"
TURN_RESULT = (f"SELECT (SELECT array_agg(seq) FROM ended), (SELECT bool_or(freed) FROM ended), {_FLOW_HELD},"
               " claimed.* FROM (SELECT 1) AS one LEFT JOIN claimed ON true")
# The turn of a worker that brings no result: its claims only.
TURN_CLAIMS_ONLY = (f"WITH {TURN_CLAIMS} SELECT NULL::bigint[], false, {_FLOW_HELD}, claimed.*"
                    " FROM (SELECT 1) AS one LEFT JOIN claimed ON true")

# A worker's heartbeat as one statement, its own transaction (RunsMixin._beat_alone): the worker marked alive, its
# leases renewed (the rows of `v`; an empty `renewed` for an idle worker), workers silent for long forgotten (never
# itself: one statement changes a row once), and what the turn asks read from the same snapshot: the stop flag,
# whether the worker's row was there, the settings, the leases held and those asked to cancel, whether any lease
# expired, when the next schedule is due.
_BEAT = f""",
    beat AS (UPDATE workers SET heartbeat_at = :now, stats = :stats WHERE id = :worker RETURNING stop_requested),
    forgotten AS (DELETE FROM workers WHERE id IN (
        SELECT id FROM workers WHERE heartbeat_at < :before AND id <> :worker FOR UPDATE SKIP LOCKED))
    SELECT (SELECT stop_requested FROM beat), EXISTS (SELECT FROM beat),
        (SELECT json_agg(json_build_array(name, value)) FROM settings),
        (SELECT array_agg(seq) FROM renewed), (SELECT array_agg(seq) FROM renewed WHERE cancel_requested <> 0),
        EXISTS ({PORTABLE["any_expired"]}), ({PORTABLE["next_schedule_due"]})"""
HEARTBEAT = (f", renewed AS ({RENEW_LEASES})" + _BEAT,
             to_pyformat("WITH renewed AS (SELECT NULL::bigint AS seq, 0 AS cancel_requested WHERE false)" + _BEAT))

# A bulk enqueue of at least this many jobs refreshes the planner's statistics of jobs (_after_bulk_load).
ANALYZE_AFTER_JOBS = 10_000

# For the transaction of a bulk insert or a copy (postgres_bounds: statement_timeout is for everything else).
UNBOUNDED_STATEMENT = "SET LOCAL statement_timeout = 0"

SQL = SimpleNamespace(
    **{name: to_pyformat(statement) for name, statement in PORTABLE.items()
       if name not in ("expired", "forget_workers")},
    claim=CLAIM,
    claim_batch=CLAIM_BATCH,
    arrays=True,  # several rows at once as one array per column (BatchesMixin._batch)
    heartbeat=HEARTBEAT,
    # The jobs a worker's turns claimed under `tokens`, turns whose replies were lost (BatchesMixin._recover_claims),
    # their leases starting again now, as those of the claims the worker is about to start.
    recover_claims=("UPDATE jobs SET lease_expires_at = %(expires)s"
                    " WHERE lease_token = ANY(%(tokens)s) AND worker_id = %(worker)s AND state = 'processing'"
                    " RETURNING seq, run_count, lease_token, " + JOB_COLUMNS),
    run_outcome=("SELECT exit_code, error FROM runs"
                 " WHERE job_seq = %(seq)s AND attempt = %(attempt)s AND finished_at IS NOT NULL"),
    turn=(TURN_ENDS + "," + TURN_CLAIMS + " " + TURN_RESULT, to_pyformat(TURN_CLAIMS_ONLY)),
    oldest_waiting_levels=to_pyformat(oldest_waiting_levels()),
    # Rows another transaction holds are passed over, never waited for: a worker frozen in the middle of its
    # heartbeat (its job's or its own workers row locked) stalls nobody else's heartbeat; a skipped job is looked
    # at again at the next heartbeat. Locked, a job read as expired cannot be handed back or claimed by another
    # before this transaction ends (hand_back is fenced as well).
    expired=to_pyformat(PORTABLE["expired"]) + " FOR UPDATE SKIP LOCKED",
    forget_workers=("DELETE FROM workers WHERE id IN (SELECT id FROM workers WHERE heartbeat_at < %(before)s"
                    " FOR UPDATE SKIP LOCKED)"),
    # Kept by triggers and by count_new_jobs in the enqueue transactions (migration 4), one row per state and slot.
    counts="SELECT state, sum(n)::bigint FROM job_counts GROUP BY state",
    count_new_jobs=("INSERT INTO job_counts (queue, state, slot, n)"
                    " VALUES (%(queue)s, 'pending', queuectl_count_slot(), %(n)s)"
                    " ON CONFLICT (queue, state, slot) DO UPDATE SET n = job_counts.n + excluded.n"),
    add_queue_counts=None,  # the counting upserts add rows as needed
    queue_counts="SELECT queue, state, sum(n)::bigint FROM job_counts GROUP BY queue, state",
    # Waits for every transaction that writes jobs (claims among them) and keeps new ones out until commit.
    flow_on=f"SELECT {FLOW_ON.format(keyed='')}",
    lock_queues="LOCK TABLE jobs IN SHARE MODE",
    # The queue's row, locked: concurrent claims of its last slot wait here, and then read the latest version.
    queue_row_locked=to_pyformat(PORTABLE["queue_row"]) + " FOR UPDATE",
    tag_match="strpos(tags, :tag_json) > 0",  # portable style: search_jobs passes it through dialect
    # The flow claim's dialect (flow.py): SKIP LOCKED as in CLAIM; a condition on no column of the scanned rows is a
    # one-time filter, tested before any row; no index hints.
    flow_dialect="postgres",
    ready_index="",
    queue_index="",
    # FOR SHARE: a dependency cannot finish between this read and the commit of its new dependent's edge.
    dependency="SELECT seq, state FROM jobs WHERE id = %(id)s FOR SHARE",
    wake=f"SELECT pg_notify('{CHANNEL}', '')",  # delivered at commit, to every LISTENing worker
    like="ILIKE",
    dialect=to_pyformat,
    # A worker fires the schedules no other one is firing (SKIP LOCKED); a row locked and committed by another
    # is read again with its new next_run_at, which the WHERE then tests.
    due_schedules=to_pyformat(DUE_SCHEDULES) + " FOR UPDATE SKIP LOCKED",
)


def connect(url):
    """An autocommit connection (transactions are explicit), with the schema migrated and its waits bounded for
    the queue's lease_timeout (see postgres_bounds); returns (the connection, that lease_timeout)."""
    try:
        connection = _open(url, bounded.DEFAULT_LEASE)
    except psycopg.Error as error:
        raise DatabaseUnusable(f"database {_safe(url)} is unusable: {_first_line(error)}") from None
    try:
        migrate(connection)
        lease = bounded.stored_lease(connection)
        if lease != bounded.DEFAULT_LEASE:
            bounded.apply(connection, lease, url)
    except psycopg.Error as error:
        connection.close()
        raise DatabaseUnusable(f"database {_safe(url)} is unusable: {_first_line(error)}") from None
    return connection, lease


def _open(url, lease):
    """A new autocommit connection bounded for `lease` seconds (its TCP settings from the start)."""
    connection = psycopg.connect(url, autocommit=True, **bounded.connect_kwargs(url, lease))
    try:
        bounded.apply(connection, lease, url)
        # What one process repeats (a worker's turn and heartbeat) psycopg prepares at its sixth use; with the
        # default plan_cache_mode the server still planned the turn afresh at each call (its plans for the actual
        # values looked cheaper): 0.7-0.9 ms a time, at 1M waiting jobs more than the turn's own execution.
        # Generic plans are made once per connection. (The API's pooled connections keep the default.)
        connection.execute("SET plan_cache_mode = force_generic_plan")
    except BaseException:
        connection.close()
        raise
    return connection


POOL_SIZE = 8  # connections per process (a gunicorn worker serves one request at a time per thread)
POOL_WAIT_SECONDS = 10
_pools = {}


def _pool(url):
    """This process's connection pool for `url`, created (and the schema migrated) on first use.

    Created lazily, so that each process forked by gunicorn gets its own."""
    pool = _pools.get(url)
    if pool is None:
        from psycopg_pool import ConnectionPool

        connect(url)[0].close()  # one clear error for an unusable database, and the schema migrated once

        def configure(connection):  # each new connection of the pool: its waits bounded like any other
            bounded.apply(connection, bounded.stored_lease(connection), url)

        pool = ConnectionPool(url, kwargs={"autocommit": True, **bounded.connect_kwargs(url)}, min_size=1,
                              max_size=POOL_SIZE, open=True, configure=configure,
                              check=ConnectionPool.check_connection)
        _pools[url] = pool
    return pool


class PostgresStore(Store):
    """A queue in a PostgreSQL database: workers on many hosts share it safely."""

    q = SQL
    _split_flow_claims = True
    _driver_error = psycopg.Error
    _integrity_error = psycopg.IntegrityError
    # A value PostgreSQL cannot hold (a NUL byte in text: psycopg refuses it before sending) or a string too odd
    # for a column's type: bad input, not a failing database.
    _data_error = psycopg.DataError

    def __init__(self, url, pooled=False, wait_seconds=None):
        self.url = url
        self.location = _safe(url)
        self._pool = _pool(url) if pooled else None
        if self._pool is None:
            # _lease: the lease_timeout this connection's waits are bounded for (a heartbeat that reads another
            # bounds them again, and a reconnection keeps it).
            self.connection, self._lease = connect(url)
            return
        try:
            self.connection = self._pool.getconn(timeout=wait_seconds or POOL_WAIT_SECONDS)
        except Exception as error:  # psycopg_pool.PoolTimeout or a connection failure
            raise DatabaseUnusable(f"database {self.location} is unusable: {_first_line(error)}") from None

    def close(self):
        """Give the connection back to the pool, or close it."""
        if self._pool is not None:
            self._pool.putconn(self.connection)
        else:
            self.connection.close()

    def _live(self):
        """The connection, opened again if the server dropped it (a restart, a failover, an idle timeout): without
        this a worker failed every call from then on. A failed reconnection raises psycopg.Error like any database
        error, which the worker's loop retries."""
        if self.connection.closed and self._pool is None:
            self.connection = _open(self.url, self._lease)
        return self.connection

    def _apply_settings(self, settings):
        # Called with each heartbeat's settings: a new lease_timeout bounds this worker's waits at once.
        lease = settings["lease_timeout"]
        if self._pool is None and lease != self._lease:
            with self._translated():
                bounded.apply(self._live(), lease, self.url)
            self._lease = lease

    @contextmanager
    def _transaction(self):
        with self._translated(), self._live().transaction():
            yield self.connection

    def _alone(self, statement, params):
        """Run one statement as its own transaction (the connection autocommits); its cursor."""
        with self._translated():
            return self._live().execute(statement, params)

    def _read(self, statement, params=None):
        with self._translated():
            return self._live().execute(statement, params or {})

    def _insert_jobs(self, connection, rows, now, progress):
        connection.execute(UNBOUNDED_STATEMENT)  # a COPY of a million jobs takes longer than any request
        with connection.cursor() as cursor:
            with cursor.copy(
                f"COPY jobs (state, created_at, updated_at, {', '.join(BULK_COLUMNS)}) FROM STDIN"
            ) as copy:
                fixed = ("pending", now, now)
                for number, row in enumerate(rows, start=1):
                    copy.write_row(fixed + row)
                    if progress and number % 10_000 == 0:
                        progress(10_000)
        if progress and len(rows) % 10_000:
            progress(len(rows) % 10_000)

    def _execute_many(self, connection, statement, rows):
        with connection.cursor() as cursor:
            cursor.executemany(statement, rows)

    def _after_bulk_load(self, count):
        # The planner's statistics of jobs stay those of before the load until autovacuum's next ANALYZE (a minute
        # or more; never with autovacuum off). Meanwhile a claim may walk every waiting job: 21 ms a claim of ten
        # instead of 1.5 after 100,000 jobs came into a queue analyzed nearly empty (docs/performance.md). ANALYZE
        # samples at most 30,000 rows: tens of milliseconds, small beside the load itself.
        if count >= ANALYZE_AFTER_JOBS:
            try:
                with self._translated():
                    self._live().execute("ANALYZE jobs")
            except DatabaseError:
                pass  # the jobs are in; autovacuum analyzes them later (a role that may not ANALYZE, an outage)

    def _after_copy(self, connection):
        connection.execute(UNBOUNDED_STATEMENT)  # counting a whole copied queue
        # Rows came in with their own seq: move the sequences past them.
        for table in ("jobs", "audit"):
            connection.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'seq'), coalesce(max(seq), 0) + 1,"
                               f" false) FROM {table}")
        # Copied rows are not counted by the enqueue paths: count them all again. SHARE mode waits for every other
        # writer of jobs to commit and keeps them out until this commits, so none of their counts is lost.
        connection.execute("LOCK TABLE jobs IN SHARE MODE")
        connection.execute("DELETE FROM job_counts")
        connection.execute("INSERT INTO job_counts (queue, state, slot, n) SELECT queue, state, 0, count(*) FROM jobs"
                           " GROUP BY queue, state")

    def _ids_present(self, ids):
        return {row[0] for row in self.connection.execute("SELECT id FROM jobs WHERE id = ANY(%s)", (ids,))}

    def change_watcher(self):
        """LISTEN on the jobs channel: a NOTIFY from any host wakes the waiting worker at once. A store of its own
        (a worker's) listens on its one connection; a pooled one on a connection of the watcher's own."""
        from .postgres_watch import NotifyWatcher, SharedNotifyWatcher

        if self._pool is None:
            return SharedNotifyWatcher(self)
        return NotifyWatcher(self.url, bounded.DEFAULT_LEASE)


def _safe(url):
    """The URL without its password, for messages and logs."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if at and ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":***"
    return f"{scheme}://{credentials}{at}{host}"


def _first_line(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
