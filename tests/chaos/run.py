"""`make chaos`: the chaos campaign's long runs, one after the other (~3-5 minutes on 2 cores), with their reports.

    .venv/bin/python tests/chaos/run.py [--quick] [--out tests/chaos/results]

1. soak: 5,000 jobs on 4 worker groups, a SIGKILL or SIGTERM every ~2 s (soak.py);
2. bulk kill: a bulk enqueue of 100,000 jobs SIGKILLed 5 times (bulk_kill.py);
3. contention: 8 enqueuing processes, 8 workers and API readers for 30 s, with the p99 claim latency (contention.py).
Writes latest.json (every figure) and latest.md (a summary for docs/reliability.md) to --out; exit status 1 when
any check failed.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bulk_kill  # noqa: E402
import contention  # noqa: E402
import soak  # noqa: E402


def machine():
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release(),
            "load_average_1m_at_start": round(os.getloadavg()[0], 2)}


def summary_markdown(results):
    s, b, c = results["soak"], results["bulk_kill"], results["contention"]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(results["finished_at"]))
    lines = [
        f"# Chaos campaign: latest `make chaos` ({when})",
        "",
        f"Machine: {results['machine']['cpus']} CPUs, Python {results['machine']['python']}, Linux "
        f"{results['machine']['kernel']}; load average at the start {results['machine']['load_average_1m_at_start']}.",
        "",
        "| run | result | figures |",
        "|---|---|---|",
        f"| soak: {s['jobs']} jobs, 4 worker groups | {'ok' if s['ok'] else 'FAILED'} | "
        f"{s['seconds']} s ({s['jobs_per_second']} jobs/s); strikes {s['strikes']}; "
        f"{s['strikes_that_hit_a_running_job']} hit a running job; {s['recovered_jobs']} jobs recovered after a lost "
        f"worker; duplicates {s['duplicates']} ({s['duplicates_by_cause']}); unexplained duplicates "
        f"{s['unexplained_duplicates']}; jobs not completed exactly once {s['jobs_not_completed_exactly_once']}; "
        f"overlapping runs {s['overlapping_runs']}; left processing {s['counts']['processing']}; integrity_check "
        f"{s['integrity_check']}; leftover job processes {s['leftover_job_processes']} |",
        f"| kill -9 during a bulk enqueue of {b['jobs_per_batch']} jobs, {len(b['rounds'])} rounds | "
        f"{'ok' if b['ok'] else 'FAILED'} | killed inside the transaction {b['killed_mid_transaction']}, after the "
        f"commit {b['killed_after_commit']}, partial batches {b['partial_batches']}; the batch enqueued again "
        f"afterwards: {b['batch_enqueued_again']}; integrity_check {b['integrity_check']} |",
        f"| contention: 8 enqueuing processes, 8 workers, API readers, {c['enqueue_seconds']} s | "
        f"{'ok' if c['ok'] else 'FAILED'} | {c['jobs_enqueued']} jobs in {c['cli_calls']} CLI calls; claim latency "
        f"(ms) {c['claim_ms']}; empty claims (ms) {c['empty_claim_ms']}; pickup (ms) {c['pickup_ms']}; CLI enqueue "
        f"(ms) {c['cli_enqueue_ms']}; API reads (ms) {c['api_read_ms']}; 'database is locked' reaching a user "
        f"{c['locked_reaching_a_user']}, a job {c['locked_reaching_a_job']}; CLI failures {c['cli_failures']}, "
        f"API failures {c['api_failures']} |",
        "",
    ]
    problems = [p for name in ("soak", "bulk_kill", "contention") for p in results[name].get("problems", [])]
    lines += [f"- problem: {problem}" for problem in problems] or ["Every check held."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small runs (~1 minute), for trying the script")
    parser.add_argument("--out", default=str(HERE / "results"), help="where latest.json and latest.md go")
    args = parser.parse_args(argv)
    results = {"machine": machine()}
    with tempfile.TemporaryDirectory(prefix="queuectl-chaos-") as scratch:
        scratch = Path(scratch)
        for name in ("soak", "bulk", "contention"):
            (scratch / name).mkdir()
        print("== 1/3 soak", flush=True)
        results["soak"] = soak.run_soak(scratch / "soak", jobs=500 if args.quick else 5000)
        print(soak.format_report(results["soak"]), flush=True)
        print("\n== 2/3 kill -9 during bulk enqueue", flush=True)
        results["bulk_kill"] = bulk_kill.run_bulk_kill(scratch / "bulk", jobs=20_000 if args.quick else 100_000,
                                                       rounds=2 if args.quick else 5)
        print(f"bulk kill: {'OK' if results['bulk_kill']['ok'] else 'FAILED'}", flush=True)
        print("\n== 3/3 contention", flush=True)
        results["contention"] = contention.run_contention(scratch / "contention", seconds=8 if args.quick else 30)
        print(contention.format_report(results["contention"]), flush=True)
    results["finished_at"] = time.time()
    results["ok"] = all(results[name]["ok"] for name in ("soak", "bulk_kill", "contention"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out / "latest.md").write_text(summary_markdown(results))
    print(f"\nchaos: {'every check held' if results['ok'] else 'FAILED'}; reports in {out}/latest.md and latest.json")
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
