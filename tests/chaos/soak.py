"""Chaos soak: jobs that append "id attempt" to a file, run by worker processes that are killed all along.

    .venv/bin/python tests/chaos/soak.py [--jobs 5000] [--workers 4] [--kill-every 2] [--json FILE]

N worker groups (`queuectl-worker --count 1`, each in a session of its own) run the jobs while the driver, every
~2 s, picks a random group and
  - SIGKILLs its worker and its supervisor (a lost machine or container) and starts a replacement group, or
  - SIGKILLs only its worker process (a crash): the supervisor starts a new one, or
  - now and then SIGTERMs it (a graceful stop: it finishes its job and exits 0), once in a while twice (the
    running job is killed and handed back at once), and starts a replacement.
Then it stops everything and checks: every job completed, and completed exactly once (one successful run in its
history, one line of that run in the file); a job's line appears more than once only for a run cut by a kill of
*that* run's worker, and its history says so ("worker lost" or "interrupted"); no job left processing; no two
runs of a job overlapped; PRAGMA integrity_check says ok; the per-state counters match the jobs table; no job
process outlived its worker; no worker log holds "database is locked" or a traceback.
Exit status 0 when every check holds, 1 otherwise; the report is printed (and written as JSON with --json).
"""

import argparse
import collections
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaoslib import (  # noqa: E402
    LOCKED,
    WorkerGroup,
    counts_consistent,
    integrity,
    leftover_processes,
    pid_of_worker_id,
    run_cli,
)
from queuectl_core.store import open_store  # noqa: E402
from queuectl_core.timeutil import now_ms  # noqa: E402


def job_lines(count, output, slow_fraction, slow_seconds, rng):
    """JSON lines of `count` jobs: most append at once; some sleep before appending (a kill then cuts the run
    before it wrote), some after (a kill then cuts a run that wrote: its job runs again and writes again)."""
    append = f'echo "$QUEUECTL_JOB_ID $QUEUECTL_ATTEMPT" >> {output}'
    lines = []
    for number in range(count):
        draw = rng.random()
        if draw < slow_fraction / 2:
            command = f"sleep {slow_seconds}; {append}"
        elif draw < slow_fraction:
            command = f"{append}; sleep {slow_seconds}"
        else:
            command = append
        lines.append(json.dumps({"id": f"job-{number:05d}", "command": command}))
    return ("\n".join(lines) + "\n").encode()


class Chaos:
    """The driver: keeps `workers` groups running and hits one of them every `kill_every` seconds or so."""

    def __init__(self, db, log_dir, workers, kill_every, sigterm_every, rng, log):
        self.db, self.log_dir, self.rng, self.log = db, log_dir, rng, log
        self.kill_every, self.sigterm_every = kill_every, sigterm_every
        self.groups = []
        self.retired = []  # groups stopped or killed, kept for their logs and exit codes
        self.started = 0
        self.sigkilled_pids = set()  # worker pids killed by SIGKILL: their runs may be cut
        self.interrupted_pids = set()  # worker pids stopped by a second SIGTERM: their runs are handed back
        self.actions = collections.Counter()
        self.hits_mid_run = 0
        for _ in range(workers):
            self._start()

    def _start(self):
        self.started += 1
        group = WorkerGroup(self.db, self.log_dir, self.started)
        self.groups.append(group)
        return group

    def _running_jobs(self):
        """Worker pid -> the job it runs now (from the registry the workers keep)."""
        try:
            store = open_store(str(self.db))
            try:
                return {pid_of_worker_id(w["id"]): w["current_job"] for w in store.live_workers() if w["current_job"]}
            finally:
                store.close()
        except Exception:  # the registry is a report's detail; a busy moment must not stop the chaos
            return {}

    def strike(self):
        """One blow to a random group."""
        # Only groups that are up: a signal that arrives while Python is still starting the supervisor, before
        # it installed its handlers, simply ends it (exit -15), before it could claim anything.
        ready = [group for group in self.groups if group.alive() and group.worker_pids()]
        if not ready:
            return
        running = self._running_jobs()
        self.actions["strikes"] += 1
        sigterm = self.actions["strikes"] % self.sigterm_every == 0
        busy = [group for group in ready if any(pid in running for pid in group.worker_pids())]
        # A SIGTERM is most telling while a job runs: the first lets it finish, a second one cuts it.
        group = self.rng.choice(busy if sigterm and busy else ready)
        if sigterm:
            twice = self.rng.random() < 0.35
            pids = group.worker_pids()
            group.signal_supervisor(signal.SIGTERM)
            if twice:
                time.sleep(0.05)
                group.signal_supervisor(signal.SIGTERM)
                self.interrupted_pids.update(pids)
                self.actions["sigterm_twice"] += 1
            else:
                self.actions["sigterm"] += 1
            self.groups.remove(group)
            self.retired.append(group)
            self._start()
            return
        if self.rng.random() < 0.6:
            pids = group.kill_everything()
            self.actions["sigkill_group"] += 1
            self.groups.remove(group)
            self.retired.append(group)
            self._start()
        else:
            pid = group.kill_a_worker()
            pids = [pid] if pid else []
            self.actions["sigkill_worker"] += 1
        self.sigkilled_pids.update(pids)
        self.hits_mid_run += sum(1 for pid in pids if pid in running)

    def stop_all(self, timeout=60):
        """SIGTERM every group (running jobs finish); returns the exit codes of the graceful stops."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(group.worker_pids() for group in self.groups if group.alive()):
            time.sleep(0.05)  # a group started a moment ago gets to install its signal handlers first
        for group in self.groups:
            group.signal_supervisor(signal.SIGTERM)
        return {group.number: group.wait(timeout) for group in self.groups + self.retired
                if group.process.returncode != -9}

    def logs(self):
        return {group.number: group.log_text() for group in self.groups + self.retired}

    def destroy(self):
        for group in self.groups + self.retired:
            group.destroy()


def run_soak(workdir, jobs=5000, workers=4, kill_every=2.0, sigterm_every=5, lease_timeout=3, slow_fraction=0.1,
             slow_seconds=0.3, time_limit=300, seed=None, log=print):
    """Run the soak in `workdir`; return the report (a dict; report["ok"] says whether every check held)."""
    seed = random.randrange(2**32) if seed is None else seed
    rng = random.Random(seed)
    workdir = Path(workdir)
    db, output = workdir / "queue.db", workdir / "appended.txt"
    output.touch()
    store = open_store(str(db))
    # A short lease, so that a killed worker's job comes back within seconds; enough retries that kills alone
    # never send a job to the dead letter queue; a short backoff keeps the soak bounded.
    store.set_settings({"lease_timeout": lease_timeout, "max_retries": 50, "backoff_base": 1, "backoff_max": 1})
    enqueued = run_cli(db, "enqueue", "--file", "-",
                       input=job_lines(jobs, output, slow_fraction, slow_seconds, rng))
    if enqueued.returncode != 0:
        raise RuntimeError(f"bulk enqueue failed: {enqueued.stderr.decode(errors='replace')}")
    log(f"soak: {jobs} jobs, {workers} worker groups, a strike every ~{kill_every}s, lease {lease_timeout}s, "
        f"seed {seed}, in {workdir}")
    chaos = Chaos(db, workdir, workers, kill_every, sigterm_every, rng, log)
    started = time.monotonic()
    try:
        next_strike = started + kill_every
        last_report = started
        while time.monotonic() - started < time_limit:
            counts = store.counts()
            if counts["completed"] == jobs:
                break
            if time.monotonic() >= next_strike:
                chaos.strike()
                next_strike = time.monotonic() + kill_every * rng.uniform(0.5, 1.5)
            if time.monotonic() - last_report >= 10:
                log(f"  {time.monotonic() - started:5.0f}s  completed {counts['completed']}/{jobs}  "
                    f"processing {counts['processing']}  strikes {chaos.actions['strikes']}")
                last_report = time.monotonic()
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        exit_codes = chaos.stop_all()
        report = verify(db, output, jobs, chaos, store)
        report.update(seed=seed, seconds=round(elapsed, 1), jobs_per_second=round(jobs / elapsed, 1),
                      load_average_1m_at_end=round(os.getloadavg()[0], 2),
                      graceful_exit_codes=collections.Counter(exit_codes.values()))
        logs = chaos.logs()
        for number, code in exit_codes.items():
            if code != 0:
                tail = " | ".join(logs[number].strip().splitlines()[-6:])
                report["problems"].append(f"worker group {number} exited with {code} after SIGTERM; its log: {tail}")
        report["ok"] = not report["problems"]
        return report
    finally:
        chaos.destroy()
        store.close()


def verify(db, output, jobs, chaos, store):
    """Every check of the soak's end state; report["problems"] lists what failed."""
    problems = []
    counts = store.counts()
    if counts["completed"] != jobs or counts["processing"]:
        problems.append(f"not every job completed: {counts}")
    written = collections.defaultdict(list)  # job id -> attempts that appended a line
    for line in output.read_text().splitlines():
        job_id, _, attempt = line.partition(" ")
        written[job_id].append(int(attempt))
    causes = collections.Counter()
    recovered, interrupted_jobs, cut_runs = 0, 0, collections.Counter()
    unexplained, overlaps, missing, twice = [], [], [], []
    for number in range(jobs):
        job = store.get_job(f"job-{number:05d}", history=True)
        runs = {run["attempt"]: run for run in job["history"]}
        succeeded = [run for run in job["history"] if run["exit_code"] == 0 and run["error"] is None]
        if len(succeeded) != 1:
            twice.append((job["id"], len(succeeded)))
        for run in job["history"]:
            if run["error"] and run["error"].startswith("worker lost"):
                cut_runs["worker lost"] += 1
            elif run["error"] and run["error"].startswith("interrupted"):
                cut_runs["interrupted"] += 1
        if any((run["error"] or "").startswith("worker lost") for run in job["history"]):
            recovered += 1
        if any((run["error"] or "").startswith("interrupted") for run in job["history"]):
            interrupted_jobs += 1
        # The file: the successful run's line once; any other line must belong to a run cut by a kill of its worker.
        lines = collections.Counter(written.get(job["id"], []))
        for run in succeeded:
            if lines[run["attempt"]] != 1:
                missing.append((job["id"], run["attempt"], lines[run["attempt"]]))
        for attempt, times in lines.items():
            run = runs.get(attempt)
            if run is not None and run in succeeded:
                continue
            cause = _cause(run, chaos)
            if cause is None or times != 1:
                unexplained.append((job["id"], attempt, times, run and run["error"], run and run["worker_id"]))
            else:
                causes[cause] += 1
        ordered = sorted(job["history"], key=lambda run: run["attempt"])
        for before, after in zip(ordered, ordered[1:]):
            if before["finished_at"] is None or after["started_at"] < before["finished_at"]:
                overlaps.append((job["id"], before["attempt"], after["attempt"]))
    lost_by_live_worker = [
        (job_id, worker) for job_id, worker in _lost_runs(store, jobs)
        if pid_of_worker_id(worker) not in chaos.sigkilled_pids
    ]
    state = integrity(db)
    consistent, kept, real = counts_consistent(db)
    leftovers = leftover_processes(db)
    logs = chaos.logs()
    locked = sum(len(LOCKED.findall(text)) for text in logs.values())
    tracebacks = sum(text.count("Traceback") for text in logs.values())
    database_errors = sum(text.count("database error") for text in logs.values())
    if twice:
        problems.append(f"{len(twice)} jobs without exactly one successful run, e.g. {twice[:3]}")
    if missing:
        problems.append(f"{len(missing)} successful runs without exactly one line, e.g. {missing[:3]}")
    if unexplained:
        problems.append(f"{len(unexplained)} duplicate lines not explained by a kill, e.g. {unexplained[:3]}")
    if overlaps:
        problems.append(f"{len(overlaps)} runs overlapped the next run of their job, e.g. {overlaps[:3]}")
    if lost_by_live_worker:
        problems.append(f"{len(lost_by_live_worker)} runs declared lost though their worker was never killed, "
                        f"e.g. {lost_by_live_worker[:3]}")
    if state != "ok":
        problems.append(f"integrity_check: {state}")
    if not consistent:
        problems.append(f"job_counts {kept} differ from the jobs table {real}")
    if leftovers:
        problems.append(f"{len(leftovers)} job processes outlived their workers: {leftovers[:3]}")
    if locked:
        problems.append(f"'database is locked' {locked} times in the worker logs")
    if tracebacks:
        problems.append(f"{tracebacks} tracebacks in the worker logs")
    return {
        "jobs": jobs,
        "counts": counts,
        "strikes": dict(chaos.actions),
        "worker_groups_started": chaos.started,
        "strikes_that_hit_a_running_job": chaos.hits_mid_run,
        "recovered_jobs": recovered,
        "jobs_with_an_interrupted_run": interrupted_jobs,
        "cut_runs": dict(cut_runs),
        "duplicates": sum(causes.values()),
        "duplicates_by_cause": dict(causes),
        "unexplained_duplicates": len(unexplained),
        "jobs_not_completed_exactly_once": len(twice),
        "overlapping_runs": len(overlaps),
        "runs_lost_by_a_live_worker": len(lost_by_live_worker),
        "integrity_check": state,
        "job_counts_consistent": consistent,
        "leftover_job_processes": len(leftovers),
        "worker_log_database_errors": database_errors,
        "worker_log_locked": locked,
        "worker_log_tracebacks": tracebacks,
        "problems": problems,
    }


def _cause(run, chaos):
    """Why a run that is not the job's success wrote a line: its worker was killed mid-run (None: no kill)."""
    if run is None or not run["error"]:
        return None
    pid = pid_of_worker_id(run["worker_id"])
    if run["error"].startswith("worker lost") and pid in chaos.sigkilled_pids:
        return "worker SIGKILLed after the job wrote, before the result was stored"
    if run["error"].startswith("interrupted") and pid in chaos.interrupted_pids:
        return "second SIGTERM killed the run after it wrote"
    return None


def _lost_runs(store, jobs):
    found = []
    for number in range(jobs):
        for run in store.get_job(f"job-{number:05d}", history=True)["history"]:
            if (run["error"] or "").startswith("worker lost"):
                found.append((f"job-{number:05d}", run["worker_id"]))
    return found


def format_report(report):
    """The report as aligned text."""
    lines = ["chaos soak report"]
    for key, value in report.items():
        if key == "problems":
            continue
        lines.append(f"  {key:<34} {json.dumps(value, default=str) if isinstance(value, dict | list) else value}")
    lines.append("  result                             " + ("OK" if report.get("ok") else "FAILED"))
    lines += [f"  problem: {problem}" for problem in report["problems"]]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kill-every", type=float, default=2.0, help="seconds between strikes (on average)")
    parser.add_argument("--sigterm-every", type=int, default=5, help="every Nth strike is a SIGTERM")
    parser.add_argument("--lease-timeout", type=float, default=3)
    parser.add_argument("--time-limit", type=float, default=300)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--dir", help="work directory (default: a new temporary one, removed afterwards)")
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="queuectl-soak-") as scratch:
        report = run_soak(args.dir or scratch, jobs=args.jobs, workers=args.workers, kill_every=args.kill_every,
                          sigterm_every=args.sigterm_every, lease_timeout=args.lease_timeout,
                          time_limit=args.time_limit, seed=args.seed)
    report["at"] = now_ms()
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
