"""Contention: 8 processes enqueuing while 8 workers run and the API serves reads, all on one SQLite file.

    .venv/bin/python tests/chaos/contention.py [--seconds 30] [--enqueuers 8] [--workers 8] [--readers 2]

- enqueuers: that many `queuectl enqueue` processes alive at any moment (threads each running the CLI in a loop:
  single jobs, and every 10th time a batch of 100 through `enqueue -`);
- workers: `queuectl-worker --count N` with a stopwatch around each claim (timed_worker.py), so the report gives
  the claim latency as the workers saw it, lock waits included;
- readers: threads calling gunicorn (2 processes) on /api/v1/stats, /api/v1/jobs, a job's detail, /metrics and
  /healthz with the token.
Then the queue drains and everything stops. Checked: no CLI call failed, no HTTP answer other than 200, no job
failed, no "database is locked" (nor any database error) in a CLI message, an HTTP answer, a job's history or a
worker's log; integrity_check ok. Reported: claim latency p50/p99/max, pickup latency (due to started), CLI and
API latency, throughput. Exit status 0 when every check holds.
"""

import argparse
import json
import os
import random
import secrets
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaoslib import (  # noqa: E402
    GUNICORN,
    LOCKED,
    QUEUECTL,
    REPO,
    WorkerGroup,
    counts_consistent,
    integrity,
    percentile,
)
from queuectl_core.store import open_store  # noqa: E402
from queuectl_core.timeutil import now_ms  # noqa: E402

TIMED_WORKER = [sys.executable, str(Path(__file__).resolve().parent / "timed_worker.py")]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Enqueuer(threading.Thread):
    """Runs `queuectl enqueue` again and again until told to stop; keeps every failure."""

    def __init__(self, number, db, stop, rng):
        super().__init__(daemon=True)
        self.number, self.db, self.stop, self.rng = number, db, stop, rng
        self.calls, self.jobs, self.failures, self.seconds = 0, 0, [], []

    def run(self):
        import subprocess

        env = {**os.environ, "QUEUECTL_DB": str(self.db)}
        while not self.stop.is_set():
            self.calls += 1
            if self.calls % 10 == 0:
                lines = "".join(json.dumps({"command": "true"}) + "\n" for _ in range(100))
                args, text, count = [QUEUECTL, "enqueue", "-"], lines, 100
            else:
                args, text, count = [QUEUECTL, "enqueue", json.dumps({"command": "true"})], None, 1
            started = time.monotonic()
            result = subprocess.run(args, input=text, capture_output=True, text=True, env=env, timeout=120)
            self.seconds.append(time.monotonic() - started)
            if result.returncode != 0 or result.stderr.strip():
                self.failures.append((result.returncode, result.stderr.strip()[:300]))
            else:
                self.jobs += count


class Reader(threading.Thread):
    """Reads the API in a loop with the token; keeps every answer that is not 200."""

    PATHS = ("/api/v1/stats", "/api/v1/jobs?limit=50", "/api/v1/jobs?state=completed&limit=20", "/metrics",
             "/healthz", "/api/v1/workers")

    def __init__(self, base, token, stop, store_location):
        super().__init__(daemon=True)
        self.base, self.token, self.stop = base, token, stop
        self.store_location = store_location
        self.requests, self.failures, self.seconds = 0, [], []

    def run(self):
        number = 0
        while not self.stop.is_set():
            path = self.PATHS[number % len(self.PATHS)]
            number += 1
            if number % 7 == 0:
                path = "/api/v1/jobs/" + self._some_job()
            request = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.token}"})
            started = time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    status, body = response.status, response.read()
            except urllib.error.HTTPError as error:
                status, body = error.code, error.read()
            except OSError as error:
                status, body = None, str(error).encode()
            self.seconds.append(time.monotonic() - started)
            self.requests += 1
            if status != 200 and not (status == 404 and path.endswith("/none")):
                self.failures.append((path, status, body[:300].decode(errors="replace")))

    def _some_job(self):
        store = open_store(self.store_location)
        try:
            jobs = store.list_jobs(limit=1)
            return jobs[0]["id"] if jobs else "none"
        finally:
            store.close()


def start_gunicorn(db, log_dir, token):
    import subprocess

    port = free_port()
    log = open(Path(log_dir) / "gunicorn.log", "wb")
    env = {**os.environ, "QUEUECTL_DB": str(db), "QUEUECTL_API_TOKEN": token, "QUEUECTL_API_BIND": f"127.0.0.1:{port}",
           "QUEUECTL_API_ACCESS_LOG": "/dev/null"}
    process = subprocess.Popen([GUNICORN, "-c", str(REPO / "config" / "gunicorn.conf.py"), "queuectl_api:create_app()"],
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=str(REPO))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):
                return process, base, log
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("gunicorn did not answer /healthz")


def run_contention(workdir, seconds=30, enqueuers=8, workers=8, readers=2, drain_limit=120, log=print):
    """Run the contention scenario in `workdir`; returns the report (report["ok"]: every check held)."""
    workdir = Path(workdir)
    (workdir / "data").mkdir()
    db = workdir / "data" / "queue.db"  # a directory of its own, as in a deployment: the logs live elsewhere
    timings = workdir / "claims"
    timings.mkdir()
    open_store(str(db)).close()
    token = secrets.token_urlsafe(24)
    log(f"contention: {enqueuers} enqueuing processes, {workers} workers, {readers} API readers, {seconds}s, "
        f"in {workdir}")
    gunicorn, base, gunicorn_log = start_gunicorn(db, workdir, token)
    group = WorkerGroup(db, workdir, 1, count=workers, env={"QUEUECTL_CLAIM_TIMINGS": str(timings)},
                        program=TIMED_WORKER)
    stop = threading.Event()
    rng = random.Random()
    threads = [Enqueuer(n, db, stop, random.Random(rng.random())) for n in range(enqueuers)]
    threads += [Reader(base, token, stop, str(db)) for _ in range(readers)]
    store = open_store(str(db))
    try:
        started = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join(timeout=180)
        enqueue_seconds = time.monotonic() - started
        enqueued = sum(t.jobs for t in threads if isinstance(t, Enqueuer))
        deadline = time.monotonic() + drain_limit
        while time.monotonic() < deadline and store.counts()["completed"] < enqueued:
            time.sleep(0.2)
        total_seconds = time.monotonic() - started
        group.signal_supervisor(signal.SIGTERM)
        worker_exit = group.wait(60)
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(timeout=30)
        return _report(db, store, threads, group, workdir, timings, enqueued, enqueue_seconds, total_seconds,
                       worker_exit)
    finally:
        stop.set()
        group.destroy()
        if gunicorn.poll() is None:
            os.killpg(gunicorn.pid, signal.SIGKILL)
            gunicorn.wait()
        gunicorn_log.close()
        store.close()


def _report(db, store, threads, group, workdir, timings, enqueued, enqueue_seconds, total_seconds, worker_exit):
    problems = []
    enqueuer_threads = [t for t in threads if isinstance(t, Enqueuer)]
    reader_threads = [t for t in threads if isinstance(t, Reader)]
    cli_failures = [f for t in enqueuer_threads for f in t.failures]
    api_failures = [f for t in reader_threads for f in t.failures]
    claims, polls = [], []
    for path in timings.glob("claims-*.txt"):
        for line in path.read_text().splitlines():
            microseconds, got = line.split()
            (claims if got == "1" else polls).append(int(microseconds) / 1000)
    counts = store.counts()
    # Pickup: from the moment a job was due (created, no delay here) to the start of its run.
    pickups, locked_in_jobs, failed_runs = [], 0, 0
    for job in store.list_jobs(limit=enqueued + 10):
        detail = store.get_job(job["id"], history=True)
        for run in detail["history"]:
            if run["error"] or run["exit_code"] != 0:
                failed_runs += 1
            if LOCKED.search(run["error"] or "") or LOCKED.search(run["output"] or ""):
                locked_in_jobs += 1
        if detail["history"]:
            pickups.append(_ms(detail["history"][0]["started_at"]) - _ms(detail["created_at"]))
    worker_log = group.log_text()
    gunicorn_log = (Path(workdir) / "gunicorn.log").read_text(errors="replace")
    locked_in_cli = sum(1 for _, message in cli_failures if LOCKED.search(message))
    locked_in_api = sum(1 for *_, body in api_failures if LOCKED.search(body))
    state = integrity(db)
    consistent = counts_consistent(db)[0]
    if cli_failures:
        problems.append(f"{len(cli_failures)} CLI calls failed, e.g. {cli_failures[:3]}")
    if api_failures:
        problems.append(f"{len(api_failures)} API answers were not 200, e.g. {api_failures[:3]}")
    if counts["completed"] != enqueued or failed_runs:
        problems.append(f"not every job completed at its first run: {counts}, {failed_runs} failed runs")
    if locked_in_jobs:
        problems.append(f"'database is locked' reached {locked_in_jobs} runs")
    for name, text in (("worker", worker_log), ("gunicorn", gunicorn_log)):
        if LOCKED.search(text) or "database error" in text or "Traceback" in text:
            problems.append(f"the {name} log has database errors or tracebacks: "
                            f"{[line for line in text.splitlines() if 'rror' in line][:3]}")
    if state != "ok" or not consistent:
        problems.append(f"integrity_check {state}, counters consistent: {consistent}")
    if worker_exit != 0:
        problems.append(f"the workers exited with {worker_exit} after SIGTERM")
    cli_seconds = [s for t in enqueuer_threads for s in t.seconds]
    api_seconds = [s for t in reader_threads for s in t.seconds]

    def summary(values, scale=1.0):
        if not values:
            return None
        return {"n": len(values), "p50": round(percentile(values, 0.5) * scale, 2),
                "p99": round(percentile(values, 0.99) * scale, 2), "max": round(max(values) * scale, 2)}

    report = {
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),  # the machine's busyness colours every latency
        "jobs_enqueued": enqueued,
        "cli_calls": sum(t.calls for t in enqueuer_threads),
        "enqueue_seconds": round(enqueue_seconds, 1),
        "seconds_until_drained": round(total_seconds, 1),
        "jobs_per_second": round(counts["completed"] / total_seconds, 1),
        "claim_ms": summary(claims),
        "empty_claim_ms": summary(polls),
        "pickup_ms": summary(pickups),
        "cli_enqueue_ms": summary(cli_seconds, 1000),
        "api_read_ms": summary(api_seconds, 1000),
        "api_requests": sum(t.requests for t in reader_threads),
        "cli_failures": len(cli_failures),
        "api_failures": len(api_failures),
        "locked_reaching_a_user": locked_in_cli + locked_in_api,
        "locked_reaching_a_job": locked_in_jobs,
        "worker_log_database_errors": worker_log.count("database error"),
        "integrity_check": state,
        "counts": counts,
        "problems": problems,
    }
    report["ok"] = not problems
    return report


def _ms(iso):
    from queuectl_core.timeutil import parse_iso

    return parse_iso(iso.replace("Z", "+00:00"))


def format_report(report):
    lines = ["contention report"]
    for key, value in report.items():
        if key != "problems":
            lines.append(f"  {key:<28} {json.dumps(value) if isinstance(value, dict | list) else value}")
    lines.append("  result                       " + ("OK" if report["ok"] else "FAILED"))
    lines += [f"  problem: {problem}" for problem in report["problems"]]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--enqueuers", type=int, default=8)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="queuectl-contention-") as scratch:
        report = run_contention(scratch, seconds=args.seconds, enqueuers=args.enqueuers, workers=args.workers,
                                readers=args.readers)
    report["at"] = now_ms()
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
