"""Printing: JSON for scripts, aligned tables and fields for people (user data shown through terminal.visible)."""

import json
from datetime import datetime

import click

from .terminal import json_visible, visible
from .views import duration, shorten, table_lines, worker_lines


def print_json(value):
    """Print a value as JSON on stdout (and nothing else); the controls JSON leaves raw are \\u escapes."""
    click.echo(json_visible(json.dumps(value, indent=2, ensure_ascii=False)))


def print_table(headers, rows):
    """Columns aligned to their widest cell."""
    for line in table_lines(headers, rows):
        click.echo(line)


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
        click.echo(f"{field + ':':<13}{'-' if value is None else visible(value)}")
    for field in ("queue", "unique_key", "concurrency_key"):
        if job.get(field) is not None and (field != "queue" or job[field] != "default"):
            click.echo(f"{field + ':':<13}{visible(job[field])}")
    if job.get("concurrency_key") is not None:
        click.echo(f"{'limit:':<13}{job['concurrency_limit']} at a time per key")
    for field in ("tags", "after", "retry_on", "no_retry_on"):  # shown only when the job sets them
        if job.get(field):
            click.echo(f"{field + ':':<13}{visible(', '.join(str(item) for item in job[field]))}")
    for field in ("schedule", "scheduled_for", "parent_id", "cwd"):
        if job.get(field):
            click.echo(f"{field + ':':<13} {visible(job[field])}" if len(field) >= 12
                       else f"{field + ':':<13}{visible(job[field])}")
    if job.get("env"):
        click.echo(f"{'env:':<13}{visible(' '.join(f'{name}={value}' for name, value in job['env'].items()))}")
    if job.get("stdin"):
        click.echo(f"{'stdin:':<13}{shorten(job['stdin'], 60)} ({len(job['stdin'].encode())} bytes)")
    for field in ("on_success", "on_dead"):
        if job.get(field):
            click.echo(f"{field + ':':<13}{visible(json.dumps(job[field], ensure_ascii=False))}")
    history = job.get("history", [])
    total = job.get("history_total", len(history))
    click.echo(f"\nHistory ({total} run{'s' if total != 1 else ''})")
    if total > len(history):
        older = total - len(history)
        click.echo(f"  ({older} older run{'s are' if older != 1 else ' is'} not shown:"
                   f" `queuectl show {visible(job['id'])} --all-history` shows every run)")
    for run in history:
        if run["finished_at"]:
            took = (datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["started_at"]))
            result = visible(run["error"] or f"exit code {run['exit_code']}")
            click.echo(f"  #{run['attempt']}  {run['started_at']}  took {duration(took.total_seconds())}"
                       f"  {result}  on {visible(run['worker_id'])}")
        else:
            click.echo(f"  #{run['attempt']}  {run['started_at']}  running on {visible(run['worker_id'])}")
        if run["output"]:
            for line in run["output"].rstrip("\n").split("\n"):
                click.echo(f"      | {visible(line, multiline=True)}")


def print_audit(entries):
    """A table of audit log entries, newest first, their details as compact JSON."""
    rows = [[entry["at"], entry["actor"], entry["action"], entry["target"],
             shorten(json.dumps(entry["details"], ensure_ascii=False, separators=(", ", ": ")), 60)]
            for entry in entries]
    print_table(["AT", "ACTOR", "ACTION", "TARGET", "DETAILS"], rows)


def print_workers(workers, every_job=False):
    """A table of live workers with their slots and running jobs (every one of them with `every_job`)."""
    for line in worker_lines(workers, every_job):
        click.echo(line)
