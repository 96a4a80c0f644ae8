"""The store's reads for the dashboard, the API and /metrics (mixed into Store)."""


import json

from ..errors import DatabaseUnusable, InvalidInput
from ..timeutil import now_ms, to_iso
from ..validation import check_queue_name, check_tag
from .records import _record
from .sql import JOB_COLUMNS, RUN_SUCCEEDED


class ReportsMixin:
    """Health, search with paging and sorting, throughput per minute, the metrics snapshot."""

    # Sort keys of search_jobs and their columns; `seq` (enqueue order) breaks ties so pages never overlap.
    JOB_SORTS = {
        "created_at": "seq", "updated_at": "updated_at", "run_at": "run_at", "priority": "priority",
        "attempts": "attempts", "state": "state", "id": "id", "command": "command",
    }
    # Upper bounds (seconds) of the run duration histogram that /metrics exports.
    RUN_DURATION_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600)

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
