"""The PostgreSQL backend's schema and migrations (the same changes under the same numbers as SQLite's)."""

from .sql import run_bucket, run_succeeded, run_totals_of_finished_runs

CHANNEL = "queuectl_jobs"  # what enqueues NOTIFY and idle workers LISTEN on
COUNT_SLOTS = 64  # counter slots per state (see migration 4): more than the transactions that write jobs at once
COUNT_SLOT_LOCK = 0x636E74  # first key of the two-key advisory locks that reserve a slot: "cnt"
_MIGRATION_LOCK = 0x71756575  # pg_advisory_xact_lock key: "queu"

# Each entry moves the schema one version up: (what it changes, its script); SQLite's MIGRATIONS make the same
# changes under the same numbers.
MIGRATIONS = (
    # 1: the jobs, their runs, the settings and the worker registry.

    ("jobs, runs, settings, workers", """
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
    """),
    # 2: operator features, as SQLite's migration 3 (cancellation, dependencies, exit-code policies,
    # live output, purge/retention index); the column names match SQLite's, so `migrate` copies them.
    ("operator features", """
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
    """),
    # 3: as SQLite's 4: the index cost every completion (purge and retention walk jobs_by_state instead), and
    # a completed job frees its dependents' edges by trigger instead of one more round trip per job. (\073 is
    # ';' in the function's E'' string: migrate splits scripts on ';'.)
    ("per-job cost", """
    DROP INDEX IF EXISTS jobs_finished;
    CREATE FUNCTION queuectl_free_dependents() RETURNS trigger LANGUAGE plpgsql
        AS E'BEGIN DELETE FROM job_deps WHERE dep_seq = NEW.seq\\073 RETURN NULL\\073 END';
    CREATE TRIGGER job_deps_done AFTER UPDATE OF state ON jobs FOR EACH ROW WHEN (NEW.state = 'completed')
        EXECUTE FUNCTION queuectl_free_dependents()
    """),
    # 4: the number of jobs per state, as SQLite's job_counts (its migration 2), so that status, /api/v1/stats and
    # /metrics read a few hundred rows instead of counting 1M jobs (70-280 ms). One counter row per state would
    # make every worker's claim and finish wait for the others' commits on that row: each state has COUNT_SLOTS
    # rows instead, and a transaction adds to the rows of one slot that no running transaction holds (a try-lock
    # picks it), so counting never makes writers wait (a slot may go negative: counts are sums over slots).
    # State changes are counted by a row trigger, deletions (purge, retention: many rows at once) by a
    # statement trigger over the deleted rows, new jobs by the store's enqueue paths once per transaction
    # (SQL.count_new_jobs: an insert trigger would cost bulk enqueue). The table lock taken by CREATE TRIGGER
    # (before the first count) keeps writers out until this commits, so the counts start exact.
    ("job counts", f"""
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
    """),
    # 5: as SQLite's: the finished runs' totals for /metrics (by outcome, the duration histogram), added to by a
    # trigger when a run gets its finished_at; rows per bucket and slot, the slot picked as job_counts' are (the
    # finishing transaction holds its slot already), so that workers finishing at once never wait on one row. The
    # table lock taken by CREATE TRIGGER keeps runs from finishing until this commits: the totals start exact.
    ("run totals", f"""
    CREATE TABLE run_totals (
        bucket INTEGER NOT NULL, slot INTEGER NOT NULL DEFAULT 0, succeeded BIGINT NOT NULL DEFAULT 0,
        failed BIGINT NOT NULL DEFAULT 0, duration_ms BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (bucket, slot));
    CREATE FUNCTION queuectl_count_finished_run() RETURNS trigger LANGUAGE plpgsql AS E'
        DECLARE ok integer := {run_succeeded("NEW.")}\\073
        BEGIN
            INSERT INTO run_totals (bucket, slot, succeeded, failed, duration_ms)
            VALUES ({run_bucket("NEW.finished_at - NEW.started_at")}, queuectl_count_slot(), ok, 1 - ok,
                    NEW.finished_at - NEW.started_at)
            ON CONFLICT (bucket, slot) DO UPDATE SET succeeded = run_totals.succeeded + excluded.succeeded,
                failed = run_totals.failed + excluded.failed,
                duration_ms = run_totals.duration_ms + excluded.duration_ms\\073
            RETURN NULL\\073
        END';
    CREATE TRIGGER run_totals_finish AFTER UPDATE OF finished_at ON runs FOR EACH ROW
        WHEN (OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL) EXECUTE FUNCTION queuectl_count_finished_run();
    INSERT INTO run_totals (slot, bucket, succeeded, failed, duration_ms) {run_totals_of_finished_runs("0, ")}
    """),
    # 6: as SQLite's: the audit log of operators' actions.
    ("audit log", """
    CREATE TABLE audit (
        seq BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT,
        details TEXT);
    CREATE INDEX audit_at ON audit (at)
    """),
    # 7: as SQLite's 7: schedules and hooks.
    ("schedules and hooks", """
    ALTER TABLE jobs ADD COLUMN env TEXT;
    ALTER TABLE jobs ADD COLUMN cwd TEXT;
    ALTER TABLE jobs ADD COLUMN stdin TEXT;
    ALTER TABLE jobs ADD COLUMN on_success TEXT;
    ALTER TABLE jobs ADD COLUMN on_dead TEXT;
    ALTER TABLE jobs ADD COLUMN schedule TEXT;
    ALTER TABLE jobs ADD COLUMN scheduled_for BIGINT;
    ALTER TABLE jobs ADD COLUMN parent_id TEXT;
    CREATE UNIQUE INDEX jobs_schedule_slot ON jobs (schedule, scheduled_for) WHERE schedule IS NOT NULL;
    CREATE INDEX jobs_schedule_state ON jobs (schedule, state) WHERE schedule IS NOT NULL;
    CREATE TABLE schedules (
        name TEXT PRIMARY KEY,
        cron TEXT,
        every_ms BIGINT,
        timezone TEXT NOT NULL,
        overlap TEXT NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        job TEXT NOT NULL,
        next_run_at BIGINT NOT NULL,
        last_run_at BIGINT,
        last_job_id TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX schedules_due ON schedules (next_run_at) WHERE paused = 0
    """),
    # 8: as SQLite's 8: named queues, tags, unique jobs, concurrency keys, queue limits and rates. A claim from a
    # queue with a setting takes a slot by updating its `queues` row (a row lock: concurrent claims of the last
    # slot wait for each other and see each other's counts), one with a concurrency key by an upsert of its
    # key_slots row; the slots_free trigger gives them back. job_counts gains the queue (the triggers and the
    # enqueue paths count per queue and state).
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
        rate_period_ms BIGINT,
        paused_at BIGINT,
        running INTEGER NOT NULL DEFAULT 0,
        rate_until BIGINT
    );
    CREATE TABLE queue_starts (queue TEXT NOT NULL, at BIGINT NOT NULL);
    CREATE INDEX queue_starts_by_queue ON queue_starts (queue, at);
    CREATE TABLE key_slots (key TEXT PRIMARY KEY, running INTEGER NOT NULL);
    CREATE FUNCTION queuectl_free_slots() RETURNS trigger LANGUAGE plpgsql AS E'
        BEGIN
            UPDATE queues SET running = running - 1 WHERE name = OLD.queue\\073
            IF OLD.concurrency_key IS NOT NULL THEN
                UPDATE key_slots SET running = running - 1 WHERE key = OLD.concurrency_key\\073
                DELETE FROM key_slots WHERE key = OLD.concurrency_key AND running <= 0\\073
            END IF\\073
            RETURN NULL\\073
        END';
    CREATE TRIGGER slots_free AFTER UPDATE OF state ON jobs FOR EACH ROW
        WHEN (OLD.state = 'processing' AND NEW.state <> 'processing') EXECUTE FUNCTION queuectl_free_slots();
    LOCK TABLE jobs IN SHARE MODE;
    ALTER TABLE job_counts ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
    ALTER TABLE job_counts DROP CONSTRAINT job_counts_pkey;
    ALTER TABLE job_counts ADD PRIMARY KEY (queue, state, slot);
    CREATE OR REPLACE FUNCTION queuectl_count_state_change() RETURNS trigger LANGUAGE plpgsql AS E'
        DECLARE chosen integer := queuectl_count_slot()\\073
        BEGIN
            INSERT INTO job_counts (queue, state, slot, n)
            VALUES (OLD.queue, OLD.state, chosen, -1), (NEW.queue, NEW.state, chosen, 1)
            ON CONFLICT (queue, state, slot) DO UPDATE SET n = job_counts.n + excluded.n\\073
            RETURN NULL\\073
        END';
    CREATE OR REPLACE FUNCTION queuectl_count_deleted() RETURNS trigger LANGUAGE plpgsql AS E'
        BEGIN
            INSERT INTO job_counts (queue, state, slot, n)
            SELECT queue, state, queuectl_count_slot(), -count(*) FROM deleted GROUP BY queue, state
            ON CONFLICT (queue, state, slot) DO UPDATE SET n = job_counts.n + excluded.n\\073
            RETURN NULL\\073
        END'
    """),
    # 9: a worker process runs up to `concurrency` jobs at once (`worker start --concurrency K`): its slots, for
    # `worker list`, the API and the dashboard.
    ("worker slots", """
    ALTER TABLE workers ADD COLUMN concurrency INTEGER NOT NULL DEFAULT 1;
    """),
    # 10: the bookkeeping of migrations 3, 4, 5 and 8 (counts, freed slots, freed dependency edges, run totals)
    # once per statement instead of once per row: a batch of ten claims or results paid ten trigger calls and
    # twenty counter upserts, and now pays one call and an upsert per (queue, state). The transition tables hold
    # the statement's rows before and after; only rows whose state changed count (a lease renewal changes none).
    # (A trigger with transition tables cannot name columns: these fire on every UPDATE of their table.)
    ("statement-level bookkeeping", f"""
    LOCK TABLE jobs IN SHARE MODE;
    DROP TRIGGER job_counts_update ON jobs;
    DROP TRIGGER slots_free ON jobs;
    DROP TRIGGER job_deps_done ON jobs;
    DROP TRIGGER run_totals_finish ON runs;
    CREATE FUNCTION queuectl_jobs_updated() RETURNS trigger LANGUAGE plpgsql AS E'
        BEGIN
            INSERT INTO job_counts (queue, state, slot, n)
            SELECT change.queue, change.state, (SELECT queuectl_count_slot()), sum(change.n)
            FROM before_rows o JOIN after_rows j ON j.seq = o.seq
            CROSS JOIN LATERAL (VALUES (o.queue, o.state, -1), (j.queue, j.state, 1)) AS change (queue, state, n)
            WHERE j.state <> o.state
            GROUP BY change.queue, change.state
            ON CONFLICT (queue, state, slot) DO UPDATE SET n = job_counts.n + excluded.n\\073
            IF EXISTS (SELECT 1 FROM before_rows o JOIN after_rows j ON j.seq = o.seq
                       WHERE o.state = ''processing'' AND j.state <> ''processing'') THEN
                UPDATE queues SET running = queues.running - freed.n
                FROM (SELECT o.queue, count(*) AS n FROM before_rows o JOIN after_rows j ON j.seq = o.seq
                      WHERE o.state = ''processing'' AND j.state <> ''processing'' GROUP BY o.queue) AS freed
                WHERE queues.name = freed.queue\\073
                UPDATE key_slots SET running = key_slots.running - freed.n
                FROM (SELECT o.concurrency_key AS key, count(*) AS n
                      FROM before_rows o JOIN after_rows j ON j.seq = o.seq
                      WHERE o.state = ''processing'' AND j.state <> ''processing'' AND o.concurrency_key IS NOT NULL
                      GROUP BY o.concurrency_key) AS freed
                WHERE key_slots.key = freed.key\\073
                DELETE FROM key_slots WHERE running <= 0 AND key IN (SELECT concurrency_key FROM before_rows)\\073
                DELETE FROM job_deps WHERE dep_seq IN (
                    SELECT j.seq FROM before_rows o JOIN after_rows j ON j.seq = o.seq
                    WHERE j.state = ''completed'' AND o.state <> ''completed'')\\073
            END IF\\073
            RETURN NULL\\073
        END';
    CREATE TRIGGER jobs_updated AFTER UPDATE ON jobs REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows
        FOR EACH STATEMENT EXECUTE FUNCTION queuectl_jobs_updated();
    CREATE FUNCTION queuectl_runs_updated() RETURNS trigger LANGUAGE plpgsql AS E'
        BEGIN
            INSERT INTO run_totals (bucket, slot, succeeded, failed, duration_ms)
            SELECT finished.bucket, (SELECT queuectl_count_slot()), sum(finished.ok), sum(1 - finished.ok),
                   sum(finished.duration)
            FROM (SELECT {run_bucket("r.finished_at - r.started_at")} AS bucket, {run_succeeded("r.")} AS ok,
                         r.finished_at - r.started_at AS duration
                  FROM before_rows o JOIN after_rows r ON r.job_seq = o.job_seq AND r.attempt = o.attempt
                  WHERE o.finished_at IS NULL AND r.finished_at IS NOT NULL) AS finished
            GROUP BY finished.bucket
            ON CONFLICT (bucket, slot) DO UPDATE SET succeeded = run_totals.succeeded + excluded.succeeded,
                failed = run_totals.failed + excluded.failed,
                duration_ms = run_totals.duration_ms + excluded.duration_ms\\073
            RETURN NULL\\073
        END';
    CREATE TRIGGER runs_updated AFTER UPDATE ON runs REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows
        FOR EACH STATEMENT EXECUTE FUNCTION queuectl_runs_updated();
    DROP FUNCTION queuectl_count_state_change();
    DROP FUNCTION queuectl_free_slots();
    DROP FUNCTION queuectl_free_dependents();
    DROP FUNCTION queuectl_count_finished_run()
    """),
)


def migrate(connection):
    """Bring the schema up to date, under an advisory lock so that many starting workers don't race."""
    if _version(connection) >= len(MIGRATIONS):
        return
    with connection.transaction():
        # A migration may rewrite a big table, and the processes starting meanwhile wait for it: the store's
        # bounds on waits and statements (postgres_bounds) are lifted for this transaction.
        connection.execute("SET LOCAL lock_timeout = 0")
        connection.execute("SET LOCAL statement_timeout = 0")
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        connection.execute("CREATE TABLE IF NOT EXISTS queuectl_schema (version INTEGER NOT NULL)")
        row = connection.execute("SELECT max(version) FROM queuectl_schema").fetchone()
        version = row[0] or 0
        for _, script in MIGRATIONS[version:]:
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
