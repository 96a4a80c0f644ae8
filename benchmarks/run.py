"""`make bench`: every figure of issue 5 in one run, side by side with the machine's own limits and
with the peers, and the PostgreSQL backend's figures (issue 6) beside SQLite's; prints the table,
writes results/latest.json and the PNG plots.

    .venv/bin/python benchmarks/run.py            # the whole suite (about 6-8 minutes on 2 cores)
    .venv/bin/python benchmarks/run.py --check    # exit 1 if results/latest.json misses a target
                                                  # (runs the suite first when there is no such file)
    .venv/bin/python benchmarks/run.py --only claims,reads   # some sections (the others stay out)
    .venv/bin/python benchmarks/run.py --only postgres       # PostgreSQL, with SQLite beside it

The postgres section runs when a server answers at QUEUECTL_BENCH_POSTGRES (or --postgres URL;
default postgresql://postgres@127.0.0.1:5432/test) and is skipped with the reason otherwise. Each
queue it measures lives in a schema of its own (qbench_<pid>_<hex>), dropped after use.
"""

import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
LATEST = os.path.join(RESULTS, "latest.json")
SECTIONS = ("throughput", "latency", "claims", "enqueue", "reads", "postgres")
PG_WORKERS = (2, 4, 8)
PEERS = ("huey", "rq-simple", "rq")


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def figure(key, name, value, unit, target, met, ratio=None, note="", peers=None, **detail):
    """One row of the table."""
    return {"key": key, "figure": name, "value": value, "unit": unit, "target": target, "ratio": ratio,
            "met": met, "note": note, "peers": peers or {}, "detail": detail}


def _peer(callable_, *args, **kwargs):
    """A peer's result, or {'skipped': reason} when its package or server is absent."""
    from systems import Unavailable

    try:
        return callable_(*args, **kwargs)
    except Unavailable as error:
        return {"skipped": str(error)}
    except Exception as error:  # a peer that breaks must not take the suite down
        return {"skipped": f"failed: {error!r}"}


def run_throughput(quick, sections, pg):
    """SQLite (and, with `pg`, PostgreSQL) throughput by worker count; with the throughput section also
    the raw spawn rate, the runner alone, the preexec_fn A/B and the peers. SQLite and PostgreSQL run
    in alternating rounds, so their ratio is measured at the same moments."""
    import statistics

    import spawn
    import systems

    base = "throughput" in sections
    jobs = 500 if quick else 2000
    reps = 1 if quick else 3

    cpu = {}  # (system, workers): [CPU ms per job by process group, one per round]

    def measure(system, count):
        result = systems.throughput(system, count, jobs)
        rate = result["jobs_per_second"]
        if "cpu_ms_per_job" in result:
            cpu.setdefault((system, count), []).append(result["cpu_ms_per_job"])
        log(f"{system}, {count} workers, {jobs} jobs: {rate:.0f}/s; CPU ms per job {result.get('cpu_ms_per_job')}")
        return rate

    raw, ours, pg_rounds, async_rounds = [], [], {}, []
    for rep in range(reps):  # interleaved: the machine's limit and queuectl at the same moments
        if base:
            raw.append(spawn.spawn_rate(2, 2.0))
            log(f"raw spawn from 2 processes: {raw[-1]:.0f}/s")
        ours.append(measure("queuectl", 2))
        if pg:
            pg_rounds.setdefault(2, []).append(measure("queuectl-postgres", 2))
            async_rounds.append(measure("queuectl-postgres-async", 2))
        log(f"(round {rep + 1}/{reps})")
    our_rate = statistics.median(ours)
    by_workers = {"2": our_rate}
    sqlite_rounds = {2: ours}
    raw_by_processes = {}
    if base:
        raw_rate = statistics.median(raw)
        raw_by_processes["2"] = raw_rate
    for count in ((1, 4, 8) if base else (4, 8)):
        if base:
            raw_by_processes[str(count)] = spawn.spawn_rate(count, 1.5)
            log(f"raw spawn from {count}: {raw_by_processes[str(count)]:.0f}/s")
        if pg and count in PG_WORKERS:
            # A B B A: a drift of the machine's load during the four runs hits both backends alike.
            order = ("queuectl", "queuectl-postgres") if quick else \
                ("queuectl", "queuectl-postgres", "queuectl-postgres", "queuectl")
            for system in order:
                found = measure(system, count)
                (pg_rounds if system == "queuectl-postgres" else sqlite_rounds).setdefault(count, []).append(found)
            by_workers[str(count)] = statistics.median(sqlite_rounds[count])
        else:
            by_workers[str(count)] = measure("queuectl", count)
            sqlite_rounds[count] = [by_workers[str(count)]]
    rows, series = [], {"throughput_by_workers": by_workers}
    if base:
        runner_rate = spawn.spawn_rate(2, 2.0, "runner")
        log(f"queuectl's runner spawning alone, 2 processes: {runner_rate:.0f}/s")
        preexec_spawn = spawn.spawn_rate(2, 2.0, "worker")
        preexec = systems.throughput("queuectl-preexec", 2, jobs)["jobs_per_second"]
        log(f"the preexec_fn fallback: spawning alone {preexec_spawn:.0f}/s, 2 workers {preexec:.0f}/s")
        peers = {}
        for name in PEERS:
            result = _peer(systems.throughput, name, 2, jobs)
            if "jobs_per_second" in result:
                result["ratio_to_raw"] = result["jobs_per_second"] / raw_rate
            peers[name] = result
            log(f"peer {name}: {result}")
        ratio = our_rate / raw_rate
        rows += [
            figure("raw_spawn", "raw `/bin/sh -c true` spawns from 2 Python processes", raw_rate, "/s",
                   "the limit", None, note=f"median of {reps}; rounds {', '.join(f'{r:.0f}' for r in raw)}",
                   rounds=raw, runner_spawn_rate=runner_rate),
            figure("throughput", f"no-op jobs (`true`), 2 workers, {jobs} jobs, enqueued to all done", our_rate,
                   "/s", "≥ 0.7 × raw spawn rate", ratio >= 0.7, ratio,
                   note=f"median of {reps}; rounds {', '.join(f'{r:.0f}' for r in ours)}; the runner spawning "
                        f"alone {runner_rate:.0f}/s; with the preexec_fn fallback {preexec:.0f}/s (spawning alone "
                        f"{preexec_spawn:.0f}/s)", peers=peers, rounds=ours, preexec_fallback=preexec,
                   preexec_fallback_spawn_rate=preexec_spawn),
        ]
        series.update({"raw_spawn_by_processes": raw_by_processes, "preexec_fallback_2_workers": preexec,
                       "peer_throughput_2_workers": {k: v.get("jobs_per_second") for k, v in peers.items()}})
    if pg:
        pg_by_workers = {}
        for count in PG_WORKERS:
            rate, beside = statistics.median(pg_rounds[count]), statistics.median(sqlite_rounds[count])
            pg_by_workers[str(count)] = rate
            how = {1: "one round each", 2: "2 rounds each, A B B A order"}.get(
                len(pg_rounds[count]), f"median of {len(pg_rounds[count])} alternating rounds")
            pg_cpu, sqlite_cpu = _cpu_median(cpu.get(("queuectl-postgres", count))), \
                _cpu_median(cpu.get(("queuectl", count)))
            cpu_note = ""
            if count == 2 and pg_cpu and sqlite_cpu:
                cpu_note = (f"; CPU per job: workers {pg_cpu['workers']:.1f} + job shells {pg_cpu['job_processes']:.1f}"
                            f" + PostgreSQL backends {pg_cpu['server_backends']:.1f} ms (SQLite: "
                            f"{sqlite_cpu['workers']:.1f} + {sqlite_cpu['job_processes']:.1f} ms)")
            rows.append(figure(
                f"pg_throughput_{count}", f"PostgreSQL: no-op jobs, {count} workers, {jobs} jobs, enqueued to all done",
                rate, "/s", "-", None,
                note=f"{rate / beside:.2f} × SQLite ({beside:.0f}/s in the same rounds; round by round "
                     f"{', '.join(f'{p / q:.2f}' for p, q in zip(pg_rounds[count], sqlite_rounds[count]))}); {how}; "
                     f"PostgreSQL {', '.join(f'{r:.0f}' for r in pg_rounds[count])}, SQLite "
                     f"{', '.join(f'{r:.0f}' for r in sqlite_rounds[count])}" + cpu_note,
                rounds=pg_rounds[count], sqlite_rounds=sqlite_rounds[count], ratio_to_sqlite=rate / beside,
                cpu_ms_per_job=pg_cpu, sqlite_cpu_ms_per_job=sqlite_cpu))
        rate, beside = statistics.median(async_rounds), statistics.median(sqlite_rounds[2])
        rows.append(figure(
            "pg_async_throughput_2", f"PostgreSQL with synchronous_commit off: no-op jobs, 2 workers, {jobs} jobs",
            rate, "/s", "-", None,
            note=f"{rate / beside:.2f} × SQLite, {rate / pg_by_workers['2']:.2f} × PostgreSQL with it on, in the same "
                 f"rounds; rounds {', '.join(f'{r:.0f}' for r in async_rounds)}; set per connection in the URL "
                 f"(like SQLite's default durability: a server crash may lose the last commits)",
            rounds=async_rounds, ratio_to_sqlite=rate / beside))
        series["postgres_throughput_by_workers"] = pg_by_workers
        series["postgres_async_throughput_2_workers"] = rate
    return rows, series


def _cpu_median(rounds):
    """The median of each process group's CPU ms per job over rounds (None without rounds)."""
    import statistics

    if not rounds:
        return None
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def run_latency(quick, sections, pg):
    import latency

    samples = 10 if quick else 25
    ours = latency.pickup("queuectl", samples)  # with `pg` alone too: SQLite's figure beside PostgreSQL's
    log(f"queuectl pickup: {ours}")
    rows = []
    if "latency" in sections:
        peers = {}
        for name in ("huey", "rq-simple"):
            peers[name] = _peer(latency.pickup, name, samples)
            log(f"peer {name} pickup: {peers[name]}")
        rows += [
            figure("pickup", "idle pickup, enqueue to start, median (1 worker)", ours["median_ms"], "ms", "≤ 5 ms",
                   ours["median_ms"] <= 5, ours["median_ms"] / 5,
                   note=f"p90 {ours['p90_ms']:.1f} ms, {ours['samples']} jobs", peers=peers, **ours),
            figure("idle_cpu", "idle worker CPU (supervisor + worker, psutil)", ours["idle_cpu_percent"], "%",
                   "< 1 %", ours["idle_cpu_percent"] < 1, ours["idle_cpu_percent"] / 1,
                   note=f"over {ours['idle_cpu_window_seconds']:g} s",
                   peers={k: {"idle_cpu_percent": v.get("idle_cpu_percent"), **({"skipped": v["skipped"]}
                                                                              if "skipped" in v else {})}
                          for k, v in peers.items()}),
        ]
    if pg:
        theirs = latency.pickup("queuectl-postgres", samples)
        log(f"queuectl on PostgreSQL pickup: {theirs}")
        rows += [
            figure("pg_pickup", "PostgreSQL: idle pickup with LISTEN/NOTIFY, enqueue committed to run start, "
                   "median (1 worker)", theirs["after_commit_median_ms"], "ms", "≤ 5 ms",
                   theirs["after_commit_median_ms"] <= 5, theirs["after_commit_median_ms"] / 5,
                   note=f"p90 {theirs['after_commit_p90_ms']:.1f} ms, {theirs['samples']} jobs (whole ms); from the "
                        f"start of the enqueue call (as SQLite's pickup row): median {theirs['median_ms']:.1f} ms, p90 "
                        f"{theirs['p90_ms']:.1f} ms; the call alone (to its commit) "
                        f"{theirs['enqueue_call_ms']:.1f} ms; "
                        f"SQLite (inotify) in the same run: {ours['after_commit_median_ms']:.1f} ms after the commit, "
                        f"{ours['median_ms']:.1f} ms from the call", sqlite=ours, **theirs),
            figure("pg_idle_cpu", "PostgreSQL: idle worker CPU (supervisor + worker + their server backends)",
                   theirs["idle_cpu_percent"], "%", "< 1 %", theirs["idle_cpu_percent"] < 1,
                   theirs["idle_cpu_percent"] / 1,
                   note=f"over {theirs['idle_cpu_window_seconds']:g} s; SQLite {ours['idle_cpu_percent']:.2f} %"),
        ]
    return rows, {}


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


ORDER = ("raw_spawn", "throughput", "pickup", "idle_cpu", "claim_flat", "enqueue_python", "enqueue_bulk",
         "enqueue_cli", "status_store", "status_cli", "api_stats", "api_jobs",
         "pg_skipped", "pg_throughput_2", "pg_throughput_4", "pg_throughput_8", "pg_async_throughput_2",
         "pg_pickup", "pg_idle_cpu",
         "pg_claim_flat", "pg_enqueue_python", "pg_enqueue_bulk", "pg_status")


def format_value(row):
    value = row["value"]
    if value is None:
        return "skipped"
    if row["unit"] == "/s":
        return f"{value:,.0f}/s"
    if row["unit"] == "×":
        return f"{value:.2f}×"
    if row["unit"] == "%":
        return f"{value:.2f} %"
    return f"{value:.2f} {row['unit']}" if value < 10 else f"{value:.1f} {row['unit']}"


def verdict(row):
    return {True: "met", False: "MISSED", None: "-"}[row["met"]]


def table(rows, markdown=False):
    """The table as text (or as Markdown for docs/performance.md)."""
    lines = []
    header = ("figure", "value", "target", "ratio", "met")
    body = [(r["figure"], format_value(r), r["target"], "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
             verdict(r)) for r in rows]
    if markdown:
        lines.append("| " + " | ".join(header) + " | note |")
        lines.append("|" + "---|" * (len(header) + 1))
        for row, cells in zip(rows, body):
            lines.append("| " + " | ".join(cells) + f" | {row['note']} |")
        return "\n".join(lines)
    widths = [max(len(h), *(len(c[i]) for c in body)) for i, h in enumerate(header)]
    for cells in (header, *body):
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    return "\n".join(lines)


def peers_table(rows):
    """The peers' figures beside ours, for the same rows."""
    lines = []
    for row in rows:
        for name, result in row["peers"].items():
            if "skipped" in result:
                text = "skipped: " + result["skipped"]
            elif "jobs_per_second" in result:
                text = f"{result['jobs_per_second']:,.0f}/s"
            elif "median_ms" in result:
                text = f"median {result['median_ms']:.1f} ms, idle CPU {result['idle_cpu_percent']:.2f} %"
            elif "idle_cpu_percent" in result:
                text = f"{result['idle_cpu_percent']:.2f} %"
            else:
                text = json.dumps(result)
            lines.append((row["key"], name, text))
    return lines


def _postgres_line(meta):
    server = meta.get("postgres")
    if not server:
        return ""
    return (f" PostgreSQL {server['server_version'].split()[0]} on the same machine ({server['url']}; "
            f"synchronous_commit {server['synchronous_commit']}, fsync {server['fsync']}, autovacuum "
            f"{server['autovacuum']}, shared_buffers {server['shared_buffers']}).")


def markdown(result):
    """The results as Markdown: the machine, the table, the peers (pasted into docs/performance.md)."""
    meta = result["machine"]
    dirty = " (work tree modified)" if meta["work_tree_dirty"] else ""
    lines = [
        f"Measured {meta['finished_at']} at commit {meta['commit']}{dirty}"
        f" in {meta['seconds']:.0f} s: {meta['nproc']} × {meta['cpu_model']}, Python {meta['python']},"
        f" SQLite {meta['sqlite']}, Linux {meta['kernel']}; load average {meta['load_average_at_start'][0]:.2f}"
        f" at the start, {meta['load_average_at_end'][0]:.2f} at the end." + _postgres_line(meta),
        "",
        table(result["figures"], markdown=True),
    ]
    peers = peers_table(result["figures"])
    if peers:
        lines += ["", "| peer | figure | value |", "|---|---|---|"]
        lines += [f"| {name} | {key} | {text} |" for key, name, text in peers]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when results/latest.json misses a target")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections to run: {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="smaller loads, for trying the suite out")
    parser.add_argument("--output", default=LATEST, help="results JSON (default benchmarks/results/latest.json)")
    parser.add_argument("--keep", action="store_true", help="keep this run's scratch files (under /tmp/queuectl-bench)")
    parser.add_argument("--postgres", metavar="URL", default=None,
                        help="the PostgreSQL server of the postgres section (default $QUEUECTL_BENCH_POSTGRES, else "
                             "postgresql://postgres@127.0.0.1:5432/test); a schema of its own per queue")
    args = parser.parse_args(argv)
    if args.postgres:
        os.environ["QUEUECTL_BENCH_POSTGRES"] = args.postgres
    if args.check:
        return check(args.output)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    began = time.time()
    scratch = _run_scratch()
    try:
        return _run(args, sections, began)
    finally:
        if args.keep:
            print(f"scratch files kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def _run_scratch():
    """This run's own directory for databases and logs (QUEUECTL_BENCH_TMP, else under /tmp)."""
    import tempfile

    root = os.environ.get("QUEUECTL_BENCH_TMP") or os.path.join(tempfile.gettempdir(), "queuectl-bench")
    os.makedirs(root, exist_ok=True)
    os.environ["QUEUECTL_BENCH_TMP"] = tempfile.mkdtemp(prefix="run-", dir=root)
    return os.environ["QUEUECTL_BENCH_TMP"]


def _postgres(sections, meta):
    """True when the postgres section runs; else False, with a row saying why it was skipped."""
    if "postgres" not in sections:
        return False, []
    import postgres

    reason = postgres.missing_reason()
    if reason:
        log(f"PostgreSQL figures skipped: {reason}")
        return False, [figure("pg_skipped", "PostgreSQL backend (throughput, pickup, claim cost, enqueue, status)",
                              None, "", "-", None, note=f"skipped: {reason}")]
    meta["postgres"] = postgres.server()
    log(f"PostgreSQL: {meta['postgres']}")
    return True, []


def _run(args, sections, began):
    meta = machine()
    log(f"machine: {meta}")
    pg, rows = _postgres(sections, meta)
    series = {}
    if "throughput" in sections or pg:
        more_rows, more_series = run_throughput(args.quick, sections, pg)
        rows += more_rows
        series.update(more_series)
    if "latency" in sections or pg:
        rows += run_latency(args.quick, sections, pg)[0]
    if "claims" in sections or "reads" in sections or pg:
        more_rows, more_series = run_claims_and_reads(args.quick, sections, pg)
        rows += more_rows
        series.update(more_series)
    if "enqueue" in sections or pg:
        rows += run_enqueue(args.quick, sections, pg)[0]
    rows.sort(key=lambda r: ORDER.index(r["key"]))
    meta["load_average_at_end"] = os.getloadavg()
    meta["seconds"] = time.time() - began
    meta["sections"] = sections
    meta["quick"] = args.quick
    meta["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result = {"machine": meta, "figures": rows, "series": series}
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(result, handle, indent=2)
    with open(os.path.splitext(args.output)[0] + ".md", "w") as handle:
        handle.write(markdown(result))
    print(table(rows))
    print()
    for key, name, text in peers_table(rows):
        print(f"  peer {name:<10} {key:<16} {text}")
    print(f"\n{meta['seconds']:.0f} s; load average {meta['load_average_at_start']} at the start, "
          f"{meta['load_average_at_end']} at the end; results in {os.path.relpath(args.output)}")
    try:
        import plots

        stem = os.path.splitext(os.path.basename(args.output))[0]
        prefix = "" if stem == "latest" else f"{stem}-"  # make bench-postgres: postgres-throughput.png, ...
        for path in plots.draw(result, os.path.dirname(os.path.abspath(args.output)), prefix):
            print(f"plot: {os.path.relpath(path)}")
    except ImportError as error:
        print(f"no plots: {error} (pip install -r benchmarks/requirements.txt)")
    return 0


def check(path):
    """Exit status 1 when a figure of `path` missed its target; runs the suite first if it is absent."""
    if not os.path.exists(path):
        print(f"{path} does not exist: running the suite first", file=sys.stderr)
        main(["--output", path])
    with open(path) as handle:
        result = json.load(handle)
    rows = result["figures"]
    print(table(rows))
    missed = [r["key"] for r in rows if r["met"] is False]
    skipped = [r["key"] for r in rows if r["value"] is None]
    print(f"\nfrom {os.path.relpath(path)} (measured {result['machine'].get('finished_at')}, commit "
          f"{result['machine'].get('commit')})")
    if skipped:
        print(f"not measured: {', '.join(skipped)}")
    if missed:
        print(f"MISSED: {', '.join(missed)}")
        return 1
    print("every measured target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
