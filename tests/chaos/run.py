"""`make chaos`: the chaos campaign's long runs, one after the other (~3-5 minutes on 2 cores), with their reports.

    .venv/bin/python tests/chaos/run.py [--quick] [--out tests/chaos/results]

1. soak: 5,000 jobs on 4 worker groups, a SIGKILL or SIGTERM every ~2 s (soak.py);
2. bulk kill: a bulk enqueue of 100,000 jobs SIGKILLed 5 times (bulk_kill.py);
3. contention: 8 enqueuing processes, 8 workers and API readers for 30 s, with the p99 claim latency (contention.py);
4. a bulk enqueue of 500,000 jobs while users enqueue one job at a time: none of them may fail (bulk_kill.py);
5. the API under HTTP load while its database goes away and comes back, on SQLite and PostgreSQL: never a 5xx but
   503, never a dropped connection (api_outage.py).
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

import api_outage  # noqa: E402
import bulk_kill  # noqa: E402
import contention  # noqa: E402
import soak  # noqa: E402


def machine():
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release(),
            "load_average_1m_at_start": round(os.getloadavg()[0], 2)}


def _ms(figures):
    if not figures:
        return "-"
    return f"p50 {figures['p50']:g} ms, p99 {figures['p99']:g} ms, max {figures['max']:g} ms (n = {figures['n']})"


def _counts(mapping):
    return ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in mapping.items()) or "none"


def summary_markdown(results):
    s, b, c, g = results["soak"], results["bulk_kill"], results["contention"], results["big_bulk"]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(results["finished_at"]))
    m = results["machine"]
    strikes = dict(s["strikes"])
    total = strikes.pop("strikes", 0)

    def verdict(report):
        return "ok" if report["ok"] else "**FAILED**"

    def verdict_of(reports):
        return "ok" if all(report["ok"] for report in reports) else "**FAILED**"

    lines = [
        f"# Chaos campaign: the latest `make chaos` ({when})",
        "",
        f"{m['cpus']} CPUs, Python {m['python']}, Linux {m['kernel']}; load average {m['load_average_1m_at_start']} at"
        " the start (the machine is shared: latencies include waiting for a CPU).",
        "",
        f"## Soak: {s['jobs']} jobs, 4 worker groups, a strike every ~2 s: {verdict(s)}",
        "",
        "| figure | value |",
        "|---|---|",
        f"| time, throughput | {s['seconds']} s, {s['jobs_per_second']} jobs/s |",
        f"| strikes | {total}: {_counts(strikes)} |",
        f"| strikes that hit a running job | {s['strikes_that_hit_a_running_job']} |",
        f"| runs cut | {_counts(s['cut_runs'])} |",
        f"| jobs recovered after a lost worker | {s['recovered_jobs']} |",
        f"| duplicate lines (a job's line written twice) | {s['duplicates']}: {_counts(s['duplicates_by_cause'])} |",
        f"| duplicates without a kill of that run's worker | {s['unexplained_duplicates']} |",
        f"| jobs not completed exactly once | {s['jobs_not_completed_exactly_once']} |",
        f"| runs of a job that overlapped | {s['overlapping_runs']} |",
        f"| runs declared lost though their worker lived | {s['runs_lost_by_a_live_worker']} |",
        f"| jobs left processing | {s['counts']['processing']} |",
        f"| PRAGMA integrity_check; per-state counters | {s['integrity_check']}; "
        f"{'consistent' if s['job_counts_consistent'] else 'INCONSISTENT'} |",
        f"| job processes that outlived their worker | {s['leftover_job_processes']} |",
        f"| 'database is locked' / tracebacks in worker logs | {s['worker_log_locked']} /"
        f" {s['worker_log_tracebacks']} |",
        "",
        f"## kill -9 during a bulk enqueue of {b['jobs_per_batch']:,} jobs, {len(b['rounds'])} rounds: {verdict(b)}",
        "",
        f"Killed inside the open transaction: {b['killed_mid_transaction']} (batch absent each time); killed after"
        f" the commit: {b['killed_after_commit']}; finished before the kill: {b.get('finished_before_the_kill', 0)};"
        f" partial batches: {b['partial_batches']}. The earlier 1,000 jobs were kept every time, integrity_check said"
        f" {b['integrity_check']}, and the first batch could be enqueued again afterwards:"
        f" {b['batch_enqueued_again']}.",
        "",
        f"## Contention: 8 enqueuing processes, 8 workers, 2 API readers, {c['enqueue_seconds']} s: {verdict(c)}",
        "",
        "| figure | value |",
        "|---|---|",
        f"| jobs, CLI calls (1 in 10 a batch of 100) | {c['jobs_enqueued']}, {c['cli_calls']} |",
        f"| **claim latency** (a claim that got a job, lock waits included) | {_ms(c['claim_ms'])} |",
        f"| empty claims (nothing due) | {_ms(c['empty_claim_ms'])} |",
        f"| wait from enqueue to start (batches queue up) | {_ms(c['pickup_ms'])} |",
        f"| `queuectl enqueue` wall time (process start included) | {_ms(c['cli_enqueue_ms'])} |",
        f"| API reads ({c['api_requests']} requests) | {_ms(c['api_read_ms'])} |",
        f"| 'database is locked' reaching a user / a job | {c['locked_reaching_a_user']} /"
        f" {c['locked_reaching_a_job']} |",
        f"| CLI failures / API answers other than 200 | {c['cli_failures']} / {c['api_failures']} |",
        f"| integrity_check | {c['integrity_check']} |",
        "",
        f"## A bulk enqueue of {g['jobs']:,} jobs beside users enqueuing one job at a time: {verdict(g)}",
        "",
        f"The bulk enqueue took {g['big_enqueue_seconds']} s; meanwhile {g['user_enqueues']} single enqueues,"
        f" the slowest {g['slowest_user_enqueue_seconds']} s (it waited for the write lock), {g['user_failures']}"
        f" failed; integrity_check {g['integrity_check']}.",
        "",
    ]
    lines += [f"## The API under load while its database is away: {verdict_of(results['api_outage'])}", "",
              "| backend | phase | requests | answers | slowest |", "|---|---|---|---|---|"]
    for report in results["api_outage"]:
        for phase, entry in report["phases"].items():
            answers = ", ".join(f"{status}: {count}" for status, count in sorted(entry["statuses"].items()))
            lines.append(f"| {report['backend']} ({report['seconds_away']:g} s away) | {phase} | {entry['requests']}"
                         f" | {answers} | {entry['slowest_seconds']} s |")
    lines.append("")
    problems = [p for name in ("soak", "bulk_kill", "contention") for p in results[name].get("problems", [])]
    problems += [p for report in results["api_outage"] for p in report["problems"]]
    if not results["big_bulk"]["ok"]:
        problems.append(f"big bulk enqueue beside users: {results['big_bulk']}")
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
        for name in ("soak", "bulk", "contention", "big", "outage-sqlite", "outage-postgres"):
            (scratch / name).mkdir()
        print("== 1/5 soak", flush=True)
        results["soak"] = soak.run_soak(scratch / "soak", jobs=500 if args.quick else 5000)
        print(soak.format_report(results["soak"]), flush=True)
        print("\n== 2/5 kill -9 during bulk enqueue", flush=True)
        results["bulk_kill"] = bulk_kill.run_bulk_kill(scratch / "bulk", jobs=20_000 if args.quick else 100_000,
                                                       rounds=2 if args.quick else 5)
        print(f"bulk kill: {'OK' if results['bulk_kill']['ok'] else 'FAILED'}", flush=True)
        print("\n== 3/5 contention", flush=True)
        results["contention"] = contention.run_contention(scratch / "contention", seconds=8 if args.quick else 30)
        print(contention.format_report(results["contention"]), flush=True)
        print("\n== 4/5 a big bulk enqueue beside users", flush=True)
        results["big_bulk"] = bulk_kill.run_big_bulk_beside_users(scratch / "big",
                                                                  jobs=50_000 if args.quick else 500_000)
        print("\n== 5/5 the API while its database is away", flush=True)
        results["api_outage"] = []
        postgres = os.environ.get("QUEUECTL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
        for backend in ("sqlite", "postgres"):
            if backend == "postgres" and not api_outage.postgres_answers(postgres):
                print("postgres: no server answers: skipped", flush=True)
                continue
            # 12 s: longer than the API's 10 s request wait, so that SQLite's writes answer 503
            report = api_outage.run_outage(scratch / f"outage-{backend}", backend, 12, postgres)
            results["api_outage"].append(report)
            print(api_outage.format_report(report), flush=True)
    results["finished_at"] = time.time()
    results["ok"] = (all(results[name]["ok"] for name in ("soak", "bulk_kill", "contention", "big_bulk"))
                     and all(report["ok"] for report in results["api_outage"]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out / "latest.md").write_text(summary_markdown(results))
    print(f"\nchaos: {'every check held' if results['ok'] else 'FAILED'}; reports in {out}/latest.md and latest.json")
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
