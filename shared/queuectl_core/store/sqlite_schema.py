"""The SQLite backend's connections, transactions, schema and migrations."""

import os
import sqlite3
import time
from contextlib import contextmanager

from ..errors import DatabaseUnusable
from .sql import RUN_DURATION_BUCKETS, run_bucket, run_succeeded, run_totals_of_finished_runs

_BUCKET_ROWS = len(RUN_DURATION_BUCKETS) + 1  # run_totals' rows: one per histogram bucket, one for longer runs
BUSY_TIMEOUT_SECONDS = 30  # contention waits (up to this long) instead of failing

# Each entry moves the schema one version up: (what it changes, its script), applied in order under one write lock.
# PostgreSQL's MIGRATIONS make the same changes under the same numbers (a test holds the two lists to that).
MIGRATIONS = (
    # 1: the jobs, their runs, the settings and the worker registry.
    ("jobs, runs, settings, workers", """
    CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY,              -- enqueue order
        id TEXT NOT NULL UNIQUE,
        command TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,  -- failed runs since created or retried from the DLQ
        max_retries INTEGER NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        run_at INTEGER NOT NULL,              -- all times: milliseconds since the epoch, UTC
        timeout REAL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        last_error TEXT,
        exit_code INTEGER,
        worker_id TEXT,
        run_count INTEGER NOT NULL DEFAULT 0, -- runs since created: the number of the latest run
        lease_token TEXT,                     -- fencing token of the current claim
        lease_expires_at INTEGER
    );
    -- Serves the claim's WHERE and ORDER BY together: no temp B-tree, cost flat in queue size.
    CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, seq) WHERE state IN ('pending', 'failed');
    CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'processing';
    CREATE INDEX jobs_by_state ON jobs (state, seq);
    CREATE TABLE runs (
        job_seq INTEGER NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
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
        started_at INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL,
        stop_requested INTEGER NOT NULL DEFAULT 0,
        stats TEXT                            -- JSON: CPU and memory, written with each heartbeat
    );
    """),
    # 2: operator features. Cancellation (a state and a flag the running job's worker reads with its
    # heartbeat), dependencies (job_deps holds only the edges still waiting: an edge goes when its
    # dependency completes, so the claim's NOT EXISTS is one primary-key probe), per-job exit-code
    # policies, live output (where the stored tail starts), and an index for purges and retention.
    ("operator features", """
    ALTER TABLE jobs ADD COLUMN depends_on TEXT;
    ALTER TABLE jobs ADD COLUMN retry_on TEXT;
    ALTER TABLE jobs ADD COLUMN no_retry_on TEXT;
    ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN output_offset INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE job_deps (
        job_seq INTEGER NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
        dep_seq INTEGER NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
        PRIMARY KEY (job_seq, dep_seq)
    ) WITHOUT ROWID;
    CREATE INDEX job_deps_by_dep ON job_deps (dep_seq);
    CREATE INDEX jobs_finished ON jobs (state, updated_at) WHERE state IN ('completed', 'dead', 'cancelled');
    """),
    # 3: per-job cost. jobs_finished cost every completion one more index page written (~25 us of ~190 us per
    # claim and completion, measured): purge and retention walk jobs_by_state in windows of seq instead. A
    # completed job frees its dependents' edges by trigger, inside the engine, instead of a statement per job.
    ("per-job cost", """
    DROP INDEX IF EXISTS jobs_finished;
    CREATE TRIGGER job_deps_done AFTER UPDATE OF state ON jobs WHEN NEW.state = 'completed' BEGIN
        DELETE FROM job_deps WHERE dep_seq = NEW.seq;
    END;
    """),
    # 4: the number of jobs per state, kept in the same transaction as each change, so that `status`,
    # /api/v1/stats and /metrics read five rows instead of counting 1M jobs (~100 ms). Triggers follow
    # state changes and deletions; new jobs are added by the store's enqueue paths, once per transaction
    # (a per-row insert trigger would halve the rate of bulk enqueue). Written so that it can run again over
    # the counters of a database numbered the former way (see LEGACY_NUMBERING).
    ("job counts", """
    CREATE TABLE IF NOT EXISTS job_counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    INSERT OR IGNORE INTO job_counts (state, n) VALUES ('pending', 0), ('processing', 0), ('completed', 0),
        ('failed', 0), ('dead', 0), ('cancelled', 0);
    UPDATE job_counts SET n = (SELECT count(*) FROM jobs WHERE jobs.state = job_counts.state);
    CREATE TRIGGER IF NOT EXISTS job_counts_update AFTER UPDATE OF state ON jobs WHEN OLD.state IS NOT NEW.state BEGIN
        UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;
        UPDATE job_counts SET n = n + 1 WHERE state = NEW.state;
    END;
    CREATE TRIGGER IF NOT EXISTS job_counts_delete AFTER DELETE ON jobs BEGIN
        UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;
    END;
    """),
    # 5: what /metrics says about finished runs (by outcome, the duration histogram), kept as totals instead of a
    # sum over every row of runs at each scrape (~0.5 s at 1M runs). One row per histogram bucket (sql.run_bucket),
    # added to by a trigger when a run gets its finished_at (finish_run, the hand-back of a lost worker's run),
    # inside the engine: no statement more for the worker. Totals since the start: deleting runs (purge,
    # retention) takes nothing off, as Prometheus counters never go down. Started from the runs there are.
    ("run totals", f"""
    CREATE TABLE run_totals (
        bucket INTEGER PRIMARY KEY,           -- index of sql.RUN_DURATION_BUCKETS; one past the last: longer
        succeeded INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        duration_ms INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    INSERT INTO run_totals (bucket, succeeded, failed, duration_ms) {run_totals_of_finished_runs()};
    INSERT OR IGNORE INTO run_totals (bucket) VALUES {", ".join(f"({n})" for n in range(_BUCKET_ROWS))};
    CREATE TRIGGER run_totals_finish AFTER UPDATE OF finished_at ON runs
    WHEN OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL BEGIN
        UPDATE run_totals SET succeeded = succeeded + {run_succeeded("NEW.")},
            failed = failed + 1 - {run_succeeded("NEW.")},
            duration_ms = duration_ms + NEW.finished_at - NEW.started_at
        WHERE bucket = {run_bucket("NEW.finished_at - NEW.started_at")};
    END;
    """),
    # 6: the audit log: every operator's action from the CLI or the API (cancel, retries, purges, pause, resume,
    # config set, worker stop, enqueue through the API), written by the store in the transaction of the action.
    # `at` is indexed for the retention sweep, which deletes old entries with the same setting as jobs.
    ("audit log", """
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,              -- the order of the entries
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,                  -- cli:USER@HOST or api:operator
        action TEXT NOT NULL,
        target TEXT,
        details TEXT                          -- JSON object
    );
    CREATE INDEX audit_at ON audit (at);
    """),
    # 7: schedules and hooks (issue 15). A job's own environment, directory and input; the hooks enqueued when it
    # ends; the schedule and slot that made it and the job whose hook it is. The unique index on (schedule, slot)
    # makes a slot fire once whatever races: a second insert of the same slot fails. jobs_schedule_state answers
    # "has this schedule an unfinished job" (overlap skip) in a few probes; both are partial, so ordinary jobs
    # cost nothing more.
    ("schedules and hooks", """
    ALTER TABLE jobs ADD COLUMN env TEXT;
    ALTER TABLE jobs ADD COLUMN cwd TEXT;
    ALTER TABLE jobs ADD COLUMN stdin TEXT;
    ALTER TABLE jobs ADD COLUMN on_success TEXT;
    ALTER TABLE jobs ADD COLUMN on_dead TEXT;
    ALTER TABLE jobs ADD COLUMN schedule TEXT;
    ALTER TABLE jobs ADD COLUMN scheduled_for INTEGER;
    ALTER TABLE jobs ADD COLUMN parent_id TEXT;
    CREATE UNIQUE INDEX jobs_schedule_slot ON jobs (schedule, scheduled_for) WHERE schedule IS NOT NULL;
    CREATE INDEX jobs_schedule_state ON jobs (schedule, state) WHERE schedule IS NOT NULL;
    CREATE TABLE schedules (
        name TEXT PRIMARY KEY,
        cron TEXT,
        every_ms INTEGER,
        timezone TEXT NOT NULL,
        overlap TEXT NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        job TEXT NOT NULL,
        next_run_at INTEGER NOT NULL,
        last_run_at INTEGER,
        last_job_id TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX schedules_due ON schedules (next_run_at) WHERE paused = 0;
    """),
    # 8: named queues, tags, unique jobs, concurrency keys, queue limits and rates (issue 14).
    # - jobs_unique: the database refuses a second unfinished job with the same unique_key (jobs without one, or
    #   finished, are not in the index).
    # - jobs_queue_ready: the claim of a worker given --queue (the order of jobs_ready within one queue).
    # - jobs_keyed: whether any job with a concurrency key waits (the plain claim's guard), keyed jobs only.
    # - queues: one row per queue with a setting (limit, rate, pause), holding its exact number of processing jobs
    #   (`running`): a claim from such a queue takes a slot there, the slots_free triggers give it back.
    #   rate_until: while a full rate window keeps the queue blocked. queue_starts: the starts of rate-limited queues
    #   in their window.
    # - key_slots: the processing jobs per concurrency key (rows only while some run).
    # - job_counts per queue and state (the triggers as before, keyed by the job's queue, which never changes).
    ("queues, limits and unique jobs", """
    ALTER TABLE jobs ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
    ALTER TABLE jobs ADD COLUMN tags TEXT;
    ALTER TABLE jobs ADD COLUMN unique_key TEXT;
    ALTER TABLE jobs ADD COLUMN concurrency_key TEXT;
    ALTER TABLE jobs ADD COLUMN concurrency_limit INTEGER;
    CREATE UNIQUE INDEX jobs_unique ON jobs (unique_key)
        WHERE unique_key IS NOT NULL AND state IN ('pending', 'processing', 'failed');
    CREATE INDEX jobs_queue_ready ON jobs (queue, priority DESC, run_at, seq) WHERE state IN ('pending', 'failed');
    CREATE INDEX jobs_keyed ON jobs (concurrency_key)
        WHERE concurrency_key IS NOT NULL AND state IN ('pending', 'failed');
    CREATE TABLE queues (
        name TEXT PRIMARY KEY,
        max_running INTEGER,
        rate_count INTEGER,
        rate_period_ms INTEGER,
        paused_at INTEGER,
        running INTEGER NOT NULL DEFAULT 0,
        rate_until INTEGER
    );
    CREATE TABLE queue_starts (queue TEXT NOT NULL, at INTEGER NOT NULL);
    CREATE INDEX queue_starts_by_queue ON queue_starts (queue, at);
    CREATE TABLE key_slots (key TEXT PRIMARY KEY, running INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TRIGGER queue_slot_free AFTER UPDATE OF state ON jobs
        WHEN OLD.state = 'processing' AND NEW.state <> 'processing' BEGIN
        UPDATE queues SET running = running - 1 WHERE name = OLD.queue;
    END;
    CREATE TRIGGER key_slot_free AFTER UPDATE OF state ON jobs
        WHEN OLD.state = 'processing' AND NEW.state <> 'processing' AND OLD.concurrency_key IS NOT NULL BEGIN
        UPDATE key_slots SET running = running - 1 WHERE key = OLD.concurrency_key;
        DELETE FROM key_slots WHERE key = OLD.concurrency_key AND running <= 0;
    END;
    DROP TRIGGER job_counts_update;
    DROP TRIGGER job_counts_delete;
    CREATE TABLE job_counts_by_queue (queue TEXT NOT NULL, state TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (queue, state)) WITHOUT ROWID;
    INSERT INTO job_counts_by_queue (queue, state, n) SELECT 'default', state, n FROM job_counts;
    DROP TABLE job_counts;
    ALTER TABLE job_counts_by_queue RENAME TO job_counts;
    CREATE TRIGGER job_counts_update AFTER UPDATE OF state ON jobs WHEN OLD.state IS NOT NEW.state BEGIN
        UPDATE job_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
        UPDATE job_counts SET n = n + 1 WHERE queue = NEW.queue AND state = NEW.state;
    END;
    CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs BEGIN
        UPDATE job_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
    END;
    """),
    # 9: a worker process runs up to `concurrency` jobs at once (`worker start --concurrency K`): its slots, for
    # `worker list`, the API and the dashboard.
    ("worker slots", """
    ALTER TABLE workers ADD COLUMN concurrency INTEGER NOT NULL DEFAULT 1;
    """),
    # 10: PostgreSQL's bookkeeping triggers become statement-level. SQLite has row triggers only, which run
    # inside the engine at no round trip's cost: nothing changes here.
    ("statement-level bookkeeping", """
    SELECT 1;
    """),
)
# Until both backends were numbered alike, SQLite added the job counts as version 2: a database at 2 or 3 that
# has them is one version short of the present numbering (the job counts migration can run over them again).
LEGACY_NUMBERING = (2, 3)


def connect(path, busy_timeout=BUSY_TIMEOUT_SECONDS):
    """Open `path` with WAL, a busy timeout (seconds a write waits for the lock) and foreign keys, migrating the
    schema if needed."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise DatabaseUnusable(f"database {path}: directory {directory} does not exist")
    if os.path.isdir(path):
        raise DatabaseUnusable(f"database {path} is a directory, not a file")
    try:
        connection = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        _use_wal(connection)
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        migrate(connection)
    except sqlite3.Error as error:
        raise DatabaseUnusable(f"database {path} is unusable: {error}{unwritable_hint(path)}") from None
    return connection


def _use_wal(connection):
    """Switch the file to WAL (a no-op once it is). SQLite does not call its busy handler for this switch: while
    other processes open the same new file (8 workers starting on a fresh volume), it fails at once with
    SQLITE_BUSY, in about one start in ten on a loaded machine. So it is tried again, up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    pause = 0.001
    while True:
        try:
            if connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            connection.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


def unwritable_hint(path):
    """Why the database at `path` cannot be written, as a parenthesized hint ('' when nothing is found).

    SQLite's own words ("unable to open database file", "attempt to write a readonly database", "disk I/O
    error") do not say that in WAL mode it must create PATH-wal and PATH-shm beside the file, so a read-only
    directory or file system, or a full disk, fails even for reads."""
    directory = os.path.dirname(path) or "."
    try:
        filesystem = os.statvfs(directory)
    except OSError:
        return ""
    if filesystem.f_flag & os.ST_RDONLY:
        return f" (the file system holding {directory} is mounted read-only)"
    if filesystem.f_bavail * filesystem.f_frsize < 64 * 1024:
        return (f" (no space left on the file system holding {directory}: SQLite needs some even to read, for"
                f" {os.path.basename(path)}-wal and -shm)")
    if not os.access(directory, os.W_OK):
        name = os.path.basename(path)
        return (f" (the directory {directory} is not writable: SQLite creates {name}-wal and {name}-shm"
                " beside the database)")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return " (the file is read-only)"
    return ""


@contextmanager
def transaction(connection):
    """A write transaction: BEGIN IMMEDIATE takes the write lock up front (waiting if busy),
    so two writers never deadlock upgrading read locks; COMMIT on success, ROLLBACK on error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:  # a failed COMMIT (disk full, I/O error) leaves the transaction open
            connection.execute("ROLLBACK")
        raise


def migrate(connection):
    """Bring the schema up to date; safe when many processes start at once."""
    if connection.execute("PRAGMA user_version").fetchone()[0] >= len(MIGRATIONS):
        return
    with transaction(connection):
        # Read again under the write lock: another process may have migrated meanwhile.
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise sqlite3.DatabaseError("it holds other tables: not a queuectl database")
        if version:
            # A database that claims a version holds its tables: another program's file fails here
            # ("no such table"), before any migration touches it.
            connection.execute("SELECT name, value FROM settings LIMIT 0")
        if version in LEGACY_NUMBERING and connection.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'job_counts'").fetchone():
            version -= 1
        for _, script in MIGRATIONS[version:]:
            for statement in _statements(script):
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")


def _statements(script):
    """The statements of a migration script, one by one (a trigger's body holds semicolons of its own)."""
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                yield statement
            statement = ""
