"""The checks every scenario ends with, from the jobs' own records (tick.sh) and from the store.

- every job completed exactly once: its state is completed and its history holds exactly one run that exited 0;
  any other run of it ended as lost (handed back), never as a second completion;
- no overlapping runs: two runs of one job (by their attempt number) never ran at the same time, measured from the
  lines the runs wrote themselves, each run counted as lasting one tick past its last line;
- counts match: the store's counts say every job completed and nothing is left processing, failed or dead.
"""

import collections
from dataclasses import dataclass, field
from pathlib import Path

TICK_SECONDS = 0.1
TICK_SCRIPT = Path(__file__).resolve().parent / "tick.sh"


def job_spec(job_id, ticks, log, **keys):
    """A job that runs about `ticks` x 0.1 s and records itself in `log`."""
    return {"id": job_id, "command": f"sh {TICK_SCRIPT} {int(ticks)} {log}", **keys}


@dataclass
class Run:
    """One run of a job as its own lines tell it."""

    job: str
    attempt: int
    worker: str
    first: float
    last: float
    ended: bool = False

    @property
    def host(self):
        return self.worker.split("-")[0] + "-" + self.worker.split("-")[1]


def read_runs(log):
    """{job id: [Run, ...] by start time} from a tick log."""
    runs = {}
    if not Path(log).exists():
        return {}
    for line in Path(log).read_text().splitlines():
        parts = line.split()
        if len(parts) != 5:
            continue  # a line cut short by a kill
        job, attempt, worker, when, kind = parts
        key = (job, int(attempt))
        run = runs.get(key)
        when = float(when)
        if run is None:
            run = runs[key] = Run(job, int(attempt), worker, when, when)
        run.first, run.last = min(run.first, when), max(run.last, when)
        run.ended = run.ended or kind == "end"
    by_job = collections.defaultdict(list)
    for run in runs.values():
        by_job[run.job].append(run)
    return {job: sorted(items, key=lambda r: r.first) for job, items in by_job.items()}


def overlaps(runs_by_job):
    """[(job, earlier run, later run, seconds of overlap)] for runs of one job that ran at the same time."""
    found = []
    for job, runs in runs_by_job.items():
        for earlier, later in zip(runs, runs[1:]):
            gap = later.first - (earlier.last + TICK_SECONDS)
            if gap < 0:
                found.append((job, earlier, later, round(-gap, 3)))
    return found


@dataclass
class Verdict:
    """The outcome of a scenario's checks: failures (empty: passed) and figures."""

    failures: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)

    def check(self, condition, message):
        if not condition:
            self.failures.append(message)
        return condition

    @property
    def ok(self):
        return not self.failures


def check_exactly_once(store, ids, log, verdict):
    """The three common checks; adds figures (runs, reruns, overlaps) to `verdict`."""
    runs_by_job = read_runs(log)
    reruns = {}
    for job_id in ids:
        job = store.get_job(job_id, history=True)
        history = job["history"]
        completions = [run for run in history if run["exit_code"] == 0 and not run["error"]]
        verdict.check(job["state"] == "completed", f"job {job_id} ended {job['state']}, not completed")
        verdict.check(len(completions) == 1, f"job {job_id} has {len(completions)} completed runs in its history")
        others = [run for run in history if run not in completions]
        verdict.check(all("worker lost" in (run["error"] or "") or "lease" in (run["error"] or "")
                          for run in others),
                      f"job {job_id}: a run other than its completion did not end as lost: {others}")
        own = runs_by_job.get(job_id, [])
        verdict.check(any(run.ended for run in own), f"job {job_id} never wrote its end line")
        verdict.check(len(own) <= len(history), f"job {job_id}: {len(own)} runs in its log, {len(history)} recorded")
        if len(own) > 1:
            reruns[job_id] = [f"attempt {run.attempt} on {run.worker}: {run.first:.2f}-{run.last:.2f}"
                              f"{' ended' if run.ended else ''}" for run in own]
    found = overlaps({job_id: runs_by_job.get(job_id, []) for job_id in ids})
    for job_id, earlier, later, seconds in found:
        verdict.failures.append(f"job {job_id}: attempt {later.attempt} on {later.worker} started {seconds}s before"
                                f" attempt {earlier.attempt} on {earlier.worker} stopped")
    counts = store.counts()
    verdict.check(counts["completed"] == len(ids) and not any(counts[s] for s in ("pending", "processing",
                                                                                 "failed", "dead")),
                  f"counts do not match {len(ids)} completed jobs: {counts}")
    hosts = collections.Counter()
    for runs in runs_by_job.values():
        for run in runs:
            if run.ended:
                hosts[run.host] += 1
    verdict.figures.update({"jobs": len(ids), "runs_in_logs": sum(len(r) for r in runs_by_job.values()),
                            "reruns": reruns, "overlaps": len(found), "completions_by_host": dict(hosts)})
    return runs_by_job
