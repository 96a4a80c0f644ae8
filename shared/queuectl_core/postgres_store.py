"""The PostgreSQL backend: workers on many hosts against one database server.

Imported only for a postgresql:// URL, so the rest of queuectl needs no psycopg. The claim uses
FOR UPDATE SKIP LOCKED; enqueues NOTIFY the channel that idle workers LISTEN on.
"""

from contextlib import contextmanager
from types import SimpleNamespace

import psycopg

from .errors import DatabaseUnusable
from .queries import IS_PAUSED, JOB_COLUMNS, NOT_WAITING, PORTABLE, to_pyformat
from .store_base import BULK_COLUMNS, Store

CHANNEL = "queuectl_jobs"
_MIGRATION_LOCK = 0x71756575  # pg_advisory_xact_lock key: "queu"
# Counter slots per state (see migration 4): more than the transactions that write jobs at once, or some wait.
COUNT_SLOTS = 64
COUNT_SLOT_LOCK = 0x636E74  # first key of the two-key advisory locks that reserve a slot: "cnt"

MIGRATIONS = (
    """
    CREATE TABLE jobs (
        seq BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        command TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_retries INTEGER NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        run_at BIGINT NOT NULL,
        timeout DOUBLE PRECISION,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        last_error TEXT,
        exit_code INTEGER,
        worker_id TEXT,
        run_count INTEGER NOT NULL DEFAULT 0,
        lease_token TEXT,
        lease_expires_at BIGINT
    );
    CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, seq) WHERE state IN ('pending', 'failed');
    CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'processing';
    CREATE INDEX jobs_by_state ON jobs (state, seq);
    CREATE TABLE runs (
        job_seq BIGINT NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        started_at BIGINT NOT NULL,
        finished_at BIGINT,
        exit_code INTEGER,
        error TEXT,
        worker_id TEXT NOT NULL,
        output TEXT,
        PRIMARY KEY (job_seq, attempt)
    );
    CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
    CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at BIGINT NOT NULL,
        heartbeat_at BIGINT NOT NULL,
        stop_requested INTEGER NOT NULL DEFAULT 0,
        stats TEXT
    )
    """,
    # 2: operator features, as SQLite's migration 3 (cancellation, dependencies, exit-code policies,
    # live output, purge/retention index); the column names match SQLite's, so `migrate` copies them.
    """
    ALTER TABLE jobs ADD COLUMN depends_on TEXT;
    ALTER TABLE jobs ADD COLUMN retry_on TEXT;
    ALTER TABLE jobs ADD COLUMN no_retry_on TEXT;
    ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN output_offset BIGINT NOT NULL DEFAULT 0;
    CREATE TABLE job_deps (
        job_seq BIGINT NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
        dep_seq BIGINT NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
        PRIMARY KEY (job_seq, dep_seq)
    );
    CREATE INDEX job_deps_by_dep ON job_deps (dep_seq);
    CREATE INDEX jobs_finished ON jobs (state, updated_at) WHERE state IN ('completed', 'dead', 'cancelled')
    """,
    # 3: as SQLite's 4: the index cost every completion (purge and retention walk jobs_by_state instead), and
    # a completed job frees its dependents' edges by trigger instead of one more round trip per job. (\073 is
    # ';' in the function's E'' string: migrate splits scripts on ';'.)
    """
    DROP INDEX IF EXISTS jobs_finished;
    CREATE FUNCTION queuectl_free_dependents() RETURNS trigger LANGUAGE plpgsql
        AS E'BEGIN DELETE FROM job_deps WHERE dep_seq = NEW.seq\\073 RETURN NULL\\073 END';
    CREATE TRIGGER job_deps_done AFTER UPDATE OF state ON jobs FOR EACH ROW WHEN (NEW.state = 'completed')
        EXECUTE FUNCTION queuectl_free_dependents()
    """,
    # 4: the number of jobs per state, as SQLite's job_counts (its migration 2), so that status, /api/v1/stats and
    # /metrics read a few hundred rows instead of counting 1M jobs (70-280 ms). One counter row per state would
    # make every worker's claim and finish wait for the others' commits on that row: each state has COUNT_SLOTS
    # rows instead, and a transaction adds to the rows of one slot that no running transaction holds (a try-lock
    # picks it), so counting never makes writers wait (a slot may go negative: counts are sums over slots).
    # State changes are counted by a row trigger, deletions (purge, retention: many rows at once) by a
    # statement trigger over the deleted rows, new jobs by the store's enqueue paths once per transaction
    # (SQL.count_new_jobs: an insert trigger would cost bulk enqueue). The table lock taken by CREATE TRIGGER
    # (before the first count) keeps writers out until this commits, so the counts start exact.
    f"""
    CREATE TABLE job_counts (state TEXT NOT NULL, slot INTEGER NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (state, slot));
    CREATE FUNCTION queuectl_count_slot() RETURNS integer LANGUAGE plpgsql AS E'
        DECLARE home integer := pg_backend_pid() % {COUNT_SLOTS}\\073
        BEGIN
            FOR step IN 0..{COUNT_SLOTS - 1} LOOP
                IF pg_try_advisory_xact_lock({COUNT_SLOT_LOCK}, (home + step) % {COUNT_SLOTS}) THEN
                    RETURN (home + step) % {COUNT_SLOTS}\\073
                END IF\\073
            END LOOP\\073
            PERFORM pg_advisory_xact_lock({COUNT_SLOT_LOCK}, home)\\073  -- every slot busy: wait for ours
            RETURN home\\073
        END';
    CREATE FUNCTION queuectl_count_state_change() RETURNS trigger LANGUAGE plpgsql AS E'
        DECLARE chosen integer := queuectl_count_slot()\\073
        BEGIN
            INSERT INTO job_counts (state, slot, n) VALUES (OLD.state, chosen, -1), (NEW.state, chosen, 1)
            ON CONFLICT (state, slot) DO UPDATE SET n = job_counts.n + excluded.n\\073
            RETURN NULL\\073
        END';
    CREATE FUNCTION queuectl_count_deleted() RETURNS trigger LANGUAGE plpgsql AS E'
        BEGIN
            INSERT INTO job_counts (state, slot, n)
            SELECT state, queuectl_count_slot(), -count(*) FROM deleted GROUP BY state
            ON CONFLICT (state, slot) DO UPDATE SET n = job_counts.n + excluded.n\\073
            RETURN NULL\\073
        END';
    CREATE TRIGGER job_counts_update AFTER UPDATE OF state ON jobs FOR EACH ROW
        WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION queuectl_count_state_change();
    CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT
        EXECUTE FUNCTION queuectl_count_deleted();
    INSERT INTO job_counts (state, slot, n) SELECT state, 0, count(*) FROM jobs GROUP BY state
    """,
)

# SKIP LOCKED: concurrent claimers pass over a row another transaction is taking instead of waiting.
CLAIM = f"""
    UPDATE jobs SET state = 'processing', worker_id = %(worker)s, lease_token = %(token)s,
        lease_expires_at = %(expires)s, updated_at = %(now)s, run_count = run_count + 1
    WHERE seq = (
        SELECT seq FROM jobs WHERE state IN ('pending', 'failed') AND run_at <= %(now)s AND {NOT_WAITING}
            AND NOT {IS_PAUSED}  -- uncorrelated: a one-time filter, checked before any row
        ORDER BY priority DESC, run_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING seq, run_count, lease_token, {JOB_COLUMNS}
"""

SQL = SimpleNamespace(
    **{name: to_pyformat(statement) for name, statement in PORTABLE.items()},
    claim=CLAIM,
    # Kept by triggers and by count_new_jobs in the enqueue transactions (migration 4), one row per state and slot.
    counts="SELECT state, sum(n)::bigint FROM job_counts GROUP BY state",
    count_new_jobs=("INSERT INTO job_counts (state, slot, n) VALUES ('pending', queuectl_count_slot(), %(n)s)"
                    " ON CONFLICT (state, slot) DO UPDATE SET n = job_counts.n + excluded.n"),
    # FOR SHARE: a dependency cannot finish between this read and the commit of its new dependent's edge.
    dependency="SELECT seq, state FROM jobs WHERE id = %(id)s FOR SHARE",
    wake=f"SELECT pg_notify('{CHANNEL}', '')",  # delivered at commit, to every LISTENing worker
    like="ILIKE",
    dialect=to_pyformat,
)


def connect(url):
    """An autocommit connection (transactions are explicit), with the schema migrated."""
    try:
        connection = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as error:
        raise DatabaseUnusable(f"database {_safe(url)} is unusable: {_first_line(error)}") from None
    try:
        migrate(connection)
    except psycopg.Error as error:
        connection.close()
        raise DatabaseUnusable(f"database {_safe(url)} is unusable: {_first_line(error)}") from None
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

        connect(url).close()  # one clear error for an unusable database, and the schema migrated once
        pool = ConnectionPool(url, kwargs={"autocommit": True}, min_size=1, max_size=POOL_SIZE, open=True,
                              check=ConnectionPool.check_connection)
        _pools[url] = pool
    return pool


def migrate(connection):
    """Bring the schema up to date, under an advisory lock so that many starting workers don't race."""
    if _version(connection) >= len(MIGRATIONS):
        return
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        connection.execute("CREATE TABLE IF NOT EXISTS queuectl_schema (version INTEGER NOT NULL)")
        row = connection.execute("SELECT max(version) FROM queuectl_schema").fetchone()
        version = row[0] or 0
        for script in MIGRATIONS[version:]:
            for statement in script.split(";"):
                if statement.strip():
                    connection.execute(statement)
        connection.execute("DELETE FROM queuectl_schema")
        connection.execute("INSERT INTO queuectl_schema (version) VALUES (%s)", (len(MIGRATIONS),))


def _version(connection):
    exists = connection.execute("SELECT to_regclass('queuectl_schema') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    return connection.execute("SELECT coalesce(max(version), 0) FROM queuectl_schema").fetchone()[0]


class PostgresStore(Store):
    """A queue in a PostgreSQL database: workers on many hosts share it safely."""

    Error = psycopg.Error
    IntegrityError = psycopg.IntegrityError
    q = SQL

    def __init__(self, url, pooled=False):
        self.url = url
        self.location = _safe(url)
        self._pool = _pool(url) if pooled else None
        if self._pool is None:
            self.connection = connect(url)
            return
        try:
            self.connection = self._pool.getconn(timeout=POOL_WAIT_SECONDS)
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
            self.connection = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        return self.connection

    @contextmanager
    def _transaction(self):
        with self._live().transaction():
            yield self.connection

    def _read(self, statement, params=None):
        return self._live().execute(statement, params or {})

    def _insert_jobs(self, connection, rows, now, progress):
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

    def _after_copy(self, connection):
        # Rows came in with their own seq: move the sequence past them.
        connection.execute("SELECT setval(pg_get_serial_sequence('jobs', 'seq'), coalesce(max(seq), 0) + 1, false)"
                           " FROM jobs")
        # Copied rows are not counted by the enqueue paths: count them all again. SHARE mode waits for every other
        # writer of jobs to commit and keeps them out until this commits, so none of their counts is lost.
        connection.execute("LOCK TABLE jobs IN SHARE MODE")
        connection.execute("DELETE FROM job_counts")
        connection.execute("INSERT INTO job_counts (state, slot, n) SELECT state, 0, count(*) FROM jobs GROUP BY state")

    def _ids_present(self, ids):
        return {row[0] for row in self.connection.execute("SELECT id FROM jobs WHERE id = ANY(%s)", (ids,))}

    def change_watcher(self):
        """LISTEN on the jobs channel: a NOTIFY from any host wakes the waiting worker at once."""
        return NotifyWatcher(self.url)


class NotifyWatcher:
    """A dedicated connection that LISTENs; readable when a NOTIFY arrived."""

    works = True

    def __init__(self, url):
        self._url = url
        self._listen()

    def _listen(self):
        self._connection = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
        self._connection.execute(f"LISTEN {CHANNEL}")

    def fileno(self):
        """The connection's socket (listening again on a new connection if the server dropped the old one)."""
        if self._connection.closed:
            self._listen()
        return self._connection.fileno()

    def drain(self):
        """Consume pending notifications (without blocking); True if there was one, or if the connection had
        dropped (notifications sent meanwhile are lost: the caller looks at the queue once)."""
        if self._connection.closed:
            self._listen()
            return True
        connection = self._connection.pgconn
        connection.consume_input()
        changed = False
        while connection.notifies() is not None:
            changed = True
        return changed

    def close(self):
        """Close the listening connection."""
        self._connection.close()


def _safe(url):
    """The URL without its password, for messages and logs."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if at and ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":***"
    return f"{scheme}://{credentials}{at}{host}"


def _first_line(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
