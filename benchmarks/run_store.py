"""The sections that time store calls: claim + complete by queue size, status and API reads, enqueue."""

import os
import shutil

from report import _peer, figure, log


def run_claims_and_reads(quick, sections, pg):
    import claims
    import reads

    sizes = (1_000, 10_000, 100_000) if quick else (1_000, 10_000, 100_000, 1_000_000)
    paths, schemas, pg_seeding = {}, {}, {}
    try:
        for size in sizes:
            paths[size], seconds = claims.build(size)
            log(f"seeded {size} pending jobs in {seconds:.1f}s")
        if pg:
            for size in sizes:
                schemas[size], inserted, analyzed = claims.build_postgres(size)
                pg_seeding[size] = {"insert_seconds": inserted, "analyze_seconds": analyzed}
                log(f"PostgreSQL: seeded {size} pending jobs in {inserted:.1f}s (+ ANALYZE {analyzed:.1f}s)")
            # The same claims with synchronous_commit off (the cost is flat in the size: 1k tells it).
            schemas["async", 1_000] = claims.build_postgres(1_000, synchronous_commit="off")[0]
        return _claims_and_reads(quick, sections, claims, reads, sizes, paths, schemas, pg_seeding)
    finally:
        for path in paths.values():
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)  # the big files go as soon as they are used
        for schema in schemas.values():
            schema.drop()


def _label(size):
    return "1M" if size == 1_000_000 else f"{size // 1000}k"


def _claims_and_reads(quick, sections, claims, reads, sizes, paths, schemas, pg_seeding):
    rows, series = [], {}
    big = max(sizes)
    big_label = _label(big)
    if "claims" in sections or schemas:
        locations = {("sqlite", size): path for size, path in paths.items()}
        locations.update({("postgres", size) if isinstance(size, int) else size: schema.url
                          for size, schema in schemas.items()})
        measured = claims.measure(locations, rounds=3 if quick else 5)
        costs = {size: measured[("sqlite", size)] for size in sizes}
        small_cost, big_cost = costs[1_000]["median_us"], costs[big]["median_us"]
        log(f"claim + complete: {measured}")
        series["claim_cost_by_queue_size"] = {str(k): v["median_us"] for k, v in costs.items()}
        if "claims" in sections:
            ratio = big_cost / small_cost
            rows.append(figure(
                "claim_flat", f"claim + complete, 1k vs {big_label} waiting jobs", ratio, "×", "≤ 1.5×",
                ratio <= 1.5, ratio,
                note=f"{small_cost:.0f} µs at 1k, {big_cost:.0f} µs at {big_label} (claim "
                     f"{costs[big]['claim_us']:.0f} + finish {costs[big]['finish_us']:.0f} µs)",
                costs={str(k): v for k, v in costs.items()}))
        if schemas:
            pg_costs = {size: measured[("postgres", size)] for size in sizes}
            pg_small, pg_big = pg_costs[1_000]["median_us"], pg_costs[big]["median_us"]
            unsynced = measured["async", 1_000]
            ratio = pg_big / pg_small
            seeding = pg_seeding[big]
            rows.append(figure(
                "pg_claim_flat", f"PostgreSQL: claim + complete, 1k vs {big_label} waiting jobs", ratio, "×",
                "≤ 1.5×", ratio <= 1.5, ratio,
                note=f"{pg_small:.0f} µs at 1k, {pg_big:.0f} µs at {big_label} (claim {pg_costs[big]['claim_us']:.0f}"
                     f" + finish {pg_costs[big]['finish_us']:.0f} µs); {pg_big / big_cost:.1f} × SQLite's "
                     f"{big_cost:.0f} µs in the same rounds; with synchronous_commit off {unsynced['median_us']:.0f} µs"
                     f" at 1k; {big_label} seeded in {seeding['insert_seconds']:.1f} s"
                     f" (INSERT … SELECT generate_series) + ANALYZE {seeding['analyze_seconds']:.1f} s",
                costs={str(k): v for k, v in pg_costs.items()}, synchronous_commit_off_1k=unsynced,
                seeding={str(k): v for k, v in pg_seeding.items()}))
            series["postgres_claim_cost_by_queue_size"] = {str(k): v["median_us"] for k, v in pg_costs.items()}
    label = f"{big // 1000}k jobs" if big < 1_000_000 else "1M jobs"
    inner = None
    if "reads" in sections:
        path = paths[big]
        inner = reads.in_process(path)
        log(f"store calls at {big} jobs: {inner}")
        status = reads.status_cli(path)
        log(f"queuectl status --json: {status}")
        api = reads.api(path)
        log(f"API: {api}")
        rows.append(figure("status_store", f"status query with {label} (store.status(): what the CLI and API run)",
                           inner["status_ms"], "ms", "≤ 50 ms", inner["status_ms"] <= 50, inner["status_ms"] / 50,
                           note=f"counts() {inner['counts_ms']:.2f} ms", **inner))
        rows.append(figure("status_cli", f"`queuectl status --json`, one process, with {label}",
                           status["median_ms"], "ms", "≤ 50 ms", status["median_ms"] <= 50,
                           status["median_ms"] / 50,
                           note=f"{status['empty_ms']:.0f} ms on an empty queue; a bare `python -c pass` "
                                f"{status['python_pass_ms']:.0f} ms, `queuectl --help` {status['help_ms']:.0f} ms",
                           **status))
        if "skipped" in api:
            rows.append(figure("api_stats", f"GET /api/v1/stats with {label}", None, "ms", "≤ 50 ms", None,
                               note="skipped: " + api["skipped"]))
            rows.append(figure("api_jobs", f"dashboard job list (GET /api/v1/jobs) with {label}", None, "ms",
                               "≤ 50 ms", None, note="skipped: " + api["skipped"]))
        else:
            rows.append(figure("api_stats", f"GET /api/v1/stats with {label}", api["stats_ms"], "ms", "≤ 50 ms",
                               api["stats_ms"] <= 50, api["stats_ms"] / 50, note="gunicorn, sync workers"))
            rows.append(figure("api_jobs", f"dashboard job list (GET /api/v1/jobs, 50 newest) with {label}",
                               api["jobs_ms"], "ms", "≤ 50 ms", api["jobs_ms"] <= 50, api["jobs_ms"] / 50,
                               note=f"store.search_jobs() alone {inner['search_jobs_ms']:.1f} ms"))
    if schemas:
        if inner is None:
            inner = reads.in_process(paths[big])
        theirs = reads.in_process(schemas[big].url)
        log(f"PostgreSQL store calls at {big} jobs: {theirs}")
        rows.append(figure(
            "pg_status", f"PostgreSQL: status query with {label} (store.status(): what the CLI and API run)",
            theirs["status_ms"], "ms", "≤ 50 ms", theirs["status_ms"] <= 50, theirs["status_ms"] / 50,
            note=f"counts() {theirs['counts_ms']:.1f} ms, search_jobs() (the dashboard's list) "
                 f"{theirs['search_jobs_ms']:.1f} ms; SQLite in the same run {inner['status_ms']:.2f} ms and "
                 f"{inner['search_jobs_ms']:.1f} ms", sqlite=inner, **theirs))
    return rows, series


def run_enqueue(quick, sections, pg):
    import enqueue

    rows = []
    if "enqueue" in sections:
        rows += _enqueue_sqlite(quick, enqueue)
    if pg:
        rows += _enqueue_postgres(quick, enqueue)
    return rows, {}


def _enqueue_postgres(quick, enqueue):
    """One job per call and enqueue_many of 100k, PostgreSQL and SQLite alternating."""
    import postgres
    from queuectl_core.store import open_store

    def fresh_postgres():
        schema = postgres.Schema()
        open_store(schema.url).close()
        return schema.url, schema.drop

    def fresh_sqlite():
        path = enqueue._fresh_db("enqueue-beside-pg")
        return path, lambda: shutil.rmtree(os.path.dirname(path), ignore_errors=True)

    seconds = 0.5 if quick else 1.0
    (sqlite_path, sqlite_gone), (pg_url, pg_gone) = fresh_sqlite(), fresh_postgres()
    try:
        one = enqueue.backends_one_per_call({"sqlite": sqlite_path, "postgres": pg_url}, seconds)
    finally:
        sqlite_gone()
        pg_gone()
    log(f"one per call, SQLite and PostgreSQL alternating: {one}")
    count = 20_000 if quick else 100_000
    bulk = enqueue.backends_bulk({"sqlite": fresh_sqlite, "postgres": fresh_postgres}, count)
    log(f"enqueue_many of {count}, SQLite and PostgreSQL alternating: {bulk}")
    rate, beside = one["postgres"]["jobs_per_second"], one["sqlite"]["jobs_per_second"]
    bulk_rate, bulk_beside = bulk["postgres"]["jobs_per_second"], bulk["sqlite"]["jobs_per_second"]
    return [
        figure("pg_enqueue_python", "PostgreSQL: enqueue from Python, one job per call (store.enqueue + check_job)",
               rate, "/s", "-", None,
               note=f"{rate / beside:.2f} × SQLite ({beside:,.0f}/s); best of {len(one['postgres']['windows'])}"
                    f" windows of {seconds:g} s, alternating with SQLite's", sqlite=one["sqlite"], **one["postgres"]),
        figure("pg_enqueue_bulk", f"PostgreSQL: store.enqueue_many of {count // 1000}k checked jobs (COPY)",
               bulk_rate, "/s", "-", None,
               note=f"{bulk_rate / bulk_beside:.2f} × SQLite's enqueue_many ({bulk_beside:,.0f}/s) of the same "
                    f"jobs; best of {len(bulk['postgres']['seconds'])}, alternating; check_job outside the timing",
               sqlite=bulk["sqlite"], **bulk["postgres"]),
    ]


def _enqueue_sqlite(quick, enqueue):
    ours = enqueue.python_one_per_call(0.5 if quick else 1.0)
    log(f"python enqueue: {ours}")
    peers = {"huey": _peer(enqueue.huey_one_per_call, 0.5 if quick else 1.0),
             "rq": _peer(enqueue.rq_one_per_call, 0.5 if quick else 1.0)}
    log(f"peers: {peers}")
    bulk = enqueue.bulk_file(20_000 if quick else 100_000)
    log(f"bulk: {bulk}")
    one = enqueue.cli_one(5 if quick else 15)
    log(f"one enqueue process: {one}")
    rate = ours["jobs_per_second"]
    return [
        figure("enqueue_python", "enqueue from Python, one job per call (SqliteStore.enqueue + check_job)", rate,
               "/s", "≥ 10,000/s", rate >= 10_000, rate / 10_000,
               note=f"best of {len(ours['windows'])} windows of {ours['window_seconds']:g} s: "
                    + ", ".join(f"{r:,.0f}" for r in ours["windows"]), peers=peers, **ours),
        figure("enqueue_bulk", f"bulk enqueue of {bulk['jobs'] // 1000}k jobs, one `queuectl enqueue --file`",
               bulk["jobs_per_second"], "/s", "≥ 100,000/s", bulk["jobs_per_second"] >= 100_000,
               bulk["jobs_per_second"] / 100_000,
               note=f"{bulk['seconds']:.2f} s wall; raw SQLite inserts of the same rows "
                    f"{bulk['raw_sqlite_rows_per_second']:,.0f}/s", **bulk),
        figure("enqueue_cli", "one `queuectl enqueue` process, wall (median)", one["median_ms"], "ms", "≤ 120 ms",
               one["median_ms"] <= 120, one["median_ms"] / 120,
               note=f"{one['ratio_to_python']:.2f}× a bare `python -c pass` ({one['python_pass_ms']:.0f} ms)",
               **one),
    ]


def run_batch(quick):
    """Jobs/s through POST /api/v1/jobs/batch (10,000-job batches) beside one job per POST (issue 18)."""
    import batch

    result = batch.measure(batches=3 if quick else 5, one_seconds=1.0 if quick else 2.0)
    log(f"batch route: {result}")
    if "skipped" in result:
        return [figure("api_batch", "POST /api/v1/jobs/batch, 10,000-job batches", None, "/s", "≥ 20,000/s", None,
                       note="skipped: " + result["skipped"])]
    rate, one = result["batch_jobs_per_second"], result["one_jobs_per_second"]
    return [
        figure("api_batch", "POST /api/v1/jobs/batch, 10,000-job batches (gunicorn, SQLite)", rate, "/s",
               "≥ 20,000/s", rate >= 20_000, rate / 20_000,
               note=f"best of {len(result['batch_rates'])} batches: "
                    + ", ".join(f"{r:,.0f}" for r in result["batch_rates"])
                    + f"; {rate / one:,.0f} × one job per POST", **result),
        figure("api_enqueue_one", "POST /api/v1/jobs, one job per request (gunicorn, SQLite)", one, "/s", "-",
               None, note=f"{result['one_requests']} requests, one connection each", **result),
    ]
