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
from report import ORDER, figure, log, markdown, peers_table, table  # noqa: E402
from run_store import run_batch, run_claims_and_reads, run_enqueue  # noqa: E402
from run_workers import run_latency, run_throughput  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
LATEST = os.path.join(RESULTS, "latest.json")
SECTIONS = ("throughput", "latency", "slots", "claims", "enqueue", "reads", "batch", "postgres", "flow")


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
    if "batch" in sections:
        rows += run_batch(args.quick)
    if "slots" in sections:
        from slots import run_slots

        rows += run_slots(args.quick)
    if "flow" in sections:
        from flow import run_flow

        rows += run_flow(args.quick)
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
