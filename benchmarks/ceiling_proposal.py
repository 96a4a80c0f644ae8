"""A measured proposal, not queuectl's code: set-based batched claims and finishes on PostgreSQL, beside the store's
claim_many / finish_runs, on the ceiling bench's terms (benchmarks/ceiling.py).

    .venv/bin/python benchmarks/ceiling_proposal.py [--claimers 1,4,16,64] [--output FILE]

The store's batched calls loop over the one-job statements: a batch of 10 sends 42 statements (a claim, a run
opened, a job finished, a run finished, per job; BEGIN and COMMIT). Here a batch is 4: BEGIN, one statement that
finishes every job of the batch and its run (unnest of the results, fenced by lease token as finish_job is), one
that claims up to 10 jobs and opens their runs (one SKIP LOCKED scan, LIMIT 10), COMMIT. Variants: the run's row
written once, at its finish (no INSERT at the claim, no UPDATE at the end), and the counting triggers disabled
(to price them; not a proposal). The plain path only: no flow control, hooks, dependents or cancels (the
prototype checks that every transition is a plain completion), which is all the bench's no-op jobs need.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ceiling  # noqa: E402
import ceiling_systems  # noqa: E402

COUNTING_TRIGGERS = (("jobs", "job_counts_update"), ("jobs", "slots_free"), ("jobs", "job_deps_done"),
                     ("runs", "run_totals_finish"))

FINISH = """
    WITH r AS (SELECT * FROM unnest(%(seqs)s::bigint[], %(tokens)s::text[], %(states)s::text[], %(attempts)s::int[],
                                    %(run_ats)s::bigint[], %(errors)s::text[], %(codes)s::int[], %(runs)s::int[],
                                    %(outputs)s::text[], %(offsets)s::bigint[], %(started)s::bigint[])
               AS r(seq, token, state, attempts, run_at, error, exit_code, attempt, output, output_offset, started_at)),
    done AS (
        UPDATE jobs SET state = r.state, attempts = r.attempts, run_at = r.run_at, last_error = r.error,
            exit_code = r.exit_code, updated_at = %(now)s, lease_token = NULL, lease_expires_at = NULL
        FROM r WHERE jobs.seq = r.seq AND jobs.lease_token = r.token AND jobs.state = 'processing'
            AND jobs.cancel_requested = 0
        RETURNING jobs.seq){runs}
    SELECT seq FROM done"""
RUN_UPDATED = """,
    finished AS (
        UPDATE runs SET finished_at = %(now)s, exit_code = r.exit_code, error = r.error, output = r.output,
            output_offset = r.output_offset
        FROM r JOIN done USING (seq) WHERE runs.job_seq = r.seq AND runs.attempt = r.attempt)"""
RUN_INSERTED = """,
    finished AS (
        INSERT INTO runs (job_seq, attempt, started_at, finished_at, exit_code, error, worker_id, output, output_offset)
        SELECT r.seq, r.attempt, r.started_at, %(now)s, r.exit_code, r.error, %(worker)s, r.output, r.output_offset
        FROM r JOIN done USING (seq))"""


def _claim_statement(open_run):
    from queuectl_core.store.sql import FLOW_ON, IS_PAUSED, JOB_COLUMNS, NOT_WAITING, WAITING

    returned = ", ".join("jobs." + column.strip() for column in JOB_COLUMNS.split(","))
    opened = (",\n    opened AS (INSERT INTO runs (job_seq, attempt, started_at, worker_id)"
              " SELECT seq, run_count, %(now)s, %(worker)s FROM claimed)") if open_run else ""
    return f"""
    WITH picked AS (
        SELECT seq FROM jobs WHERE state IN ({WAITING}) AND run_at <= %(now)s AND {NOT_WAITING}
            AND NOT {IS_PAUSED} AND NOT {FLOW_ON.format(keyed="")}
        ORDER BY priority DESC, run_at, seq LIMIT %(count)s FOR UPDATE SKIP LOCKED),
    claimed AS (
        UPDATE jobs SET state = 'processing', worker_id = %(worker)s,
            lease_token = substr(md5(random()::text || jobs.seq::text), 1, 16),
            lease_expires_at = %(expires)s, updated_at = %(now)s, run_count = jobs.run_count + 1
        FROM picked WHERE jobs.seq = picked.seq
        RETURNING jobs.seq, jobs.run_count, jobs.lease_token, {returned}){opened}
    SELECT * FROM claimed ORDER BY priority DESC, run_at, seq"""


def _set_store(run_row_once):
    """A PostgresStore whose claim_many and finish_runs are the set-based statements."""
    from queuectl_core.store.postgres import PostgresStore
    from queuectl_core.store.records import Claim, _to_record
    from queuectl_core.timeutil import now_ms

    claim_statement = _claim_statement(open_run=not run_row_once)
    finish_statement = FINISH.format(runs=RUN_INSERTED if run_row_once else RUN_UPDATED)

    class SetStore(PostgresStore):
        def _claim_set(self, connection, worker_id, lease_seconds, now, count):
            cursor = connection.execute(claim_statement, {
                "worker": worker_id, "expires": now + int(lease_seconds * 1000), "now": now, "count": count})
            rows = cursor.fetchall()
            columns = [column[0] for column in cursor.description]
            return [Claim(seq=row[0], attempt=row[1], token=row[2],
                          job=_to_record(dict(zip(columns[3:], row[3:], strict=False)))) for row in rows]

        def claim_many(self, worker_id, lease_seconds, count, now=None, queues=None):
            now = now_ms() if now is None else now
            with self._transaction() as connection:
                return self._claim_set(connection, worker_id, lease_seconds, now, count)

        def finish_runs(self, results, worker_id=None, lease_seconds=None, claim_count=0, now=None, queues=None):
            now = now_ms() if now is None else now
            decided = [(claim, output, offset, self._decide(claim.job, outcome, now, False))
                       for claim, outcome, output, offset in results]
            if any(t.state != "completed" or claim.job.get("on_success") for claim, _, _, t in decided):
                raise NotImplementedError("the prototype finishes plain completions only")
            with self._transaction() as connection:
                rows = connection.execute(finish_statement, {
                    "seqs": [c.seq for c, _, _, _ in decided], "tokens": [c.token for c, _, _, _ in decided],
                    "states": [t.state for _, _, _, t in decided], "attempts": [t.attempts for _, _, _, t in decided],
                    "run_ats": [t.run_at_ms for _, _, _, t in decided],
                    "errors": [t.last_error for _, _, _, t in decided],
                    "codes": [t.exit_code for _, _, _, t in decided], "runs": [c.attempt for c, _, _, _ in decided],
                    "outputs": [o for _, o, _, _ in decided], "offsets": [f for _, _, f, _ in decided],
                    "started": [now for _ in decided],  # the bench's runs take no time; a real one keeps its start
                    "now": now, "worker": worker_id}).fetchall()
                done = {row[0] for row in rows}
                claims = self._claim_set(connection, worker_id, lease_seconds, now, claim_count) if claim_count else []
            return [t if c.seq in done else None for c, _, _, t in decided], claims

    return SetStore


def _drain_with(store_class):
    def drain(url, jobs, claimers, probe):
        import queuectl_core.store as store_module

        original = store_module.open_store
        store_module.open_store = lambda location=None, **_: store_class(location)
        try:
            return ceiling_systems.queuectl_drain(url, jobs, claimers, probe, 10)
        finally:
            store_module.open_store = original
    return drain


def _prepare_without_counting(url, jobs):
    import psycopg

    ceiling_systems.queuectl_prepare(url, jobs)
    with psycopg.connect(url, autocommit=True) as connection:
        for table, trigger in COUNTING_TRIGGERS:
            connection.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")


def register():
    """Add the prototype's rows to ceiling_systems.SYSTEMS; their names."""
    rows = {
        "set batch 10": (None, ceiling_systems.queuectl_prepare, _drain_with(_set_store(False)),
                         "one finishing statement and one claiming statement per batch of 10"),
        "set batch 10, run row once": (None, ceiling_systems.queuectl_prepare, _drain_with(_set_store(True)),
                                       "the same, the run's row written once at its finish"),
        "set batch 10, no counting": (None, _prepare_without_counting, _drain_with(_set_store(False)),
                                      "set batch 10 with the counting triggers disabled (their price)"),
    }
    ceiling_systems.SYSTEMS.update(rows)
    return list(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--claimers", default="1,4,16,64")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    systems = ["queuectl batch 10", *register(), "pgqueuer batch 10"]
    result = ceiling.run(args.jobs, tuple(int(c) for c in args.claimers.split(",")), args.rounds, systems)
    print(ceiling.table(result))
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
