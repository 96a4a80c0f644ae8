"""`make bench`: every figure of issue 5 in one run, side by side with the machine's own limits and
with the peers; prints the table, writes results/latest.json and the PNG plots.

    .venv/bin/python benchmarks/run.py            # the whole suite (about 5 minutes on 2 cores)
    .venv/bin/python benchmarks/run.py --check    # exit 1 if results/latest.json misses a target
                                                  # (runs the suite first when there is no such file)
    .venv/bin/python benchmarks/run.py --only claims,reads   # some sections (the others stay out)
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
SECTIONS = ("throughput", "latency", "claims", "enqueue", "reads")
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


def run_throughput(quick):
    import spawn
    import systems

    jobs = 500 if quick else 2000
    reps = 1 if quick else 3
    raw, ours = [], []
    for rep in range(reps):  # interleaved: the machine's limit and queuectl at the same moments
        raw.append(spawn.spawn_rate(2, 2.0))
        log(f"raw spawn from 2 processes: {raw[-1]:.0f}/s")
        ours.append(systems.throughput("queuectl", 2, jobs)["jobs_per_second"])
        log(f"queuectl, 2 workers, {jobs} jobs: {ours[-1]:.0f}/s (round {rep + 1}/{reps})")
    import statistics

    raw_rate, our_rate = statistics.median(raw), statistics.median(ours)
    by_workers = {"2": our_rate}
    raw_by_processes = {"2": raw_rate}
    for count in (1, 4, 8):
        raw_by_processes[str(count)] = spawn.spawn_rate(count, 1.5)
        by_workers[str(count)] = systems.throughput("queuectl", count, jobs)["jobs_per_second"]
        log(f"{count} workers: {by_workers[str(count)]:.0f}/s (raw spawn from {count}: "
            f"{raw_by_processes[str(count)]:.0f}/s)")
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
    rows = [
        figure("raw_spawn", "raw `/bin/sh -c true` spawns from 2 Python processes", raw_rate, "/s",
               "the limit", None, note=f"median of {reps}; rounds {', '.join(f'{r:.0f}' for r in raw)}",
               rounds=raw, runner_spawn_rate=runner_rate),
        figure("throughput", f"no-op jobs (`true`), 2 workers, {jobs} jobs, enqueued to all done", our_rate, "/s",
               "≥ 0.7 × raw spawn rate", ratio >= 0.7, ratio,
               note=f"median of {reps}; rounds {', '.join(f'{r:.0f}' for r in ours)}; the runner spawning alone "
                    f"{runner_rate:.0f}/s; with the preexec_fn fallback {preexec:.0f}/s (spawning alone "
                    f"{preexec_spawn:.0f}/s)", peers=peers, rounds=ours, preexec_fallback=preexec,
               preexec_fallback_spawn_rate=preexec_spawn),
    ]
    series = {"throughput_by_workers": by_workers, "raw_spawn_by_processes": raw_by_processes,
              "preexec_fallback_2_workers": preexec,
              "peer_throughput_2_workers": {k: v.get("jobs_per_second") for k, v in peers.items()}}
    return rows, series


def run_latency(quick):
    import latency

    samples = 10 if quick else 25
    ours = latency.pickup("queuectl", samples)
    log(f"queuectl pickup: {ours}")
    peers = {}
    for name in ("huey", "rq-simple"):
        peers[name] = _peer(latency.pickup, name, samples)
        log(f"peer {name} pickup: {peers[name]}")
    return [
        figure("pickup", "idle pickup, enqueue to start, median (1 worker)", ours["median_ms"], "ms", "≤ 5 ms",
               ours["median_ms"] <= 5, ours["median_ms"] / 5,
               note=f"p90 {ours['p90_ms']:.1f} ms, {ours['samples']} jobs", peers=peers, **ours),
        figure("idle_cpu", "idle worker CPU (supervisor + worker, psutil)", ours["idle_cpu_percent"], "%",
               "< 1 %", ours["idle_cpu_percent"] < 1, ours["idle_cpu_percent"] / 1,
               note=f"over {ours['idle_cpu_window_seconds']:g} s",
               peers={k: {"idle_cpu_percent": v.get("idle_cpu_percent"), **({"skipped": v["skipped"]}
                                                                          if "skipped" in v else {})}
                      for k, v in peers.items()}),
    ], {}


def run_claims_and_reads(quick, sections):
    import claims
    import reads

    sizes = (1_000, 10_000, 100_000) if quick else (1_000, 10_000, 100_000, 1_000_000)
    paths = {}
    for size in sizes:
        paths[size], seconds = claims.build(size)
        log(f"seeded {size} pending jobs in {seconds:.1f}s")
    rows, series = [], {}
    big = max(sizes)
    if "claims" in sections:
        costs = claims.measure(paths, rounds=3 if quick else 5)
        small_cost, big_cost = costs[1_000]["median_us"], costs[big]["median_us"]
        log(f"claim + complete: {costs}")
        ratio = big_cost / small_cost
        big_label = "1M" if big == 1_000_000 else f"{big // 1000}k"
        rows.append(figure(
            "claim_flat", f"claim + complete, 1k vs {big_label} waiting jobs", ratio, "×", "≤ 1.5×",
            ratio <= 1.5, ratio,
            note=f"{small_cost:.0f} µs at 1k, {big_cost:.0f} µs at {big_label} (claim "
                 f"{costs[big]['claim_us']:.0f} + finish {costs[big]['finish_us']:.0f} µs)",
            costs={str(k): v for k, v in costs.items()}))
        series["claim_cost_by_queue_size"] = {str(k): v["median_us"] for k, v in costs.items()}
    if "reads" in sections:
        path = paths[big]
        inner = reads.in_process(path)
        log(f"store calls at {big} jobs: {inner}")
        status = reads.status_cli(path)
        log(f"queuectl status --json: {status}")
        api = reads.api(path)
        log(f"API: {api}")
        label = f"{big // 1000}k jobs" if big < 1_000_000 else "1M jobs"
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
    for path in paths.values():
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)  # the big files go as soon as they are used
    return rows, series


def run_enqueue(quick):
    import enqueue

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
    ], {}


ORDER = ("raw_spawn", "throughput", "pickup", "idle_cpu", "claim_flat", "enqueue_python", "enqueue_bulk",
         "enqueue_cli", "status_store", "status_cli", "api_stats", "api_jobs")


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


def markdown(result):
    """The results as Markdown: the machine, the table, the peers (pasted into docs/performance.md)."""
    meta = result["machine"]
    dirty = " (work tree modified)" if meta["work_tree_dirty"] else ""
    lines = [
        f"Measured {meta['finished_at']} at commit {meta['commit']}{dirty}"
        f" in {meta['seconds']:.0f} s: {meta['nproc']} × {meta['cpu_model']}, Python {meta['python']},"
        f" SQLite {meta['sqlite']}, Linux {meta['kernel']}; load average {meta['load_average_at_start'][0]:.2f}"
        f" at the start, {meta['load_average_at_end'][0]:.2f} at the end.",
        "",
        table(result["figures"], markdown=True),
        "",
        "| peer | figure | value |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {key} | {text} |" for key, name, text in peers_table(result["figures"])]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when results/latest.json misses a target")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections to run: {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="smaller loads, for trying the suite out")
    parser.add_argument("--output", default=LATEST, help="results JSON (default benchmarks/results/latest.json)")
    parser.add_argument("--keep", action="store_true", help="keep this run's scratch files (under /tmp/queuectl-bench)")
    args = parser.parse_args(argv)
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


def _run(args, sections, began):
    meta = machine()
    log(f"machine: {meta}")
    rows, series = [], {}
    if "throughput" in sections:
        more_rows, more_series = run_throughput(args.quick)
        rows += more_rows
        series.update(more_series)
    if "latency" in sections:
        rows += run_latency(args.quick)[0]
    if "claims" in sections or "reads" in sections:
        more_rows, more_series = run_claims_and_reads(args.quick, sections)
        rows += more_rows
        series.update(more_series)
    if "enqueue" in sections:
        rows += run_enqueue(args.quick)[0]
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

        for path in plots.draw(result, os.path.dirname(os.path.abspath(args.output))):
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
    skipped = [r["key"] for r in rows if r["met"] is None and r["key"] != "raw_spawn"]
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
