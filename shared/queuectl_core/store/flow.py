"""Flow control: named queues with limits, rates and pauses, concurrency keys (mixed into Store).

The plain claim (runs.py) takes nothing while flow control may hold a job back (sql.FLOW_ON); the store then
claims here. The flow claim picks a job the way the plain one does, minus the jobs of blocked queues and of keys
without a free slot, as the statement's snapshot sees them; then, inside the same transaction, it takes the job's
slots under row locks: the queue's `queues` row (its running count, its rate window) and the key's key_slots row
(an upsert whose condition is checked on the locked, latest version). Concurrent claims of the last slot wait for
each other there and the second sees the first's count, so a limit holds exactly on PostgreSQL's concurrent claims
too (on SQLite every claim is serialized anyway). A claim refused there is rolled back to a savepoint and the next
candidate is tried. The slots are given back by triggers when a job leaves `processing` (any path: a result, a
hand-back of a lost worker's job).
"""

from ..errors import InvalidInput
from ..lifecycle import STATES
from ..timeutil import now_ms, to_iso
from ..validation import check_queue_limit, check_queue_name
from .records import Claim, _to_record
from .sql import BLOCKED_QUEUES, IS_PAUSED, JOB_COLUMNS, KEY_FREE, NOT_WAITING, QUEUE_OPEN, WAITING

FLOW_ATTEMPTS = 8  # candidates one flow claim tries before it answers "nothing now"
WINDOW = 64  # due jobs a scan of the flow claim looks at, at most (see _flow_sql)
MAX_HEADS = 400  # queues one claim compares heads of (SQLite allows 500 parts of a compound SELECT)
_UNITS = ((3600_000, "h"), (60_000, "m"), (1000, "s"))


def rate_text(count, period_ms):
    """A rate as `queue rate` takes it: 10/m, 100/30s."""
    for size, unit in _UNITS:
        if period_ms % size == 0:
            number = period_ms // size
            return f"{count}/{'' if number == 1 else number}{unit}"
    return f"{count}/{period_ms / 1000:g}s"


def claim_of(columns, row):
    """The Claim of a claimed row (seq, run_count, lease_token, JOB_COLUMNS) whose columns are named `columns`."""
    job = _to_record(dict(zip(columns[3:], row[3:], strict=False)))
    return Claim(seq=row[0], attempt=row[1], token=row[2], job=job)


class FlowMixin:
    """The flow claim and its slots; queue settings (limit, rate, pause); per-queue reads."""

    _flow = False  # this store's last knowledge: flow control was on (the plain claim is skipped then)
    _flow_statements = None

    # ---- the claim -------------------------------------------------------------------------------------------

    def _flow_claim(self, connection, params, worker_id, now, queues):
        """A claim through flow control, for every queue (`queues` None) or the given ones; None if nothing can
        run now."""
        statement = self._flow_statement(queues)
        if queues:
            params = dict(params, **{f"q{index}": queue for index, queue in enumerate(queues)})
        for _ in range(FLOW_ATTEMPTS):
            connection.execute("SAVEPOINT queuectl_claim", {})
            cursor = connection.execute(statement, params)
            row = cursor.fetchone()
            if row is None:
                connection.execute("RELEASE SAVEPOINT queuectl_claim", {})
                if queues is not None:
                    return None
                self._flow = bool(connection.execute(self.q.flow_on, {}).fetchone()[0])
                # Nothing in the window of every queue: what lies beyond it, queue by queue (a window each).
                open_queues = self._open_queues(connection, now) if self._flow else None
                return open_queues and self._flow_claim(connection, params, worker_id, now, open_queues)
            claim = self._opened(connection, cursor, row, worker_id, now, open_run=False)
            taken, blocked_until, started = self._take_slots(connection, claim.job, now)
            if taken:
                connection.execute(self.q.open_run, {"seq": claim.seq, "attempt": claim.attempt, "now": started,
                                                     "worker": worker_id})
                connection.execute("RELEASE SAVEPOINT queuectl_claim", {})
                return claim
            connection.execute("ROLLBACK TO SAVEPOINT queuectl_claim", {})
            connection.execute("RELEASE SAVEPOINT queuectl_claim", {})
            if blocked_until is not None:  # a full rate window: leave the queue out until it frees
                connection.execute(self.q.block_queue_until, {"queue": claim.job["queue"],
                                                              "rate_until": blocked_until})
        return None

    def _take_slots(self, connection, job, now):
        """Take the job's slots under row locks: (True, None, the run's start), or (False, until when a full rate
        window blocks its queue, else None, None)."""
        queue = job["queue"]
        row = connection.execute(self.q.queue_row_locked, {"queue": queue}).fetchone()
        # The lock may have been waited for (another claim of this queue committing): the start is now, not when
        # the claim began, or a rate's window and the runs' records would place it before the start it waited for.
        now = max(now, now_ms())
        if row is not None:
            _, max_running, rate_count, period, paused_at, running, _ = row
            if paused_at is not None or (max_running is not None and running >= max_running):
                return False, None, None
            rate_until = None
            if rate_count is not None:
                since = now - period
                connection.execute(self.q.prune_starts, {"queue": queue, "since": since})
                started, oldest = connection.execute(self.q.window_starts, {"queue": queue, "since": since}).fetchone()
                if started >= rate_count:
                    return False, oldest + period, None
                connection.execute(self.q.add_start, {"queue": queue, "now": now})
                if started + 1 >= rate_count:  # this start fills the window: blocked until its oldest start leaves
                    rate_until = (now if oldest is None else oldest) + period
            connection.execute(self.q.take_queue_slot, {"queue": queue, "rate_until": rate_until})
        key = job["concurrency_key"]
        if key is not None and connection.execute(
                self.q.take_key_slot, {"key": key, "limit": job["concurrency_limit"]}).fetchone() is None:
            return False, None, None
        if key is not None:
            now = max(now, now_ms())  # after the key's row lock, for the same reason
        return True, None, now

    def _opened(self, connection, cursor, row, worker_id, now, open_run=True):
        """The Claim of a claimed row (seq, run_count, lease_token, JOB_COLUMNS), its run opened (unless not
        `open_run`)."""
        if open_run:
            connection.execute(self.q.open_run, {"seq": row[0], "attempt": row[1], "now": now, "worker": worker_id})
        return claim_of([d[0] for d in cursor.description], row)

    def _flow_statement(self, queues):
        """The flow claim for every queue (None) or for `queues` (each through jobs_queue_ready, the heads of
        several compared: a sort of one row per queue, never of the waiting jobs)."""
        key = tuple(queues) if queues else None
        if self._flow_statements is None:
            self._flow_statements = {}
        statement = self._flow_statements.get(key)
        if statement is None:
            statement = self.q.dialect(self._flow_sql(key))
            self._flow_statements[key] = statement
        return statement

    def _flow_sql(self, queues):
        # Each scan looks at no more than WINDOW due jobs in its index's order (a bounded walk, whatever lies ahead:
        # a paused queue's backlog, a busy key's jobs) and takes the first whose queue is open and whose key has a
        # slot; the one-time tests (paused, this queue blocked) stop a scan before it starts.
        if queues is None:
            pick = self._window(self.q.ready_index, "", IS_PAUSED, queue_open=True, head=False)
        else:
            heads = []
            for index in range(len(queues)):
                blocked = f"(:q{index} IN ({BLOCKED_QUEUES}){f' OR {IS_PAUSED}' if len(queues) == 1 else ''})"
                heads.append(self._window(self.q.queue_index, f"queue = :q{index} AND", blocked, queue_open=False,
                                          head=len(queues) > 1))
            if len(heads) == 1:
                pick = heads[0]
            else:
                # The heads of several queues (one row each) compared: the only sort, never of waiting jobs.
                pick = " UNION ALL ".join(f"SELECT * FROM ({head}) AS head{index}" for index, head in enumerate(heads))
                pick = f"SELECT seq FROM ({pick}) AS heads WHERE NOT {IS_PAUSED} ORDER BY priority DESC, run_at, seq" \
                       " LIMIT 1"
        return (
            "UPDATE jobs SET state = 'processing', worker_id = :worker, lease_token = :token,"
            " lease_expires_at = :expires, updated_at = :now, run_count = run_count + 1"
            f" WHERE seq = ({pick}) RETURNING seq, run_count, lease_token, {JOB_COLUMNS}"
        )

    def _window(self, index, queue_term, one_time, queue_open, head):
        """A scan of at most WINDOW due jobs (of one queue when `queue_term` says so) picking the first that may
        run; `head`: also return its priority and run_at (for comparing heads)."""
        due = f"{queue_term} state IN ({WAITING}) AND run_at <= :now AND {NOT_WAITING}"
        order = "ORDER BY priority DESC, run_at, seq"
        columns = "seq, priority, run_at" if head else "seq"
        if self.q.flow_dialect == "sqlite":
            # A co-routine over the index yields candidates in its order; the outer filter stops at the first that
            # may run (no sort). The one-time test is in the LIMIT, which SQLite checks before scanning.
            checks = KEY_FREE.format(table="candidates") + (
                f" AND {QUEUE_OPEN.format(table='candidates')}" if queue_open else "")
            return (f"SELECT {columns} FROM (SELECT seq, priority, run_at, queue, concurrency_key, concurrency_limit"
                    f" FROM jobs {index} WHERE {due} {order}"
                    f" LIMIT CASE WHEN {one_time} THEN 0 ELSE {WINDOW} END) AS candidates WHERE {checks} LIMIT 1")
        # PostgreSQL: the window's seqs, then the first of them that may run, locked (SKIP LOCKED: another claimer's
        # rows are passed over; a row claimed meanwhile fails the state test on its new version).
        # The window is the outer side of a nested loop into the primary key, which keeps its order.
        checks = KEY_FREE.format(table="job") + (f" AND {QUEUE_OPEN.format(table='job')}" if queue_open else "")
        picked = ", ".join(f"job.{column}" for column in columns.split(", "))
        return (f"SELECT {picked} FROM (SELECT seq, priority, run_at FROM jobs WHERE {due} {order} LIMIT {WINDOW})"
                f" AS candidates JOIN jobs AS job ON job.seq = candidates.seq WHERE job.state IN ({WAITING})"
                f" AND {checks} AND NOT {one_time}"
                " ORDER BY candidates.priority DESC, candidates.run_at, candidates.seq LIMIT 1"
                " FOR UPDATE OF job SKIP LOCKED")

    def _open_queues(self, connection, now):
        """The queues a claim for every queue may still find work in once its window found nothing: those with
        waiting jobs, minus the blocked ones (None when there are none)."""
        waiting = {queue for queue, state, count in connection.execute(self.q.queue_counts, {}).fetchall()
                   if state in ("pending", "failed") and count}
        blocked = {row[0] for row in connection.execute(self.q.blocked_queues, {"now": now}).fetchall()}
        return sorted(waiting - blocked)[:MAX_HEADS] or None

    # ---- queue settings --------------------------------------------------------------------------------------

    def set_queue_limit(self, name, limit, actor=None):
        """At most `limit` jobs of queue `name` processing at once (None: no limit); returns the queue's entry."""
        check_queue_name(name)
        limit = check_queue_limit(limit)
        with self._transaction() as connection:
            self._queue_row(connection, name)
            connection.execute(self.q.set_queue_limit, {"queue": name, "limit": limit})
            connection.execute(self.q.drop_idle_queue, {"queue": name})
            self._wake(connection)
            self._audit(connection, actor, "queue-limit", name, {"limit": limit}, now_ms())
        return self.queue_info(name)

    def set_queue_rate(self, name, count, period_seconds, actor=None):
        """At most `count` job starts of queue `name` in any window of `period_seconds` (None: no rate)."""
        check_queue_name(name)
        if (count is None) != (period_seconds is None):
            raise InvalidInput("a rate needs both a count and a period (or neither, for none)")
        if count is not None and not (isinstance(count, int) and count >= 1 and period_seconds > 0):
            raise InvalidInput(f"rate must be a count >= 1 per a period > 0, got {count}/{period_seconds}s")
        with self._transaction() as connection:
            self._queue_row(connection, name)
            connection.execute(self.q.set_queue_rate, {
                "queue": name, "count": count,
                "period": None if period_seconds is None else int(period_seconds * 1000)})
            if count is None:
                connection.execute(self.q.drop_starts, {"queue": name})
            connection.execute(self.q.drop_idle_queue, {"queue": name})
            self._wake(connection)
            self._audit(connection, actor, "queue-rate", name, {"count": count, "period_seconds": period_seconds},
                        now_ms())
        return self.queue_info(name)

    def _pause_queue(self, name, now, actor=None):
        check_queue_name(name)
        with self._transaction() as connection:
            row = self._queue_row(connection, name)
            changed = row[4] is None
            if changed:
                connection.execute(self.q.set_queue_paused, {"queue": name, "paused_at": now})
            self._audit(connection, actor, "pause", f"queue {name}", {"changed": changed}, now)
        return changed

    def _resume_queue(self, name, now, actor=None):
        check_queue_name(name)
        with self._transaction() as connection:
            row = connection.execute(self.q.queue_row, {"queue": name}).fetchone()
            changed = row is not None and row[4] is not None
            if changed:
                connection.execute(self.q.set_queue_paused, {"queue": name, "paused_at": None})
                connection.execute(self.q.drop_idle_queue, {"queue": name})
                self._wake(connection)
            self._audit(connection, actor, "resume", f"queue {name}", {"changed": changed}, now)
        return changed

    def _queue_row(self, connection, name):
        """The queue's settings row, created (with its exact running count) if it has none."""
        row = connection.execute(self.q.queue_row, {"queue": name}).fetchone()
        if row is not None:
            return row
        if self.q.lock_queues:
            # PostgreSQL: wait for every transaction that may be claiming (they hold ROW EXCLUSIVE on jobs) to
            # commit, and keep new ones out until this does: the count below then includes every job claimed
            # without a slot, and every later claim sees this row and takes one.
            connection.execute(self.q.lock_queues, {})
        running = connection.execute(self.q.running_in_queue, {"queue": name}).fetchone()[0]
        connection.execute(self.q.add_queue, {"queue": name, "running": running})
        return connection.execute(self.q.queue_row, {"queue": name}).fetchone()

    # ---- reads -----------------------------------------------------------------------------------------------

    def queue_counts(self):
        """{queue: {state: n}} for every queue that ever held jobs (zeros included)."""
        result = {}
        for queue, state, count in self._read(self.q.queue_counts).fetchall():
            result.setdefault(queue, dict.fromkeys(STATES, 0))[state] = int(count)
        return result

    def queue_list(self):
        """Every queue that holds jobs or has a setting, by name: [{"name", "counts": {state: n}, "limit",
        "rate", "paused", "paused_since"}]."""
        counts = {queue: found for queue, found in self.queue_counts().items() if any(found.values())}
        settings = {row[0]: row for row in self._read(self.q.queue_rows).fetchall()}
        return [self._queue_entry(name, counts.get(name), settings.get(name))
                for name in sorted(set(counts) | set(settings))]

    def queue_info(self, name):
        """One queue's entry as queue_list gives it (a queue without jobs or settings: zeros and nulls)."""
        check_queue_name(name)
        counts = self.queue_counts().get(name)
        return self._queue_entry(name, counts, self._read(self.q.queue_row, {"queue": name}).fetchone())

    @staticmethod
    def _queue_entry(name, counts, setting):
        _, limit, rate_count, period, paused_at, running, _ = setting or (name, None, None, None, None, 0, None)
        return {
            "name": name, "counts": counts or dict.fromkeys(STATES, 0), "limit": limit,
            "rate": None if rate_count is None else rate_text(rate_count, period),
            "paused": paused_at is not None, "paused_since": to_iso(paused_at),
        }

    def has_unfinished_jobs(self, queues=None):
        """True while any job (of `queues`, when given) is pending, processing or failed."""
        if not queues:
            return self._read(self.q.any_unfinished).fetchone() is not None
        return any(self._read(self.q.waiting_in_queue, {"queue": queue}).fetchone() is not None
                   or self._read(self.q.processing_in_queue, {"queue": queue}).fetchone() is not None
                   for queue in queues)

