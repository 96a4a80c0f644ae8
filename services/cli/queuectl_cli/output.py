"""Printing: JSON for scripts, aligned tables and fields for people."""

import json
from datetime import datetime

import click


def print_json(value):
    """Print a value as JSON on stdout (and nothing else)."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def shorten(text, width):
    """One line of at most `width` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(headers, rows):
    """Columns aligned to their widest cell."""
    cells = [[str("-" if c is None else c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())


def age(iso_time, now=None):
    """'3.2s ago'-style distance from an ISO time to now."""
    if iso_time is None:
        return "-"
    seconds = ((now or datetime.now().astimezone()) - datetime.fromisoformat(iso_time)).total_seconds()
    return f"{duration(abs(seconds))} {'ago' if seconds >= 0 else 'from now'}"


def duration(seconds):
    """A short human duration: 0.25s, 42s, 3m05s, 2h10m."""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def print_jobs(jobs, with_error=False):
    """A table of job records."""
    headers = ["ID", "STATE", "ATTEMPTS", "PRIORITY", "RUN_AT", "COMMAND"]
    if with_error:
        headers.append("LAST_ERROR")
    rows = []
    for job in jobs:
        row = [job["id"], job["state"], f"{job['attempts']}/{job['max_retries'] + 1}", job["priority"],
               job["run_at"], shorten(job["command"], 40)]
        if with_error:
            row.append(shorten(job["last_error"] or "-", 40))
        rows.append(row)
    print_table(headers, rows)


def print_job_detail(job):
    """One job's fields, then every run of its history with its output."""
    fields = ("id", "command", "state", "attempts", "max_retries", "priority", "run_at", "timeout",
              "created_at", "updated_at", "worker_id", "exit_code", "last_error")
    for field in fields:
        value = job[field]
        click.echo(f"{field + ':':<13}{'-' if value is None else value}")
    for field in ("after", "retry_on", "no_retry_on"):  # shown only when the job sets them
        if job.get(field):
            click.echo(f"{field + ':':<13}{', '.join(str(item) for item in job[field])}")
    history = job.get("history", [])
    click.echo(f"\nHistory ({len(history)} run{'s' if len(history) != 1 else ''})")
    for run in history:
        if run["finished_at"]:
            took = (datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["started_at"]))
            result = run["error"] or f"exit code {run['exit_code']}"
            click.echo(f"  #{run['attempt']}  {run['started_at']}  took {duration(took.total_seconds())}"
                       f"  {result}  on {run['worker_id']}")
        else:
            click.echo(f"  #{run['attempt']}  {run['started_at']}  running on {run['worker_id']}")
        if run["output"]:
            for line in run["output"].rstrip("\n").split("\n"):
                click.echo(f"      | {line}")


def print_workers(workers):
    """A table of live workers."""
    rows = []
    for worker in workers:
        job = worker["current_job"]
        if job:
            job = f"{job} ({age(worker['current_job_started_at']).replace(' ago', '')})"
        rows.append([worker["id"], worker["host"], worker["pid"], job or "idle",
                     age(worker["heartbeat_at"]), "yes" if worker["stop_requested"] else "no"])
    print_table(["ID", "HOST", "PID", "JOB", "HEARTBEAT", "STOPPING"], rows)
