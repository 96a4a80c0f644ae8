"""The store's reads for the dashboard, the API and /metrics (mixed into Store)."""


import json

from ..errors import DatabaseUnusable, InvalidInput
from ..lifecycle import STATES
from ..timeutil import now_ms, to_iso
from ..validation import DEFAULT_QUEUE, check_queue_name, check_tag
from .records import _record
from .sql import JOB_COLUMNS, RUN_DURATION_BUCKETS


class ReportsMixin:
    """Health, search with paging and sorting, throughput per minute, the metrics snapshot."""

    # Sort keys of search_jobs and their columns; `seq` (enqueue order) breaks ties so pages never overlap.
    JOB_SORTS = {
        "created_at": "seq", "updated_at": "updated_at", "run_at": "run_at", "priority": "priority",
        "attempts": "attempts", "state": "state", "id": "id", "command": "command",
    }
    # Upper bounds (seconds) of the run duration histogram that /metrics exports (see sql.run_bucket).
    RUN_DURATION_BUCKETS = RUN_DURATION_BUCKETS
    # Priorities the oldest waiting job's skip scan steps through before it reads every waiting job instead.
    OLDEST_WAITING_LEVELS = 64

    def ping(self):
        """Read the schema once; DatabaseUnusable when the database does not answer."""
        try:
            self._read(self.q.ping).fetchall()
        except self.Error as error:
            raise DatabaseUnusable(f"database {self.location} does not answer: {error}") from None
        return True

    def search_jobs(self, state=None, query=None, sort="created_at", descending=True, limit=50, offset=0,
                    queue=None, tag=None):
        """One page of job records and the number of matching jobs in all.

        `query` matches a substring of the id or the command (ignoring ASCII case); `queue` and `tag` keep the
        jobs of that queue, with that tag (InvalidInput for a malformed one);
        `sort` is a key of JOB_SORTS; the default order is the contract's: newest first."""
        if sort not in self.JOB_SORTS:
            raise InvalidInput(f"sort must be one of {', '.join(self.JOB_SORTS)}, got {sort!r}")
        clauses, params = [], {"limit": limit, "offset": offset}
        if state:
            clauses.append("state = :state")
            params["state"] = state
        if queue is not None:
            clauses.append("queue = :queue")
            params["queue"] = check_queue_name(queue)
        if tag is not None:
            # Tags are stored as a JSON list and hold no quote: '"tag"' occurs in it exactly when the job has it.
            clauses.append(self.q.tag_match)
            params["tag_json"] = json.dumps(check_tag(tag))
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

    def _oldest_waiting(self, now):
        """The run_at (ms) of the oldest due waiting job, None when none is due: a skip scan over the priorities,
        or a scan of the waiting jobs when they have more than OLDEST_WAITING_LEVELS priorities."""
        levels, oldest = self._read(self.q.oldest_waiting_levels, {"levels": self.OLDEST_WAITING_LEVELS}).fetchone()
        if levels >= self.OLDEST_WAITING_LEVELS:
            return self._read(self.q.oldest_waiting, {"now": now}).fetchone()[0]
        return oldest if oldest is not None and oldest <= now else None

    def metrics_snapshot(self, now=None):
        """What /metrics exports, read at once from the database: job counts (in total and per queue),
        finished runs by outcome, run durations (cumulative histogram buckets, count, sum), live workers, oldest
        waiting job's age.

        The run figures are totals kept as runs finish (migration "run totals"): a scrape reads a few rows
        however many runs there are, and deleting jobs (purge, retention) takes nothing off them."""
        now = now_ms() if now is None else now
        totals = {int(bucket): (int(succeeded), int(failed), int(duration_ms))
                  for bucket, succeeded, failed, duration_ms in self._read(self.q.run_totals).fetchall()}
        succeeded = sum(figures[0] for figures in totals.values())
        finished = succeeded + sum(figures[1] for figures in totals.values())
        duration_sum = sum(figures[2] for figures in totals.values()) / 1000.0
        buckets, within = [], 0
        for index, seconds in enumerate(self.RUN_DURATION_BUCKETS):
            within += sum(totals.get(index, (0, 0, 0))[:2])
            buckets.append((seconds, within))
        oldest = self._oldest_waiting(now)
        # Per queue from the counting table (a few rows per queue, no scan of jobs); the totals per state are their
        # sums, so both agree within one scrape.
        queues = self.queue_counts()
        queues.setdefault(DEFAULT_QUEUE, dict.fromkeys(STATES, 0))  # its series exist before the first job
        return {
            "jobs": {state: sum(found[state] for found in queues.values()) for state in STATES},
            "queues": queues,
            "runs": {"succeeded": succeeded, "failed": finished - succeeded},
            "durations": {"buckets": buckets, "count": finished, "sum": duration_sum},
            "workers": self.live_workers(now),
            "oldest_waiting_seconds": 0.0 if oldest is None else max(0.0, (now - oldest) / 1000),
            "paused": self.paused_since() is not None,
        }
