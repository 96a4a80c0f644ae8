"""SQL that SQLite and PostgreSQL both accept, with :name parameters.

The backends take these as they are (SQLite) or with their parameters rewritten (PostgreSQL), and
add their own statements where the dialects differ: the schema, the claim, counting, bulk insert.
"""

import re

JOB_COLUMNS = (
    "id, command, state, attempts, max_retries, priority, run_at, timeout,"
    " created_at, updated_at, last_error, exit_code, worker_id"
)

# A run succeeded when the shell exited 0 and nothing (timeout, lost worker, stop) is recorded against it.
RUN_SUCCEEDED = "CASE WHEN exit_code = 0 AND error IS NULL THEN 1 ELSE 0 END"

PORTABLE = {
    "insert_job": (
        "INSERT INTO jobs (id, command, state, max_retries, priority, run_at, timeout, created_at, updated_at)"
        " VALUES (:id, :command, 'pending', :max_retries, :priority, :run_at, :timeout, :now, :now)"
    ),
    "default_max_retries": "SELECT value FROM settings WHERE name = 'max_retries'",
    "open_run": (
        "INSERT INTO runs (job_seq, attempt, started_at, worker_id) VALUES (:seq, :attempt, :now, :worker)"
    ),
    "finish_job": (
        "UPDATE jobs SET state = :state, attempts = :attempts, run_at = :run_at, last_error = :error,"
        " exit_code = :exit_code, updated_at = :now, lease_token = NULL, lease_expires_at = NULL"
        " WHERE seq = :seq AND lease_token = :token AND state = 'processing'"
    ),
    "finish_run": (
        "UPDATE runs SET finished_at = :now, exit_code = :exit_code, error = :error, output = :output"
        " WHERE job_seq = :seq AND attempt = :attempt"
    ),
    "beat": "UPDATE workers SET heartbeat_at = :now, stats = :stats WHERE id = :worker RETURNING stop_requested",
    "renew_lease": (
        "UPDATE jobs SET lease_expires_at = :expires WHERE seq = :seq AND lease_token = :token"
        " AND state = 'processing'"
    ),
    "forget_workers": "DELETE FROM workers WHERE heartbeat_at < :before",
    "any_expired": "SELECT 1 FROM jobs WHERE state = 'processing' AND lease_expires_at < :now LIMIT 1",
    "expired": (
        "SELECT seq, id, attempts, max_retries, run_count, worker_id FROM jobs"
        " WHERE state = 'processing' AND lease_expires_at < :now"
    ),
    "hand_back": (
        "UPDATE jobs SET state = :state, attempts = :attempts, run_at = :run_at, last_error = :error,"
        " exit_code = NULL, updated_at = :now, lease_token = NULL, lease_expires_at = NULL WHERE seq = :seq"
    ),
    "close_lost_run": "UPDATE runs SET finished_at = :now, error = :error WHERE job_seq = :seq AND attempt = :attempt",
    "any_unfinished": "SELECT 1 FROM jobs WHERE state IN ('pending', 'processing', 'failed') LIMIT 1",
    "get_job": f"SELECT seq, {JOB_COLUMNS} FROM jobs WHERE id = :id",
    "history": (
        "SELECT attempt, started_at, finished_at, exit_code, error, worker_id, output"
        " FROM runs WHERE job_seq = :seq ORDER BY attempt"
    ),
    "list_jobs": f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY seq DESC LIMIT :limit OFFSET :offset",
    "list_jobs_in_state": (
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = :state ORDER BY seq DESC LIMIT :limit OFFSET :offset"
    ),
    "retry_dead": (
        "UPDATE jobs SET state = 'pending', attempts = 0, run_at = :now, updated_at = :now, worker_id = NULL"
        f" WHERE id = :id AND state = 'dead' RETURNING {JOB_COLUMNS}"
    ),
    "retry_all_dead": (
        "UPDATE jobs SET state = 'pending', attempts = 0, run_at = :now, updated_at = :now, worker_id = NULL"
        " WHERE state = 'dead'"
    ),
    "state_of": "SELECT state FROM jobs WHERE id = :id",
    "settings": "SELECT name, value FROM settings",
    "set_setting": (
        "INSERT INTO settings (name, value) VALUES (:name, :value)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
    ),
    "register_worker": (
        "INSERT INTO workers (id, host, pid, started_at, heartbeat_at) VALUES (:worker, :host, :pid, :now, :now)"
        " ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stop_requested = 0"
    ),
    "unregister_worker": "DELETE FROM workers WHERE id = :worker",
    "live_workers": (
        "SELECT w.id, w.host, w.pid, w.started_at, w.heartbeat_at, w.stop_requested, w.stats,"
        " j.id AS current_job, r.started_at AS current_job_started_at"
        " FROM workers w"
        " LEFT JOIN jobs j ON j.state = 'processing' AND j.worker_id = w.id"
        " LEFT JOIN runs r ON r.job_seq = j.seq AND r.attempt = j.run_count"
        " WHERE w.heartbeat_at >= :since ORDER BY w.started_at, w.id"
    ),
    "request_stop": "UPDATE workers SET stop_requested = 1 WHERE heartbeat_at >= :since",
    "ping": "SELECT 1 FROM jobs LIMIT 1",
    "throughput": (
        f"SELECT finished_at / 60000 AS minute, sum({RUN_SUCCEEDED}), count(*) FROM runs"
        " WHERE finished_at >= :first AND finished_at < :end GROUP BY finished_at / 60000"
    ),
    "oldest_waiting": "SELECT min(run_at) FROM jobs WHERE state IN ('pending', 'failed') AND run_at <= :now",
}


def to_pyformat(statement):
    """The statement with :name parameters written as %(name)s (psycopg's style)."""
    return re.sub(r"(?<![:\w]):([a-z_]+)", r"%(\1)s", statement.replace("%", "%%"))
