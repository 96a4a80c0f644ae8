"""The API under a bounded HTTP load while its database goes away and comes back: never a 5xx but 503, never a
dropped connection, and 2xx again once the database is back.

    .venv/bin/python tests/chaos/api_outage.py [--seconds-away 12] [--postgres URL]

- SQLite: another process holds the write lock (BEGIN IMMEDIATE) for longer than a request may wait (10 s, so the
  outage must last longer: 12 s by default): writes answer 503, reads go on (WAL).
- PostgreSQL (when a server answers): the API reaches the server through a relay that the run cuts (every connection
  closed, new ones refused) and later restores, as a restart or a network partition would.
Load: 4 threads in a loop over GET /api/v1/stats, GET /api/v1/jobs, POST /api/v1/jobs and GET /healthz, each with
a 40 s client timeout (longer than any wait of the server's: a timeout here is a failure).
"""

import argparse
import json
import os
import secrets
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: the relay

from contention import start_gunicorn  # noqa: E402
from relay import Relay  # noqa: E402

REQUESTS = (("GET", "/api/v1/stats"), ("GET", "/api/v1/jobs?limit=20"), ("POST", "/api/v1/jobs"), ("GET", "/healthz"))
CLIENT_TIMEOUT = 40
LOAD_THREADS = 4


class Load(threading.Thread):
    """Requests in a loop until stopped; each answer (or failure) recorded with the phase it was sent in."""

    def __init__(self, base, token, stop):
        super().__init__(daemon=True)
        self.base, self.token, self.stop = base, token, stop
        self.answers = []  # (sent at, answered at, method path, status or the failure's text), monotonic seconds

    def run(self):
        turn = 0
        while not self.stop.is_set():
            method, path = REQUESTS[turn % len(REQUESTS)]
            turn += 1
            body = json.dumps({"command": "true"}).encode() if method == "POST" else None
            request = urllib.request.Request(self.base + path, data=body, method=method, headers={
                "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
            started = time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError as error:  # a dropped connection, a timeout: what must never happen
                status = f"{type(error).__name__}: {error}"
            self.answers.append((started, time.monotonic(), f"{method} {path.split('?')[0]}", status))


def run_outage(workdir, backend, seconds_away=12, postgres_url=None, log=print):
    """One outage under load on `backend` ('sqlite' or 'postgres'); returns the report."""
    token = secrets.token_urlsafe(32)
    relay = None
    if backend == "sqlite":
        database = str(Path(workdir) / "queue.db")
    else:
        relay = Relay(urlsplit(postgres_url).port or 5432)
        schema = f"outage_{os.getpid()}_{secrets.token_hex(3)}"
        database = (postgres_url.replace(f":{urlsplit(postgres_url).port or 5432}/", f":{relay.port}/")
                    + ("&" if "?" in postgres_url else "?") + f"options=-csearch_path%3D{schema}")
        import psycopg

        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
    gunicorn, base, gunicorn_log = start_gunicorn(database, workdir, token)
    stop = threading.Event()
    threads = [Load(base, token, stop) for _ in range(LOAD_THREADS)]
    holder = None
    try:
        for thread in threads:
            thread.start()
        time.sleep(3)
        away = [time.monotonic(), None]
        log(f"{backend}: the database goes away for {seconds_away} s")
        if backend == "sqlite":
            holder = sqlite3.connect(database, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
        else:
            relay.cut()
        time.sleep(seconds_away)
        if backend == "sqlite":
            holder.execute("ROLLBACK")
        else:
            relay.restore()
        away[1] = time.monotonic()
        time.sleep(CLIENT_TIMEOUT / 4 + 5)  # requests sent while away may still be waiting: then 5 s more
    finally:
        stop.set()
        for thread in threads:
            thread.join(CLIENT_TIMEOUT + 5)
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(timeout=30)
        gunicorn_log.close()
        if backend == "postgres":
            import psycopg

            with psycopg.connect(postgres_url, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return _report(backend, [answer for thread in threads for answer in thread.answers], away, seconds_away,
                   (Path(workdir) / "gunicorn.log").read_text(errors="replace"))


def _phase(sent, answered, away):
    """'before' or 'after' the outage, or 'during' for a request that was under way at some moment of it."""
    if answered < away[0]:
        return "before"
    return "during" if sent <= away[1] else "after"


def _report(backend, answers, away, seconds_away, gunicorn_log):
    by_phase = {}
    for sent, answered, _, status in answers:
        phase, seconds = _phase(sent, answered, away), answered - sent
        entry = by_phase.setdefault(phase, {"requests": 0, "statuses": {}, "slowest_seconds": 0.0})
        entry["requests"] += 1
        entry["statuses"][str(status)] = entry["statuses"].get(str(status), 0) + 1
        entry["slowest_seconds"] = round(max(entry["slowest_seconds"], seconds), 2)
    failures = [(request, status) for _, _, request, status in answers
                if not (isinstance(status, int) and (status < 500 or status == 503))]
    problems = []
    if failures:
        problems.append(f"{len(failures)} answers were a 5xx other than 503 or no answer at all, e.g. {failures[:3]}")
    if not by_phase.get("during", {}).get("statuses", {}).get("503"):
        problems.append("no 503 while the database was away: the outage did not reach the API")
    after = by_phase.get("after", {"statuses": {}})["statuses"]
    if set(after) - {"200", "201"}:
        problems.append(f"after the database came back, answers other than 2xx: {after}")
    if "WORKER TIMEOUT" in gunicorn_log:
        problems.append("gunicorn killed a worker that waited too long (WORKER TIMEOUT)")
    return {"backend": backend, "seconds_away": seconds_away, "phases": by_phase, "failures": len(failures),
            "ok": not problems, "problems": problems}


def format_report(report):
    verdict = "OK" if report["ok"] else "FAILED"
    lines = [f"API outage on {report['backend']} ({report['seconds_away']} s away): {verdict}"]
    for phase, entry in report["phases"].items():
        lines.append(f"  {phase:<11} {entry['requests']:>5} requests  {entry['statuses']}"
                     f"  slowest {entry['slowest_seconds']} s")
    lines += [f"  problem: {problem}" for problem in report["problems"]]
    return "\n".join(lines)


def postgres_answers(url):
    """True when a PostgreSQL server answers at `url` (psycopg installed)."""
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
        return True
    except Exception:
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds-away", type=float, default=12)
    parser.add_argument("--postgres", default=os.environ.get("QUEUECTL_TEST_POSTGRES",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args(argv)
    reports = []
    with tempfile.TemporaryDirectory(prefix="queuectl-outage-") as scratch:
        for backend in ("sqlite", "postgres"):
            if backend == "postgres" and not postgres_answers(args.postgres):
                print("postgres: no server answers: skipped")
                continue
            workdir = Path(scratch) / backend
            workdir.mkdir()
            reports.append(run_outage(workdir, backend, args.seconds_away, args.postgres))
            print(format_report(reports[-1]), flush=True)
    return 0 if all(report["ok"] for report in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
