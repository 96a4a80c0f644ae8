"""SQL that SQLite and PostgreSQL both accept, with :name parameters.

The backends take these as they are (SQLite) or with their parameters rewritten (PostgreSQL), and
add their own statements where the dialects differ: the schema, the claim, counting, bulk insert.
"""

import re

from ..lifecycle import ENDED_BADLY, STATES, UNFINISHED_STATES, WAITING_STATES


def _listed(states):
    """`states` as the items of an SQL IN list."""
    return ", ".join(f"'{state}'" for state in states)


WAITING = _listed(WAITING_STATES)
STATE_LIST = STATES
ENDED = _listed(ENDED_BADLY)

JOB_COLUMNS = (
    "id, command, state, attempts, max_retries, priority, run_at, timeout,"
    " created_at, updated_at, last_error, exit_code, worker_id, depends_on, retry_on, no_retry_on,"
    " queue, tags, unique_key, concurrency_key, concurrency_limit,"
    " env, cwd, stdin, on_success, on_dead, schedule, scheduled_for, parent_id"
)

# The settings row whose presence pauses the queue (`queuectl pause`); not a setting of `config`.
PAUSED = "paused"
# What the claim adds to "due": no dependency still waiting (job_deps holds only waiting edges, so this
# is one primary-key probe per candidate).
NOT_WAITING = "NOT EXISTS (SELECT 1 FROM job_deps WHERE job_deps.job_seq = jobs.seq)"
# Statements over `v`, a table of several rows given at once (BatchesMixin._batch), each v_<column> of it.
# The ends of several runs: per row, the job's new values, then its run's.
RESULT_COLUMNS = (("seq", "BIGINT"), ("token", "TEXT"), ("state", "TEXT"), ("attempts", "INTEGER"),
                  ("run_at", "BIGINT"), ("error", "TEXT"), ("exit_code", "INTEGER"), ("attempt", "INTEGER"),
                  ("run_exit_code", "INTEGER"), ("run_error", "TEXT"), ("output", "TEXT"), ("offset", "BIGINT"))
# Each job ended only if its lease is still the claim's and no cancel was asked (as finish_job).
FINISH_JOBS = ("UPDATE jobs SET state = v_state, attempts = v_attempts, run_at = v_run_at, last_error = v_error,"
               " exit_code = v_exit_code, updated_at = :now, lease_token = NULL, lease_expires_at = NULL"
               " FROM v WHERE jobs.seq = v_seq AND jobs.lease_token = v_token AND jobs.state = 'processing'"
               " AND jobs.cancel_requested = 0")
FINISH_RUNS = ("UPDATE runs SET finished_at = :now, exit_code = v_run_exit_code, error = v_run_error,"
               " output = v_output, output_offset = v_offset FROM v")
RUN_OPENED_COLUMNS = (("seq", "BIGINT"), ("attempt", "INTEGER"))
OPEN_RUNS = "INSERT INTO runs (job_seq, attempt, started_at, worker_id) SELECT v_seq, v_attempt, :now, :worker FROM v"
LEASE_COLUMNS = (("seq", "BIGINT"), ("token", "TEXT"))
# Renews the leases of a worker's running jobs, the rows of `v` (v_seq, v_token), each fenced by its own token (a
# job handed back and claimed again has another one); returns (seq, cancel_requested) of the leases still held.
RENEW_LEASES = ("UPDATE jobs SET lease_expires_at = :expires FROM v"
                " WHERE jobs.seq = v_seq AND jobs.lease_token = v_token AND jobs.state = 'processing'"
                " RETURNING seq, cancel_requested")
# True while paused; each backend's claim tests it once per statement, never per candidate row.
IS_PAUSED = f"EXISTS (SELECT 1 FROM settings WHERE name = '{PAUSED}')"
# True while flow control may hold a job back: a queue has a setting (limit, rate, pause), or a job with a
# concurrency key waits (jobs_keyed holds only those). The plain claim takes nothing then (both are one probe
# per statement), and the store claims through the flow claim instead (see FlowMixin).
# ({keyed}: where the dialect names the index, which SQLite's planner, without statistics, would not pick: it walked
# every pending job through jobs_by_state instead, 287 ms per claim at 1M jobs.)
FLOW_ON = (
    "(EXISTS (SELECT 1 FROM queues) OR EXISTS (SELECT 1 FROM jobs k {keyed} WHERE k.concurrency_key IS NOT NULL"
    f" AND k.state IN ({WAITING})))"
)
# What the flow claim adds to "due", per candidate: its queue is not blocked (the blocked queues are a one-time
# list: paused, every slot taken, or a full rate window), and its concurrency key has a slot left for its limit
# (one primary-key probe, for keyed jobs only). Read from the statement's snapshot: the slot is then taken under
# a row lock (FlowMixin._take_slots), which alone makes the limit exact. A claim for given queues tests
# BLOCKED_QUEUES once per queue instead (see FlowMixin._flow_sql).
BLOCKED_QUEUES = (
    "SELECT name FROM queues WHERE paused_at IS NOT NULL OR running >= max_running OR rate_until > :now"
)
QUEUE_OPEN = "{table}.queue NOT IN (" + BLOCKED_QUEUES + ")"
KEY_FREE = (
    "({table}.concurrency_key IS NULL OR coalesce((SELECT running FROM key_slots"
    " WHERE key = {table}.concurrency_key), 0) < {table}.concurrency_limit)"
)

# A run succeeded when the shell exited 0 and nothing (timeout, lost worker, stop) is recorded against it.
def run_succeeded(row=""):
    """SQL that is 1 for a run that succeeded, else 0 (`row`: a prefix such as "NEW." in a trigger)."""
    return f"CASE WHEN {row}exit_code = 0 AND {row}error IS NULL THEN 1 ELSE 0 END"


RUN_SUCCEEDED = run_succeeded()

# Upper bounds (seconds) of the run duration histogram that /metrics exports. The run totals (migration "run
# totals") keep one row per bucket, chosen by run_bucket() as each run finishes: changing these bounds takes a
# migration that rebuilds them.
RUN_DURATION_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600)


def run_bucket(duration):
    """SQL for the histogram bucket of a run that took `duration` (an SQL expression in milliseconds): the index of
    the first bound it stays within, len(RUN_DURATION_BUCKETS) for a longer one."""
    cases = " ".join(f"WHEN {duration} <= {int(seconds * 1000)} THEN {index}"
                     for index, seconds in enumerate(RUN_DURATION_BUCKETS))
    return f"CASE {cases} ELSE {len(RUN_DURATION_BUCKETS)} END"


def run_totals_of_finished_runs(leading=""):
    """SQL that sums the finished runs of `runs` as rows of run_totals ([`leading` values,] bucket, succeeded,
    failed, duration_ms): what the migration starts the totals from."""
    return (f"SELECT {leading}{run_bucket('finished_at - started_at')}, sum({RUN_SUCCEEDED}),"
            f" sum(1 - {RUN_SUCCEEDED}),"
            " sum(finished_at - started_at) FROM runs WHERE finished_at IS NOT NULL"
            f" GROUP BY {run_bucket('finished_at - started_at')}")

PORTABLE = {
    "insert_job": (
        "INSERT INTO jobs (id, command, state, max_retries, priority, run_at, timeout, created_at, updated_at,"
        " depends_on, retry_on, no_retry_on, queue, tags, unique_key, concurrency_key, concurrency_limit,"
        " env, cwd, stdin, on_success, on_dead, schedule, scheduled_for, parent_id)"
        " VALUES (:id, :command, 'pending', :max_retries, :priority, :run_at, :timeout, :now, :now,"
        " :depends_on, :retry_on, :no_retry_on, :queue, :tags, :unique_key, :concurrency_key, :concurrency_limit,"
        " :env, :cwd, :stdin, :on_success, :on_dead, :schedule, :scheduled_for, :parent_id)"
    ),
    # A job with a unique_key: nothing is added while an unfinished job holds the key (jobs_unique says so,
    # atomically; the caller then reads that job).
    "insert_unique_job": (
        "INSERT INTO jobs (id, command, state, max_retries, priority, run_at, timeout, created_at, updated_at,"
        " depends_on, retry_on, no_retry_on, queue, tags, unique_key, concurrency_key, concurrency_limit)"
        " VALUES (:id, :command, 'pending', :max_retries, :priority, :run_at, :timeout, :now, :now,"
        " :depends_on, :retry_on, :no_retry_on, :queue, :tags, :unique_key, :concurrency_key, :concurrency_limit)"
        " ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ('pending', 'processing', 'failed')"
        " DO NOTHING"
    ),
    "holder_of_key": (
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE unique_key = :unique_key"
        f" AND state IN ({_listed(UNFINISHED_STATES)})"
    ),
    # ---- queues: settings, slots, rates (see FlowMixin) ----
    "blocked_queues": BLOCKED_QUEUES,
    "queue_row": (
        "SELECT name, max_running, rate_count, rate_period_ms, paused_at, running, rate_until FROM queues"
        " WHERE name = :queue"
    ),
    "queue_rows": (
        "SELECT name, max_running, rate_count, rate_period_ms, paused_at, running, rate_until FROM queues"
        " ORDER BY name"
    ),
    "take_queue_slot": "UPDATE queues SET running = running + 1, rate_until = :rate_until WHERE name = :queue",
    "block_queue_until": "UPDATE queues SET rate_until = :rate_until WHERE name = :queue",
    "take_key_slot": (
        "INSERT INTO key_slots (key, running) VALUES (:key, 1)"
        " ON CONFLICT (key) DO UPDATE SET running = key_slots.running + 1 WHERE key_slots.running < :limit"
        " RETURNING running"
    ),
    "prune_starts": "DELETE FROM queue_starts WHERE queue = :queue AND at <= :since",
    "window_starts": "SELECT count(*), min(at) FROM queue_starts WHERE queue = :queue AND at > :since",
    "add_start": "INSERT INTO queue_starts (queue, at) VALUES (:queue, :now)",
    "running_in_queue": (
        "SELECT count(*) FROM jobs WHERE state = 'processing' AND queue = :queue"
    ),
    "add_queue": (
        "INSERT INTO queues (name, running) VALUES (:queue, :running) ON CONFLICT (name) DO NOTHING"
    ),
    "set_queue_limit": "UPDATE queues SET max_running = :limit WHERE name = :queue",
    "set_queue_rate": (
        "UPDATE queues SET rate_count = :count, rate_period_ms = :period, rate_until = NULL WHERE name = :queue"
    ),
    "set_queue_paused": "UPDATE queues SET paused_at = :paused_at WHERE name = :queue",
    "drop_idle_queue": (
        "DELETE FROM queues WHERE name = :queue AND max_running IS NULL AND rate_count IS NULL AND paused_at IS NULL"
    ),
    "drop_starts": "DELETE FROM queue_starts WHERE queue = :queue",
    "waiting_in_queue": f"SELECT 1 FROM jobs WHERE queue = :queue AND state IN ({WAITING}) LIMIT 1",
    "processing_in_queue": "SELECT 1 FROM jobs WHERE state = 'processing' AND queue = :queue LIMIT 1",
    "default_max_retries": "SELECT value FROM settings WHERE name = 'max_retries'",
    "open_run": (
        "INSERT INTO runs (job_seq, attempt, started_at, worker_id) VALUES (:seq, :attempt, :now, :worker)"
    ),
    # Fenced by the lease and by the cancel flag the transition was decided with (see RunsMixin._finish).
    "finish_job": (
        "UPDATE jobs SET state = :state, attempts = :attempts, run_at = :run_at, last_error = :error,"
        " exit_code = :exit_code, updated_at = :now, lease_token = NULL, lease_expires_at = NULL"
        " WHERE seq = :seq AND lease_token = :token AND state = 'processing' AND cancel_requested = :cancel_requested"
    ),
    "finish_run": (
        "UPDATE runs SET finished_at = :now, exit_code = :exit_code, error = :error, output = :output,"
        " output_offset = :offset WHERE job_seq = :seq AND attempt = :attempt"
    ),
    "beat": "UPDATE workers SET heartbeat_at = :now, stats = :stats WHERE id = :worker RETURNING stop_requested",
    "forget_workers": "DELETE FROM workers WHERE heartbeat_at < :before",
    # A worker whose row was forgotten (after an outage of 2 x lease_timeout) though it lives: it joins again,
    # from its heartbeat, with its first start time.
    "rejoin_worker": (
        "INSERT INTO workers (id, host, pid, started_at, heartbeat_at, stats, concurrency)"
        " VALUES (:worker, :host, :pid, :started, :now, :stats, :concurrency) ON CONFLICT (id) DO NOTHING"
    ),
    "any_expired": "SELECT 1 FROM jobs WHERE state = 'processing' AND lease_expires_at < :now LIMIT 1",
    # PostgreSQL locks these rows (FOR UPDATE SKIP LOCKED); SQLite's BEGIN IMMEDIATE holds the database already.
    "expired": (
        "SELECT seq, id, attempts, max_retries, run_count, worker_id, cancel_requested, lease_token, on_dead"
        " FROM jobs"
        " WHERE state = 'processing' AND lease_expires_at < :now"
    ),
    # Fenced like finish_job: only the lease that was read expired is ended, never a claim made since.
    "hand_back": (
        "UPDATE jobs SET state = :state, attempts = :attempts, run_at = :run_at, last_error = :error,"
        " exit_code = NULL, updated_at = :now, lease_token = NULL, lease_expires_at = NULL"
        " WHERE seq = :seq AND state = 'processing' AND lease_token = :token AND lease_expires_at < :now"
    ),
    "close_lost_run": "UPDATE runs SET finished_at = :now, error = :error WHERE job_seq = :seq AND attempt = :attempt",
    "any_unfinished": f"SELECT 1 FROM jobs WHERE state IN ({_listed(UNFINISHED_STATES)}) LIMIT 1",
    "any_waiting": f"SELECT 1 FROM jobs WHERE state IN ({WAITING}) LIMIT 1",
    "get_job": f"SELECT seq, {JOB_COLUMNS} FROM jobs WHERE id = :id",
    "history": (
        "SELECT attempt, started_at, finished_at, exit_code, error, worker_id, output"
        " FROM runs WHERE job_seq = :seq ORDER BY attempt"
    ),
    # The latest runs first, from the newest one `offset` skips (get_job turns the page oldest first again).
    "history_page": (
        "SELECT attempt, started_at, finished_at, exit_code, error, worker_id, output"
        " FROM runs WHERE job_seq = :seq ORDER BY attempt DESC LIMIT :limit OFFSET :offset"
    ),
    "history_total": "SELECT count(*) FROM runs WHERE job_seq = :seq",
    "list_jobs": f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY seq DESC LIMIT :limit OFFSET :offset",
    "list_jobs_in_state": (
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = :state ORDER BY seq DESC LIMIT :limit OFFSET :offset"
    ),
    "retry_dead": (
        "UPDATE jobs SET state = 'pending', attempts = 0, run_at = :now, updated_at = :now, worker_id = NULL,"
        " cancel_requested = 0"
        f" WHERE id = :id AND state = 'dead' RETURNING {JOB_COLUMNS}"
    ),
    "retry_all_dead": (
        "UPDATE jobs SET state = 'pending', attempts = 0, run_at = :now, updated_at = :now, worker_id = NULL,"
        " cancel_requested = 0"
        " WHERE state = 'dead' AND unique_key IS NULL"
    ),
    "dead_with_unique_key": "SELECT seq FROM jobs WHERE state = 'dead' AND unique_key IS NOT NULL ORDER BY seq DESC",
    "retry_dead_unique": (
        "UPDATE jobs SET state = 'pending', attempts = 0, run_at = :now, updated_at = :now, worker_id = NULL,"
        " cancel_requested = 0 WHERE seq = :seq AND NOT EXISTS (SELECT 1 FROM jobs holder"
        f" WHERE holder.unique_key = jobs.unique_key AND holder.state IN ({_listed(UNFINISHED_STATES)}))"
    ),
    "state_of": "SELECT state FROM jobs WHERE id = :id",
    "settings": "SELECT name, value FROM settings",
    "set_setting": (
        "INSERT INTO settings (name, value) VALUES (:name, :value)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
    ),
    "register_worker": (
        "INSERT INTO workers (id, host, pid, started_at, heartbeat_at, concurrency)"
        " VALUES (:worker, :host, :pid, :now, :now, :concurrency)"
        " ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stop_requested = 0"
    ),
    "unregister_worker": "DELETE FROM workers WHERE id = :worker",
    "live_workers": (
        "SELECT id, host, pid, started_at, heartbeat_at, stop_requested, stats, concurrency"
        " FROM workers WHERE heartbeat_at >= :since ORDER BY started_at, id"
    ),
    # The running jobs of every worker, each with its run's start (a worker runs up to `concurrency` at once).
    "running_jobs": (
        "SELECT j.worker_id, j.id, r.started_at FROM jobs j"
        " LEFT JOIN runs r ON r.job_seq = j.seq AND r.attempt = j.run_count"
        " WHERE j.state = 'processing' ORDER BY r.started_at, j.seq"
    ),
    "request_stop": "UPDATE workers SET stop_requested = 1 WHERE heartbeat_at >= :since",
    "ping": "SELECT 1 FROM jobs LIMIT 1",
    "throughput": (
        f"SELECT finished_at / 60000 AS minute, sum({RUN_SUCCEEDED}), count(*) FROM runs"
        " WHERE finished_at >= :first AND finished_at < :end GROUP BY finished_at / 60000"
    ),
    # Kept as runs finish (migration "run totals"): one row per histogram bucket (PostgreSQL: and slot).
    "run_totals": "SELECT bucket, sum(succeeded), sum(failed), sum(duration_ms) FROM run_totals GROUP BY bucket",
    # A scan of every waiting job: what oldest_waiting_levels falls back to when jobs have many priorities.
    "oldest_waiting": f"SELECT min(run_at) FROM jobs WHERE state IN ({WAITING}) AND run_at <= :now",
    # ---- operator features: live output, cancel, dependencies, pause, purge and retention ----
    "flush_output": (
        "UPDATE runs SET output = :output, output_offset = :offset"
        " WHERE job_seq = :seq AND attempt = :attempt AND finished_at IS NULL"
    ),
    "cancel_flag": (
        "SELECT cancel_requested FROM jobs WHERE seq = :seq AND lease_token = :token AND state = 'processing'"
    ),
    "run_output": (
        "SELECT j.state, j.run_count, r.attempt, r.started_at, r.finished_at, r.output, r.output_offset"
        " FROM jobs j LEFT JOIN runs r ON r.job_seq = j.seq AND r.attempt = coalesce(CAST(:attempt AS INTEGER),"
        " j.run_count) WHERE j.id = :id"
    ),
    "cancel_waiting": (
        "UPDATE jobs SET state = 'cancelled', last_error = :error, updated_at = :now"
        f" WHERE id = :id AND state IN ({WAITING}) RETURNING seq, {JOB_COLUMNS}"
    ),
    "request_cancel": (
        f"UPDATE jobs SET cancel_requested = 1 WHERE id = :id AND state = 'processing' RETURNING {JOB_COLUMNS}"
    ),
    "seq_of": "SELECT seq FROM jobs WHERE id = :id",
    "add_dependency": "INSERT INTO job_deps (job_seq, dep_seq) VALUES (:job, :dep)",
    "fail_dependents": (
        "UPDATE jobs SET state = :state, last_error = :error, exit_code = NULL, updated_at = :now"
        f" WHERE state IN ({WAITING}) AND seq IN (SELECT job_seq FROM job_deps WHERE dep_seq = :seq)"
        " RETURNING seq, id, on_dead"
    ),
    "fail_job": (
        "UPDATE jobs SET state = :state, last_error = :error, exit_code = NULL, updated_at = :now"
        f" WHERE seq = :seq AND state IN ({WAITING}) RETURNING id, on_dead"
    ),
    "ended_dependency": (
        "SELECT p.id, p.state FROM jobs j JOIN job_deps d ON d.job_seq = j.seq JOIN jobs p ON p.seq = d.dep_seq"
        f" WHERE j.id = :id AND j.state = 'dead' AND p.state IN ({ENDED}) ORDER BY p.seq LIMIT 1"
    ),
    "doomed_dependents": (
        "SELECT d.job_seq, j.id, p.id, p.state FROM job_deps d JOIN jobs p ON p.seq = d.dep_seq"
        " JOIN jobs j ON j.seq = d.job_seq"
        f" WHERE j.state IN ({WAITING}) AND p.state IN ({ENDED}) ORDER BY d.job_seq, p.seq"
    ),
    "paused": f"SELECT value FROM settings WHERE name = '{PAUSED}'",
    "resume": f"DELETE FROM settings WHERE name = '{PAUSED}'",
    # Purge and retention walk the jobs of one state in windows of seq through jobs_by_state (state, seq), so
    # that no index has to follow updated_at (it would cost every completion) and no write lock is held long.
    "count_finished": "SELECT count(*) FROM jobs WHERE state = :state AND updated_at < :before",
    "window_end": "SELECT seq FROM jobs WHERE state = :state AND seq > :after ORDER BY seq LIMIT 1 OFFSET :skip",
    "any_finished_in": (
        "SELECT 1 FROM jobs WHERE state = :state AND seq > :after AND seq <= :upto AND updated_at < :before LIMIT 1"
    ),
    "delete_finished_in": (
        "DELETE FROM jobs WHERE state = :state AND seq > :after AND seq <= :upto AND updated_at < :before"
    ),
    # ---- the audit log: operators' actions, written in the transaction of the action itself ----
    "record_audit": (
        "INSERT INTO audit (at, actor, action, target, details) VALUES (:at, :actor, :action, :target, :details)"
        " RETURNING seq"
    ),
    "update_audit_details": "UPDATE audit SET details = :details WHERE seq = :seq",
    "audit_entries": (
        "SELECT at, actor, action, target, details FROM audit ORDER BY seq DESC LIMIT :limit OFFSET :offset"
    ),
    "any_old_audit": "SELECT 1 FROM audit WHERE at < :before LIMIT 1",
    "delete_old_audit": (
        "DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE at < :before ORDER BY at LIMIT :window)"
    ),
}


def oldest_waiting_levels(indexed_by=""):
    """The earliest run_at of the waiting jobs, found as the first entry of jobs_ready (priority DESC, run_at, seq)
    under each priority, stepping from one priority to the next (a skip scan: a few index probes per priority
    instead of a read of every waiting job, ~200 ms at 1M). Stops after :levels priorities: the number of priorities
    seen comes first, so that a caller finding :levels of them knows there may be more (see metrics_snapshot).
    `indexed_by`: SQLite's INDEXED BY clause (without statistics its planner picks jobs_by_state)."""
    waiting = f"FROM jobs {indexed_by} WHERE state IN ({WAITING})"
    return (
        "WITH RECURSIVE levels(priority, depth) AS ("
        f" SELECT (SELECT max(priority) {waiting}), 1"
        f" UNION ALL SELECT (SELECT max(priority) {waiting} AND priority < levels.priority), depth + 1"
        " FROM levels WHERE levels.priority IS NOT NULL AND depth < :levels)"
        f" SELECT count(*), min((SELECT min(run_at) {waiting} AND priority = levels.priority))"
        " FROM levels WHERE priority IS NOT NULL"
    )


SCHEDULE_COLUMNS = ("name, cron, every_ms, timezone, overlap, paused, job, next_run_at, last_run_at, last_job_id,"
                    " created_at, updated_at")
SCHEDULES = {
    "insert_schedule": (
        f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES (:name, :cron, :every_ms, :timezone, :overlap, 0, :job,"
        " :next_run_at, NULL, NULL, :now, :now)"
    ),
    "list_schedules": f"SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY name",
    "get_schedule": f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE name = :name",
    "delete_schedule": "DELETE FROM schedules WHERE name = :name",
    "pause_schedule": "UPDATE schedules SET paused = 1, updated_at = :now WHERE name = :name",
    "resume_schedule": (
        "UPDATE schedules SET paused = 0, next_run_at = :next_run_at, updated_at = :now WHERE name = :name"
    ),
    "next_schedule_due": "SELECT min(next_run_at) FROM schedules WHERE paused = 0",
    "schedule_busy": (
        f"SELECT 1 FROM jobs WHERE schedule = :name AND state IN ({_listed(UNFINISHED_STATES)}) LIMIT 1"
    ),
    "advance_schedule": (
        "UPDATE schedules SET next_run_at = :next_run_at, updated_at = :now,"
        " last_run_at = coalesce(:last_run_at, last_run_at), last_job_id = coalesce(:last_job_id, last_job_id)"
        " WHERE name = :name"
    ),
    "schedule_ran": (
        "UPDATE schedules SET last_run_at = :last_run_at, last_job_id = :last_job_id, updated_at = :now"
        " WHERE name = :name"
    ),
}
# The due schedules, read under the write transaction; each backend adds its row locking (see its SQL).
DUE_SCHEDULES = (f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE paused = 0 AND next_run_at <= :now ORDER BY name")
PORTABLE.update(SCHEDULES)


def to_pyformat(statement):
    """The statement with :name parameters written as %(name)s (psycopg's style)."""
    return re.sub(r"(?<![:\w]):([a-z_][a-z0-9_]*)", r"%(\1)s", statement.replace("%", "%%"))
